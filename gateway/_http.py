"""uvicorn's HTTP/1.1 protocol (httptools) sending a response's head and body in one write.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send()``
calls, two TCP segments, for every small JSON answer. Over loopback each ``send()`` also runs
the receiver's TCP path in the sender's thread, so under load those writes were ~15% of the
gateway's CPU. Here the head waits for the body and both leave in one write (a streamed body
still goes out chunk by chunk).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HttpProtocol"]

_JOIN_LIMIT = 64 * 1024
"""Writes up to this size are held to be joined with the next; larger ones go out at once."""


class _JoinedWrites:
    """A transport that holds a write until the next one and sends both as one.

    uvicorn writes a response's head, then its body at once: the head waits for the body and
    they leave together, as soon as the body is written (not after the work the request does
    after answering: its span, log line and metrics). A write with nothing after it in the same
    loop turn (a head before a streamed body, a lone chunk) is sent at the end of the turn.
    Only small writes are joined (a large body is written as it comes, after the held head:
    copying it would cost more than the second send saves). Closing and ``write_eof`` send
    what is held first and the buffer size counts it, so ordering and closing behave as on the
    transport it wraps."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= _JOIN_LIMIT:
                self._transport.write(held + data)
                return
            self._transport.write(held)
        if len(data) > _JOIN_LIMIT:
            self._transport.write(data)
            return
        self._held = bytes(data)
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        held = 0 if self._held is None else len(self._held)
        return self._transport.get_write_buffer_size() + held

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http=HttpProtocol)``: httptools with joined writes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(_JoinedWrites(transport, self.loop))  # type: ignore[arg-type]
