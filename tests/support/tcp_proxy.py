"""A loopback TCP proxy that can delay answers and cut the line, for fault-injection tests.

Put between a client and a real server (``client -> proxy -> server``): bytes from the client
go straight through; bytes back are held ``delay`` seconds first, so the server has done the
work while the client's deadline runs out. :meth:`cut` drops every open connection and
refuses new ones (the server looks down); :meth:`restore` lets them through again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self

__all__ = ["TcpProxy"]

_CHUNK = 65536


class TcpProxy:
    """``async with TcpProxy(host, port) as proxy``: clients connect to ``proxy.address``."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.delay = 0.0
        """Seconds each chunk from the server is held before the client gets it."""
        self._cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        self._cut = True
        for writer in list(self._writers):
            writer.transport.abort()

    def restore(self) -> None:
        self._cut = False

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, delayed=False)),
            asyncio.create_task(self._pump(up_reader, writer, delayed=True)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for end in (writer, up_writer):
                end.transport.abort()
                self._writers.discard(end)
            self._tasks.difference_update(pumps)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(_CHUNK):
                if delayed and self.delay:
                    await asyncio.sleep(self.delay)
                if self._cut:
                    return
                sink.write(data)
                await sink.drain()
