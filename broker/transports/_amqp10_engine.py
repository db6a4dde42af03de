"""Proton's sans-IO AMQP 1.0 engine driven from an asyncio stream: no threads, no blocking.

Why this and not proton's ``Container`` in a thread: the engine (``proton.Connection`` +
``proton.Transport`` + ``proton.Collector``) does no I/O of its own, so bytes read from an
asyncio stream are pushed into it, the events it produces are handled right there on the event
loop, and the bytes it wants to send are written back to the stream. Deliveries therefore reach
``on_delivery`` in arrival order on the loop without any cross-thread hand-off, and settling a
delivery is a plain function call. TLS and SASL run inside the engine (proton's ``SSL`` over the
plain TCP stream), and heartbeats are driven by ``Transport.tick`` from a loop timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import proton
import structlog
from proton import Collector, Connection, Event, Receiver, Sender, Session

from broker.errors import BrokerConnectionError, PublishError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Engine", "EngineSettings", "LinkDetached", "Outcome"]

_log = structlog.get_logger("broker.amqp10")
_READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Where and how to connect."""

    host: str
    port: int
    hostname: str
    """Sent in the AMQP open frame (RabbitMQ reads ``vhost:<name>`` from it)."""
    container_id: str
    user: str | None = None
    password: str | None = None
    ssl_domain: proton.SSLDomain | None = None
    idle_timeout: float = 30.0
    connect_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the peer settled a delivery we sent."""

    state: int
    condition: str | None = None

    @property
    def accepted(self) -> bool:
        return self.state == proton.Delivery.ACCEPTED

    @property
    def name(self) -> str:
        return _OUTCOMES.get(self.state, f"state {self.state}")


_OUTCOMES: dict[int, str] = {
    proton.Delivery.ACCEPTED: "accepted",
    proton.Delivery.REJECTED: "rejected",
    proton.Delivery.RELEASED: "released",
    proton.Delivery.MODIFIED: "modified",
}


class LinkDetached(BrokerConnectionError):  # noqa: N818 - reads as the event it reports
    """The peer refused or closed a link (unknown address, deleted queue, no permission)."""


def _condition(endpoint: Connection | Session | Sender | Receiver | proton.Transport) -> str | None:
    condition = endpoint.condition if isinstance(endpoint, proton.Transport) else None
    if condition is None and not isinstance(endpoint, proton.Transport):
        condition = endpoint.remote_condition
    if condition is None:
        return None
    return f"{condition.name}: {condition.description}" if condition.description else condition.name


class _ReceiverState:
    """Callback and bookkeeping of one receiving link."""

    __slots__ = ("on_closed", "on_message")

    def __init__(
        self,
        on_message: Callable[[proton.Delivery, proton.Message], None],
        on_closed: Callable[[BaseException], None],
    ) -> None:
        self.on_message = on_message
        self.on_closed = on_closed


class Engine:
    """One AMQP 1.0 connection: proton's engine fed from an asyncio stream."""

    def __init__(
        self, settings: EngineSettings, on_lost: Callable[[BaseException | None], None]
    ) -> None:
        self.settings = settings
        self._on_lost = on_lost
        self._connection = Connection()
        self._transport = proton.Transport()
        self._collector = Collector()
        self._session: Session | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._opened: asyncio.Future[None] | None = None
        self._attaching: dict[proton.Link, asyncio.Future[None]] = {}
        self._senders: dict[str, asyncio.Future[Sender]] = {}
        self._receivers: dict[proton.Link, _ReceiverState] = {}
        self._unsettled: dict[proton.Delivery, asyncio.Future[Outcome]] = {}
        self._tags = itertools.count()
        self._names = itertools.count()
        self._error: BaseException | None = None
        self._ended = False
        self._closing = False
        self._kicked = False

    @property
    def ended(self) -> bool:
        return self._ended

    # -- connection --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect TCP, run SASL/TLS and the AMQP open; raise BrokerConnectionError on failure."""
        s = self.settings
        loop = asyncio.get_running_loop()
        self._opened = loop.create_future()
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port), s.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise BrokerConnectionError(f"{exc or type(exc).__name__}") from exc
        connection, transport = self._connection, self._transport
        connection.container = s.container_id
        connection.hostname = s.hostname
        sasl = transport.sasl()
        if s.user is not None:
            connection.user = s.user
            connection.password = s.password or ""
            sasl.allowed_mechs("PLAIN")
            # PLAIN over a plain socket is what a loopback/VPC broker offers; TLS URLs encrypt it.
            sasl.allow_insecure_mechs = True
        else:
            sasl.allowed_mechs("ANONYMOUS")
        transport.bind(connection)
        transport.idle_timeout = s.idle_timeout
        if s.ssl_domain is not None:
            tls = proton.SSL(transport, s.ssl_domain)
            tls.peer_hostname = s.host
        connection.collect(self._collector)
        connection.open()
        self._pump = loop.create_task(self._read_loop(), name=f"amqp10-pump {s.host}:{s.port}")
        self._process()
        try:
            await asyncio.wait_for(asyncio.shield(self._opened), s.connect_timeout)
        except TimeoutError:
            self._end(BrokerConnectionError("no AMQP open from the broker in time"))
            raise BrokerConnectionError("no AMQP open from the broker in time") from None

    async def close(self, timeout: float = 2.0) -> None:
        """Close the AMQP connection politely, then the socket. Idempotent."""
        if self._ended or self._writer is None:
            self._end(None)
            return
        self._closing = True
        with contextlib.suppress(Exception):
            self._connection.close()
            self._process()
        if self._pump is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._pump), timeout)
        self._end(None)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while not self._ended:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    with contextlib.suppress(proton.TransportException):
                        self._transport.close_tail()
                    self._process()
                    self._end(self._error or ConnectionError("broker closed the connection"))
                    return
                while data:
                    capacity = self._transport.capacity()
                    if capacity < 0:
                        self._process()
                        self._end(self._error or ConnectionError("transport closed"))
                        return
                    chunk, data = data[: max(capacity, 1)], data[max(capacity, 1) :]
                    self._transport.push(chunk)
                    self._process()
        except (OSError, proton.ProtonException) as exc:
            self._end(ConnectionError(f"connection failed: {exc}"))
        except Exception as exc:  # noqa: BLE001 - a bug in our event handling must not hang it
            _log.exception("amqp10 engine failed")
            self._end(ConnectionError(f"AMQP 1.0 engine failed: {exc!r}"))

    def _process(self) -> None:
        """Handle every pending engine event, then write what the engine wants to send."""
        if self._ended:
            return
        while (event := self._collector.peek()) is not None:
            try:
                self._dispatch(event)
            finally:
                self._collector.pop()
        self._flush()

    def _kick(self) -> None:
        """Process and write once at the end of this loop iteration: many sends or
        settlements made in one iteration go out in one write."""
        if not self._kicked and not self._ended:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._run_kick)

    def _run_kick(self) -> None:
        self._kicked = False
        self._process()

    def _flush(self) -> None:
        writer = self._writer
        if writer is None or self._ended:
            return
        pending = self._transport.pending()
        if pending > 0:
            data = self._transport.peek(pending)
            if data:
                writer.write(data)
            self._transport.pop(pending)
        elif pending < 0 and not writer.is_closing():
            writer.close()
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._transport.tick(loop.time())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline > 0:
            self._timer = loop.call_at(deadline, self._on_tick)

    def _on_tick(self) -> None:
        self._timer = None
        if not self._ended:
            self._process()

    # -- events ------------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        handlers = {
            Event.CONNECTION_REMOTE_OPEN: self._on_connection_open,
            Event.CONNECTION_REMOTE_CLOSE: self._on_connection_close,
            Event.TRANSPORT_ERROR: self._on_transport_error,
            Event.TRANSPORT_CLOSED: self._on_transport_closed,
            Event.SESSION_REMOTE_CLOSE: self._on_session_close,
            Event.LINK_REMOTE_OPEN: self._on_link_open,
            Event.LINK_REMOTE_CLOSE: self._on_link_close,
            Event.DELIVERY: self._on_delivery,
        }
        handler = handlers.get(event.type)
        if handler is not None:
            handler(event)

    def _on_connection_open(self, _event: Event) -> None:
        if self._opened is not None and not self._opened.done():
            self._opened.set_result(None)

    def _on_connection_close(self, _event: Event) -> None:
        reason = _condition(self._connection) or "closed by the broker"
        self._error = self._error or ConnectionError(f"connection closed: {reason}")
        if not self._closing:
            self._connection.close()

    def _on_transport_error(self, _event: Event) -> None:
        reason = _condition(self._transport) or "transport error"
        self._error = self._error or ConnectionError(reason)

    def _on_transport_closed(self, _event: Event) -> None:
        self._end(None if self._closing else self._error or ConnectionError("transport closed"))

    def _on_link_open(self, event: Event) -> None:
        link = event.link
        if link is None:
            return
        terminus = link.remote_source if link.is_receiver else link.remote_target
        # A refused attach comes as an attach with no terminus followed by a detach with the
        # error (AMQP 1.0 2.6.3): wait for the detach to learn why.
        if terminus.address is None and terminus.type != proton.Terminus.COORDINATOR:
            return
        future = self._attaching.pop(link, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_link_close(self, event: Event) -> None:
        link = event.link
        if link is not None:
            self._link_ended(link, _condition(link) or "detached by the broker")

    def _on_session_close(self, event: Event) -> None:
        # RabbitMQ answers a refused attach (unknown exchange or queue) by ending the session.
        session = event.session
        if session is None:
            return
        reason = _condition(session) or "session ended by the broker"
        links = [*self._attaching, *self._receivers]
        links += [d.link for d in self._unsettled]
        links += [f.result() for f in self._senders.values() if f.done() and not f.exception()]
        for link in {lk for lk in links if lk.session == session}:
            # No detach frames: the broker forgot the session's links with the session.
            self._link_ended(link, reason, detach=False)
        if session == self._session:
            self._session = None
        with contextlib.suppress(proton.ProtonException):
            session.close()

    def _link_ended(self, link: proton.Link, reason: str, *, detach: bool = True) -> None:
        error = LinkDetached(f"link to {link.target.address or link.source.address}: {reason}")
        future = self._attaching.pop(link, None)
        if future is not None and not future.done():
            future.set_exception(error)
        if link.is_sender:
            address = link.target.address or ""
            cached = self._senders.get(address)
            if cached is not None and (
                not cached.done() or cached.exception() or cached.result() == link
            ):
                del self._senders[address]
            for delivery, waiter in list(self._unsettled.items()):
                if delivery.link == link:
                    del self._unsettled[delivery]
                    if not waiter.done():
                        waiter.set_exception(PublishError(f"{address}: {reason}"))
        else:
            state = self._receivers.pop(link, None)
            if state is not None and future is None and not self._closing:
                state.on_closed(error)
        if detach:
            with contextlib.suppress(proton.ProtonException):
                link.close()

    def _on_delivery(self, event: Event) -> None:
        delivery = event.delivery
        if delivery is None:
            return
        link = delivery.link
        if link.is_sender:
            if delivery.settled or delivery.remote_state in {
                proton.Delivery.ACCEPTED,
                proton.Delivery.REJECTED,
                proton.Delivery.RELEASED,
                proton.Delivery.MODIFIED,
            }:
                waiter = self._unsettled.pop(delivery, None)
                outcome = Outcome(int(delivery.remote_state), _remote_error(delivery))
                delivery.settle()
                if waiter is not None and not waiter.done():
                    waiter.set_result(outcome)
            return
        if delivery.aborted:
            delivery.settle()
            return
        if not delivery.readable or delivery.partial:
            return
        receiver: Receiver = link  # type: ignore[assignment]
        data = receiver.recv(delivery.pending)
        receiver.advance()
        state = self._receivers.get(receiver)
        if state is None or data is None:
            delivery.update(proton.Delivery.RELEASED)
            delivery.settle()
            return
        message = proton.Message()
        message.decode(data)
        state.on_message(delivery, message)

    # -- links -------------------------------------------------------------------------------

    def _new_session(self) -> Session:
        if self._ended:
            raise BrokerConnectionError("AMQP 1.0 connection is closed")
        session = self._connection.session()
        session.open()
        return session

    def _publishing_session(self) -> Session:
        """The session every sending link shares (opened again if the broker ended it)."""
        if self._session is None or self._ended:
            self._session = self._new_session()
        return self._session

    async def _attach(self, link: Sender | Receiver, timeout: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._attaching[link] = future
        link.open()
        self._process()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self._attaching.pop(link, None)
            raise BrokerConnectionError(f"link {link.name}: not attached in time") from None

    async def sender(self, address: str, timeout: float = 10.0) -> Sender:
        """The (cached) sending link to ``address``, attached."""
        cached = self._senders.get(address)
        if cached is None:
            cached = asyncio.get_running_loop().create_future()
            self._senders[address] = cached
            link = self._publishing_session().sender(f"send-{next(self._names)}")
            link.target.address = address
            link.source.address = address
            try:
                await self._attach(link, timeout)
            except BaseException as exc:
                if self._senders.get(address) is cached:
                    del self._senders[address]
                cached.set_exception(exc)
                cached.exception()  # retrieved: concurrent waiters got it already
                raise
            cached.set_result(link)
            return link
        return await asyncio.shield(cached)

    async def send(self, address: str, message: proton.Message, timeout: float) -> Outcome:
        """Send ``message`` to ``address`` and wait until the peer settles it."""
        cached = self._senders.get(address)
        if cached is not None and cached.done() and cached.exception() is None:
            link = cached.result()  # the usual case: no wait_for task per publish
        else:
            link = await asyncio.wait_for(self.sender(address, timeout), timeout)
        if self._ended:
            raise PublishError(f"{address}: connection closed")
        delivery = link.delivery(str(next(self._tags)))
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Outcome] = loop.create_future()
        self._unsettled[delivery] = waiter
        link.send(message.encode())
        link.advance()
        self._kick()
        # A timer rather than wait_for: one handle per publish instead of a task and a shield.
        timer = loop.call_later(timeout, self._expire, delivery, address, timeout)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._unsettled.pop(delivery, None)

    def _expire(self, delivery: proton.Delivery, address: str, timeout: float) -> None:
        waiter = self._unsettled.pop(delivery, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(PublishError(f"{address}: not settled within {timeout:.1f}s"))

    async def receiver(
        self,
        address: str,
        credit: int,
        on_message: Callable[[proton.Delivery, proton.Message], None],
        on_closed: Callable[[BaseException], None],
        timeout: float = 10.0,
    ) -> Receiver:
        """Attach a receiving link from ``address`` with ``credit`` and manual settlement."""
        # Its own session: a broker that refuses or kills this link (queue deleted) ends the
        # session, which then takes no other link down with it.
        link = self._new_session().receiver(f"recv-{next(self._names)}")
        link.source.address = address
        link.target.address = address
        # At-least-once: the broker keeps each message until we settle it.
        link.snd_settle_mode = proton.Link.SND_UNSETTLED
        link.rcv_settle_mode = proton.Link.RCV_FIRST
        self._receivers[link] = _ReceiverState(on_message, on_closed)
        try:
            await self._attach(link, timeout)
        except BaseException:
            self._receivers.pop(link, None)
            raise
        link.flow(credit)
        self._process()
        return link

    def settle(
        self,
        delivery: proton.Delivery,
        state: int,
        *,
        credit: int = 1,
        link: proton.Link | None = None,
    ) -> None:
        """Settle a received delivery with ``state`` and give its ``link`` ``credit`` back."""
        if self._ended:
            raise BrokerConnectionError("AMQP 1.0 connection is closed; the broker redelivers")
        if link is None:
            link = delivery.link
        delivery.update(state)
        delivery.settle()
        if credit and link.state & proton.Endpoint.LOCAL_ACTIVE:
            link.flow(credit)
        self._kick()

    def stop_link(self, link: proton.Link) -> None:
        """Ask for no more deliveries on ``link`` (credit drained); it stays attached."""
        if not self._ended and link.state & proton.Endpoint.LOCAL_ACTIVE:
            link.drain(0)
            self._process()

    def close_link(self, link: proton.Link) -> None:
        """Detach ``link`` (unsettled deliveries on it return to the queue)."""
        self._receivers.pop(link, None)
        if not self._ended and link.state & proton.Endpoint.LOCAL_ACTIVE:
            # The link's session stays open until the connection closes: ending it and opening
            # another at once reuses its channel number, which RabbitMQ's plugin mixes up.
            link.close()
            self._kick()

    # -- ending ------------------------------------------------------------------------------

    def _end(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
        self._fail_waiters(exc or BrokerConnectionError("connection closed"))
        self._receivers.clear()
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()
        pump = self._pump
        if pump is not None and pump is not asyncio.current_task() and not pump.done():
            pump.cancel()
        if exc is not None:
            _log.debug("amqp10 connection ended", error=str(exc))
        self._on_lost(exc)

    def _fail_waiters(self, error: BaseException) -> None:
        """Everyone waiting on this connection learns it ended."""
        waiters: list[asyncio.Future[Any]] = [*self._attaching.values()]
        if self._opened is not None:
            waiters.append(self._opened)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(BrokerConnectionError(str(error)))
                waiter.exception()  # marked retrieved: nobody may be waiting any more
        for outcome in self._unsettled.values():
            if not outcome.done():
                outcome.set_exception(PublishError(f"connection lost before settlement: {error}"))
                outcome.exception()
        self._attaching.clear()
        self._unsettled.clear()


def _remote_error(delivery: proton.Delivery) -> str | None:
    condition = delivery.remote.condition
    if condition is None:
        return None
    return f"{condition.name}: {condition.description}" if condition.description else condition.name
