"""An in-memory broker for unit tests of handlers and of the core's dispatch logic.

It is a :class:`~broker.transport.Transport` like the real ones, passed in instead of patched::

    hub = InMemoryBroker()
    async with Broker("amqp://memory/", source="//tests", transport_class=hub.transport_class) as b:
        await b.subscribe("billing", ["shop.orders.v1.#"], handler)
        await b.publish("shop.orders.v1.OrderPlaced", {...})
        await hub.wait_idle()
    assert hub.dead_letters("billing") == []

Semantics follow the RabbitMQ topology (the reference transport): a topic exchange routes each
message to every consumer group whose patterns match; the consumers of one group share its queue
(round-robin, at most ``prefetch`` unsettled each); ``retry`` puts a copy back in the group's
queue after the delay, ``dead_letter`` appends a copy to the group's dead-letter list,
``release`` and a closed connection return unsettled messages to the front of the queue, marked
redelivered. :meth:`InMemoryBroker.drop_connections` simulates a broker failure, so the core's
reconnect-and-resubscribe path runs without a broker.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from broker import naming
from broker.errors import BrokerConnectionError, UnroutableError
from broker.transport import Consumer, Delivery, Transport

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from broker.transport import OutgoingMessage, SubscriptionSpec, TransportOptions
    from broker.url import BrokerURL, Endpoint

__all__ = ["InMemoryBroker", "MemoryTransport", "StoredMessage"]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as the in-memory broker holds it."""

    topic: str
    body: bytes
    attributes: Mapping[str, str]
    headers: Mapping[str, str]
    content_type: str | None
    redelivered: bool = False


@dataclass(eq=False)
class _Queue:
    name: str
    patterns: tuple[str, ...]
    temporary: bool = False
    ready: deque[StoredMessage] = field(default_factory=deque)
    consumers: list[_MemoryConsumer] = field(default_factory=list)
    _turn: int = 0

    def put(self, message: StoredMessage, *, front: bool = False) -> None:
        if front:
            self.ready.appendleft(message)
        else:
            self.ready.append(message)
        self.pump()

    def pump(self) -> None:
        """Hand ready messages to consumers with room in their prefetch window, in turn."""
        while self.ready:
            open_ = [c for c in self.consumers if c.has_room()]
            if not open_:
                return
            consumer = open_[self._turn % len(open_)]
            self._turn += 1
            consumer.deliver(self.ready.popleft())


class InMemoryBroker:
    """The broker's state, shared by every :class:`MemoryTransport` connected to it."""

    def __init__(self, *, exchange: str = "memory") -> None:
        self.exchange = exchange
        self.published: list[StoredMessage] = []
        """Every message accepted by :meth:`publish`, in order (retries and DLQ copies not)."""
        self._queues: dict[str, _Queue] = {}
        """Group queues by group name, dead-letter queues as ``<group>.dlq``, temporary ones
        as ``<group>.tmp<n>`` (group names have no dots, so these never collide)."""
        self._transports: set[MemoryTransport] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._temporary = itertools.count(1)

    @property
    def transport_class(self) -> type[MemoryTransport]:
        """A :class:`MemoryTransport` subclass bound to this broker, for
        ``Broker(..., transport_class=...)``."""
        return type("BoundMemoryTransport", (MemoryTransport,), {"hub": self})

    # -- what tests inspect ------------------------------------------------------------------

    def queued(self, group: str) -> list[StoredMessage]:
        """Messages waiting in ``group``'s queue (not delivered yet)."""
        queue = self._queues.get(group)
        return list(queue.ready) if queue else []

    def dead_letters(self, group: str) -> list[StoredMessage]:
        """Messages in ``group``'s dead-letter queue (not handed to a DLQ consumer)."""
        return list(self._dead_queue(group).ready)

    def unsettled(self, group: str | None = None) -> int:
        """Deliveries handed to consumers and not settled yet."""
        queues = [self._queues[group]] if group in self._queues else []
        if group is None:
            queues = list(self._queues.values())
        return sum(len(c.unsettled) for q in queues for c in q.consumers)

    def idle(self) -> bool:
        """Nothing queued with a consumer, nothing unsettled, no retry waiting."""
        waiting = any(q.ready and q.consumers for q in self._queues.values())
        return not waiting and not self._timers and self.unsettled() == 0

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until :meth:`idle` (every message handled and settled)."""
        async with asyncio.timeout(timeout):
            # Idleness spans queues, consumers and timers; a short poll keeps them simple.
            while not self.idle():  # noqa: ASYNC110
                await asyncio.sleep(0.001)

    # -- what transports call ----------------------------------------------------------------

    def publish(self, message: StoredMessage, *, mandatory: bool = True) -> None:
        """Route ``message`` by topic to every matching group queue (raw publish for tests,
        e.g. of an undecodable body)."""
        targets = [
            q
            for q in self._queues.values()
            if any(naming.topic_matches(p, message.topic) for p in q.patterns)
        ]
        if mandatory and not targets:
            raise UnroutableError(f"{message.topic}: no queue is bound for this topic")
        self.published.append(message)
        for queue in targets:
            queue.put(message)

    def drop_connections(self, error: BaseException | None = None) -> None:
        """Simulate a broker failure: every connection is lost, unsettled messages return."""
        for transport in list(self._transports):
            transport.drop(
                error or BrokerConnectionError("in-memory broker dropped the connection")
            )

    def _queue(self, spec: SubscriptionSpec) -> _Queue:
        for pattern in spec.topics:
            naming.validate_pattern(pattern)
        if not spec.durable:
            name = f"{naming.validate_group(spec.group)}.tmp{next(self._temporary)}"
            self._queues[name] = _Queue(name, spec.topics, temporary=True)
            return self._queues[name]
        queue = self._queues.setdefault(
            naming.validate_group(spec.group), _Queue(spec.group, spec.topics)
        )
        queue.patterns = tuple(dict.fromkeys(queue.patterns + spec.topics))
        return queue

    def _dead_queue(self, group: str) -> _Queue:
        name = f"{naming.validate_group(group)}.dlq"
        return self._queues.setdefault(name, _Queue(name, ()))

    def _later(self, delay: float, queue: _Queue, message: StoredMessage) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            queue.put(message)

        handle = asyncio.get_running_loop().call_later(max(0.0, delay), fire)
        self._timers.add(handle)

    def _remove(self, queue: _Queue) -> None:
        if queue.temporary and not queue.consumers:
            self._queues.pop(queue.name, None)


class MemoryTransport(Transport):
    """A connection to an :class:`InMemoryBroker` (use ``hub.transport_class``)."""

    name = "amqp091"
    hub: InMemoryBroker

    def __init__(self, url: BrokerURL, endpoint: Endpoint, options: TransportOptions) -> None:
        super().__init__(url, endpoint, options)
        self._connected = False
        self._consumers: set[_MemoryConsumer] = set()

    @property
    def system(self) -> str:
        return "memory"

    async def connect(self) -> None:
        self._connected = True
        self.hub._transports.add(self)  # noqa: SLF001 - the hub and its transports are one unit

    async def publish(self, message: OutgoingMessage, *, timeout: float) -> None:  # noqa: ARG002
        self._check()
        stored = StoredMessage(
            topic=message.topic,
            body=message.body,
            attributes=dict(message.attributes),
            headers=dict(message.headers),
            content_type=message.content_type,
        )
        self.hub.publish(stored, mandatory=message.mandatory)

    async def subscribe(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        self._check()
        queue = self.hub._queue(spec)  # noqa: SLF001
        return self._start(queue, spec, on_delivery, dead_letters=False)

    async def consume_dead_letters(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        self._check()
        live = self.hub._queue(spec)  # noqa: SLF001
        dlq = self.hub._dead_queue(spec.group)  # noqa: SLF001
        return self._start(dlq, spec, on_delivery, dead_letters=True, home=live)

    def _start(
        self,
        queue: _Queue,
        spec: SubscriptionSpec,
        on_delivery: Callable[[Delivery], None],
        *,
        dead_letters: bool,
        home: _Queue | None = None,
    ) -> _MemoryConsumer:
        consumer = _MemoryConsumer(
            self, queue, spec, on_delivery, dead_letters=dead_letters, home=home or queue
        )
        self._consumers.add(consumer)
        queue.consumers.append(consumer)
        # Deliveries start on the next loop turn, after subscribe() has returned.
        asyncio.get_running_loop().call_soon(queue.pump)
        return consumer

    def _check(self) -> None:
        if not self._connected:
            raise BrokerConnectionError(f"{self.endpoint}: not connected")

    def drop(self, error: BaseException | None) -> None:
        """End this connection: consumers stop, unsettled messages return to their queues."""
        if not self._connected:
            return
        self._connected = False
        self.hub._transports.discard(self)  # noqa: SLF001
        for consumer in list(self._consumers):
            consumer.detach()
        self._consumers.clear()
        self._connection_lost(error)

    async def close(self) -> None:
        self.drop(None)
        self._connection_lost(None)

    def queue_names(self, spec: SubscriptionSpec) -> dict[str, str]:
        group = naming.validate_group(spec.group)
        return {"exchange": self.hub.exchange, "queue": group, "dead_letter": f"{group}.dlq"}


class _MemoryConsumer(Consumer):
    def __init__(
        self,
        transport: MemoryTransport,
        queue: _Queue,
        spec: SubscriptionSpec,
        on_delivery: Callable[[Delivery], None],
        *,
        dead_letters: bool,
        home: _Queue,
    ) -> None:
        self.transport = transport
        self.queue = queue
        self.spec = spec
        self.home = home
        self.dead_letters = dead_letters
        self.unsettled: set[_MemoryDelivery] = set()
        self._on_delivery = on_delivery
        self._active = True

    def has_room(self) -> bool:
        return self._active and len(self.unsettled) < self.spec.prefetch

    def deliver(self, message: StoredMessage) -> None:
        delivery = _MemoryDelivery(self, message)
        self.unsettled.add(delivery)
        self._on_delivery(delivery)

    def settled(self, delivery: _MemoryDelivery) -> None:
        self.unsettled.discard(delivery)
        self.queue.pump()

    async def cancel(self) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._active:
            self._active = False
            if self in self.queue.consumers:
                self.queue.consumers.remove(self)
            self.transport.hub._remove(self.queue)  # noqa: SLF001

    def detach(self) -> None:
        """Connection gone: unsettled messages go back to the front of the queue."""
        self._stop()
        for delivery in sorted(self.unsettled, key=lambda d: d.seq, reverse=True):
            delivery.settled = True
            self.queue.put(replace(delivery.message, redelivered=True), front=True)
        self.unsettled.clear()


_sequence = itertools.count()


class _MemoryDelivery(Delivery):
    def __init__(self, consumer: _MemoryConsumer, message: StoredMessage) -> None:
        self.consumer = consumer
        self.message = message
        self.seq = next(_sequence)
        self.settled = False
        self.body = message.body
        self.attributes = dict(message.attributes)
        self.headers = dict(message.headers)
        self.content_type = message.content_type
        self.topic = message.topic
        self.redelivered = message.redelivered

    def _settle(self) -> bool:
        """True the first time; later calls (or calls after the connection dropped) do nothing."""
        if self.settled:
            return False
        if not self.consumer.transport._connected:  # noqa: SLF001
            raise BrokerConnectionError("connection lost; the message will be redelivered")
        self.settled = True
        self.consumer.settled(self)
        return True

    def _copy(self, headers: Mapping[str, str]) -> StoredMessage:
        return replace(self.message, headers=dict(headers), redelivered=False)

    async def ack(self) -> None:
        self._settle()

    async def release(self) -> None:
        if self._settle():
            self.consumer.queue.put(replace(self.message, redelivered=True), front=True)

    async def retry(self, delay: float, headers: Mapping[str, str]) -> None:
        if not self._settle():
            return
        hub = self.consumer.transport.hub
        if self.consumer.dead_letters:
            self.consumer.home.put(self._copy(headers))
        elif not self.consumer.queue.temporary:
            hub._later(delay, self.consumer.home, self._copy(headers))  # noqa: SLF001

    async def dead_letter(self, headers: Mapping[str, str]) -> None:
        if not self._settle():
            return
        if self.consumer.dead_letters or self.consumer.queue.temporary:
            return
        merged = {**self.headers, **headers}
        hub = self.consumer.transport.hub
        hub._dead_queue(self.consumer.spec.group).put(self._copy(merged))  # noqa: SLF001
