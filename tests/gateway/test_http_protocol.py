"""The gateway's HTTP protocol (uvicorn + httptools, writes joined per loop turn) on a real
socket: one write per small response, streams still flow chunk by chunk, closing sends all."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from gateway._http import HttpProtocol
from tests.gateway._support import serve_asgi


class _CountingProtocol(HttpProtocol):
    """Counts the writes that reach the socket's transport."""

    writes: list[bytes] = []  # noqa: RUF012 - one list per test, reset by the fixture below

    def connection_made(self, transport: Any) -> None:
        real_write = transport.write

        def write(data: bytes) -> None:
            _CountingProtocol.writes.append(bytes(data))
            real_write(data)

        transport.write = write
        super().connection_made(transport)


async def _small(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"11")]}
    )
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


async def _request(port: int, path: str = "/", *, close: bool = False) -> tuple[bytes, bool]:
    """One GET; returns the raw response and whether the server then closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connection = b"close" if close else b"keep-alive"
    writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: " + connection)
    writer.write(b"\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.startswith(b"content-length"))[16:]
    )
    body = await reader.readexactly(length)
    closed = await asyncio.wait_for(reader.read(1), 2) == b"" if close else False
    writer.close()
    return head + body, closed


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


async def test_a_small_response_leaves_in_one_write() -> None:
    _CountingProtocol.writes = []
    async with serve_asgi(_small, http=_CountingProtocol) as base:
        port = _port(base)
        response, _ = await _request(port)
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert response.endswith(b'\r\n\r\n{"ok":true}')
        # Status line, headers and body: one write, so one send() and one TCP segment.
        assert _CountingProtocol.writes == [response]


async def test_connection_close_still_sends_the_whole_response_first() -> None:
    _CountingProtocol.writes = []
    async with serve_asgi(_small, http=_CountingProtocol) as base:
        port = _port(base)
        response, closed = await _request(port, close=True)
        assert response.endswith(b'{"ok":true}')
        assert b"connection: close" in response.lower()
        assert closed


async def test_a_streamed_body_reaches_the_client_chunk_by_chunk() -> None:
    """Joining is per loop turn: a stream is not held back until it ends (the server sends
    its last chunk only after the client has read the first)."""
    first_seen = asyncio.Event()

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _small(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await asyncio.wait_for(first_seen.wait(), 5)
        await send({"type": "http.response.body", "body": b"data: two\n\n"})

    async with serve_asgi(streaming, http=HttpProtocol) as base:
        port = _port(base)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"data: one\n\n"), 5)
        first_seen.set()
        await asyncio.wait_for(reader.readuntil(b"data: two\n\n"), 5)
        writer.close()


async def test_keep_alive_serves_requests_in_turn_on_one_connection() -> None:
    async with serve_asgi(_small, http=HttpProtocol) as base:
        port = _port(base)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(20):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 5)
        writer.close()


async def test_the_response_leaves_before_the_work_the_app_does_after_answering() -> None:
    """The joined write goes out when the body is written, not at the end of the loop turn:
    a request's span, log line and metrics come after its answer, not before it."""

    async def slow_after(scope: Any, receive: Any, send: Any) -> None:
        await _small(scope, receive, send)
        if scope["type"] == "http":
            time.sleep(0.5)  # blocks the loop, as CPU-bound bookkeeping would

    def fetch(port: int) -> float:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            started = time.perf_counter()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while not received.endswith(b'{"ok":true}'):
                received += sock.recv(65536)
            return time.perf_counter() - started

    async with serve_asgi(slow_after) as base:
        elapsed = await asyncio.to_thread(fetch, _port(base))
    assert elapsed < 0.4


async def test_a_large_body_is_written_as_it_comes_after_the_head() -> None:
    """Joining copies: a body over the limit is not copied onto the head, just sent after it."""
    body = bytes(range(256)) * 4096  # 1 MiB

    async def large(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _small(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    _CountingProtocol.writes = []
    async with serve_asgi(large, http=_CountingProtocol) as base:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(base))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert await asyncio.wait_for(reader.readexactly(len(body)), 5) == body
        writer.close()
    assert _CountingProtocol.writes == [head, body]
