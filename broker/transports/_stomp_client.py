"""A small asyncio STOMP 1.2 client: one connection, pipelined receipts, heart-beats both ways.

Each SEND or SUBSCRIBE that asks for a receipt gets its own future, so many can be in flight at
once; an ERROR frame fails the one it names. ActiveMQ keeps the connection open after an ERROR
about one frame (an unknown transaction, an ACK for a message it no longer holds) and closes it
after a fatal one, which the read loop then reports as the connection lost; an ERROR naming no
pending request is logged and otherwise ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import TYPE_CHECKING

import structlog

from broker.errors import BrokerConnectionError, PublishError
from broker.transports._stomp_frames import Frame, FrameParser, encode_frame

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

__all__ = ["StompClient"]

_READ_SIZE = 256 * 1024
_log = structlog.get_logger("broker.stomp")


class StompClient:
    """One STOMP 1.2 connection. Create, :meth:`connect`, use, :meth:`disconnect`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_lost: Callable[[BaseException | None], None],
        ssl_context: ssl.SSLContext | None = None,
        login: str | None = None,
        passcode: str | None = None,
        vhost: str | None = None,
        heartbeat: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._login = login
        self._passcode = passcode
        self._vhost = vhost or host
        self._heartbeat_ms = int(heartbeat * 1000)
        self._on_lost = on_lost
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = FrameParser()
        self._receipts: dict[str, asyncio.Future[None]] = {}
        self._subscriptions: dict[str, Callable[[Frame], None]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sent = self._last_received = time.monotonic()
        self._send_every = 0.0
        self._expect_every = 0.0
        self._closed = False
        self._disconnecting = False
        self._lost_reported = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def connect(self, timeout: float) -> None:
        """Open the socket, CONNECT, and wait for CONNECTED (an ERROR raises)."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                ),
                timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise BrokerConnectionError(f"{self._host}:{self._port}: {exc or 'timed out'}") from exc
        headers = {
            "accept-version": "1.2",
            "host": self._vhost,
            "heart-beat": f"{self._heartbeat_ms},{self._heartbeat_ms}",
        }
        if self._login is not None:
            headers["login"] = self._login
            headers["passcode"] = self._passcode or ""
        self._write(encode_frame("CONNECT", headers))
        try:
            connected = await asyncio.wait_for(self._read_connected(), timeout)
        except TimeoutError as exc:
            await self._abort()
            raise BrokerConnectionError(f"{self._host}:{self._port}: no CONNECTED frame") from exc
        except BaseException:
            await self._abort()
            raise
        self._negotiate(connected.headers.get("heart-beat", "0,0"))
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._read_loop()))
        if self._send_every or self._expect_every:
            self._tasks.append(loop.create_task(self._heartbeat_loop()))

    async def _read_connected(self) -> Frame:
        assert self._reader is not None
        while True:
            data = await self._reader.read(_READ_SIZE)
            if not data:
                raise BrokerConnectionError(f"{self._host}:{self._port}: closed during CONNECT")
            for frame in self._parser.feed(data):
                if frame is None:
                    continue
                if frame.command == "CONNECTED":
                    return frame
                if frame.command == "ERROR":
                    detail = frame.headers.get("message") or frame.body.decode("utf-8", "replace")
                    raise BrokerConnectionError(f"{self._host}:{self._port}: {detail.strip()}")

    def _negotiate(self, server: str) -> None:
        try:
            sx, sy = (int(v) for v in server.split(","))
        except ValueError:
            sx = sy = 0
        cx = cy = self._heartbeat_ms
        self._send_every = max(cx, sy) / 1000 if cx and sy else 0.0
        self._expect_every = max(cy, sx) / 1000 if cy and sx else 0.0

    async def disconnect(self, timeout: float = 5.0) -> None:
        """DISCONNECT with a receipt (so everything sent before was processed), then close."""
        if self._closed:
            return
        if self._writer is not None and not self._writer.is_closing():
            self._disconnecting = True  # the server closing the socket now is expected
            with contextlib.suppress(Exception):
                receipt = self._expect_receipt()
                self._write(encode_frame("DISCONNECT", {"receipt": receipt}))
                await asyncio.wait_for(asyncio.shield(self._receipts[receipt]), timeout)
        await self._abort()

    async def _abort(self, error: BaseException | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._writer is not None:
            self._writer.close()
        # Reported before awaiting the socket's end, so whoever finds the client closed (a
        # concurrent disconnect) knows the loss has been reported too.
        self._fail_pending(error or BrokerConnectionError("STOMP connection closed"))
        self._report_lost(error)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    def _report_lost(self, error: BaseException | None) -> None:
        if not self._lost_reported:
            self._lost_reported = True
            self._on_lost(error)

    def _fail_pending(self, error: BaseException) -> None:
        receipts, self._receipts = self._receipts, {}
        for future in receipts.values():
            if not future.done():
                future.set_exception(PublishError(f"STOMP: {error}"))
                future.exception()  # mark retrieved: callers may have given up already

    # -- frames out --------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            raise BrokerConnectionError(f"{self._host}:{self._port}: not connected")
        self._writer.write(data)
        self._last_sent = time.monotonic()

    def _expect_receipt(self) -> str:
        receipt = str(next(self._ids))
        self._receipts[receipt] = asyncio.get_running_loop().create_future()
        return receipt

    async def _request(
        self, command: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> None:
        receipt = self._expect_receipt()
        headers["receipt"] = receipt
        future = self._receipts[receipt]
        self._write(encode_frame(command, headers, body))
        # A timer on the receipt's own future rather than wait_for: no second future and loop
        # hop per frame between the RECEIPT arriving and the sender resuming.
        timer = asyncio.get_running_loop().call_later(
            timeout, self._expire, receipt, command, timeout
        )
        try:
            await future
        finally:
            timer.cancel()
            self._receipts.pop(receipt, None)  # answered, expired, or the sender was cancelled

    def _expire(self, receipt: str, command: str, timeout: float) -> None:
        future = self._receipts.pop(receipt, None)
        if future is not None and not future.done():
            future.set_exception(
                PublishError(f"STOMP: no receipt for {command} within {timeout:.1f}s")
            )

    async def send(
        self, destination: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> None:
        """SEND and wait for the broker's RECEIPT (the message is persisted/routed)."""
        headers["destination"] = destination
        await self._request("SEND", headers, body, timeout)

    async def subscribe(
        self,
        destination: str,
        headers: dict[str, str],
        on_message: Callable[[Frame], None],
        timeout: float = 10.0,
    ) -> str:
        subscription = f"sub-{next(self._ids)}"
        self._subscriptions[subscription] = on_message
        headers.update({"id": subscription, "destination": destination})
        try:
            await self._request("SUBSCRIBE", headers, b"", timeout)
        except BaseException:
            self._subscriptions.pop(subscription, None)
            raise
        return subscription

    async def unsubscribe(self, subscription: str, timeout: float = 10.0) -> None:
        self._subscriptions.pop(subscription, None)
        if not self._closed:
            await self._request("UNSUBSCRIBE", {"id": subscription}, b"", timeout)

    def ack(self, ack_id: str) -> None:
        self._write(encode_frame("ACK", {"id": ack_id}))

    # -- frames in ---------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._reader is not None
        error: BaseException | None = None
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    if not self._disconnecting:
                        error = ConnectionResetError("broker closed the STOMP connection")
                    break
                self._last_received = time.monotonic()
                for frame in self._parser.feed(data):
                    if frame is not None:
                        self._dispatch(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any read failure ends the connection
            error = exc
        await self._abort(error)

    def _dispatch(self, frame: Frame) -> None:
        if frame.command == "MESSAGE":
            handler = self._subscriptions.get(frame.headers.get("subscription", ""))
            if handler is not None:
                handler(frame)
        elif frame.command == "RECEIPT":
            future = self._receipts.pop(frame.headers.get("receipt-id", ""), None)
            if future is not None and not future.done():
                future.set_result(None)
        elif frame.command == "ERROR":
            detail = (
                (frame.headers.get("message") or "") + " " + frame.body.decode("utf-8", "replace")
            )
            future = self._receipts.pop(frame.headers.get("receipt-id", ""), None)
            if future is not None and not future.done():
                future.set_exception(PublishError(f"STOMP ERROR: {detail.strip()}"))
            else:
                # e.g. an ACK for a message ActiveMQ took back at UNSUBSCRIBE; a fatal ERROR is
                # followed by the server closing the connection, which the read loop reports.
                _log.warning(
                    "stomp ERROR frame",
                    endpoint=f"{self._host}:{self._port}",
                    message=frame.headers.get("message", ""),
                )

    async def _heartbeat_loop(self) -> None:
        tick = min(x for x in (self._send_every, self._expect_every) if x) / 2
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self._send_every and now - self._last_sent >= self._send_every:
                with contextlib.suppress(BrokerConnectionError):
                    self._write(b"\n")
            if self._expect_every and now - self._last_received > self._expect_every * 2.5:
                await self._abort(ConnectionError("STOMP heart-beat timeout"))
                return
