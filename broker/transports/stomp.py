"""STOMP 1.2 over asyncio: the Amazon MQ for ActiveMQ transport (``stomp+ssl://…:61614``).

Destinations follow AWS's recommendation for Amazon MQ, ActiveMQ virtual topics (names from
:mod:`broker.naming`): producers SEND to ``/topic/VirtualTopic.<event type>``; each consumer group
subscribes to ``/queue/Consumer.<group>.VirtualTopic.<pattern>`` (one per pattern) plus its
retry queue ``/queue/shop.<group>.retry``. A retry is a copy sent to that retry queue with
``AMQ_SCHEDULED_DELAY`` (the broker's scheduler holds it), a dead letter a copy sent to
``/queue/shop.<group>.dlq``; both are confirmed by a RECEIPT before the original is ACKed.

CloudEvents attributes travel as ``cloudEvents_<attr>`` headers: common STOMP clients do not
escape ``:`` in header *names*, so the CloudEvents ``cloudEvents:`` form would not survive them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from broker import naming
from broker.transport import Consumer, Delivery, Transport
from broker.transports._stomp_client import StompClient
from broker.transports._tls import ssl_context

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from broker.transport import OutgoingMessage, SubscriptionSpec
    from broker.transports._stomp_frames import Frame

__all__ = ["TRANSPORT", "StompTransport"]

CE_PREFIX = "cloudEvents_"
SCHEDULED_DELAY = "AMQ_SCHEDULED_DELAY"
_DRAIN_LIMIT = 60.0
"""Upper bound on waiting for handed-out deliveries before unsubscribing anyway."""
_PROTOCOL_HEADERS = frozenset(
    {
        "ack",
        "content-length",
        "content-type",
        "destination",
        "expires",
        "message-id",
        "persistent",
        "priority",
        "receipt",
        "redelivered",
        "subscription",
        "timestamp",
        "original-destination",
        "type",
        "reply-to",
        "correlation-id",
        # Set on messages the scheduler delivers; a copy carrying it would not be rescheduled.
        "scheduledJobId",
    }
)
"""Headers STOMP or ActiveMQ set themselves: not application headers, never copied."""


def to_wire(attributes: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, str]:
    wire = {CE_PREFIX + k: v for k, v in attributes.items()}
    wire.update(headers)
    return wire


def from_wire(raw: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    attributes: dict[str, str] = {}
    headers: dict[str, str] = {}
    for key, value in raw.items():
        if key.startswith(CE_PREFIX):
            attributes[key[len(CE_PREFIX) :]] = value
        elif key not in _PROTOCOL_HEADERS and not key.startswith(("JMS", "activemq.", "AMQ_")):
            headers[key] = value
    return attributes, headers


class StompTransport(Transport):
    """One STOMP 1.2 connection to one ActiveMQ endpoint."""

    name = "stomp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix = self.url.options.get("prefix", naming.DEFAULT_PREFIX)
        endpoint = self.endpoint
        self._client = StompClient(
            endpoint.host,
            endpoint.port,
            on_lost=self._connection_lost,
            ssl_context=ssl_context(self.url.options) if endpoint.tls else None,
            login=self.url.username,
            passcode=self.url.password,
            vhost=endpoint.path.strip("/") or None,
            heartbeat=min(self.options.heartbeat, 10.0),
        )

    @property
    def system(self) -> str:
        return "activemq"

    async def connect(self) -> None:
        await self._client.connect(self.options.connect_timeout)

    async def close(self) -> None:
        await self._client.disconnect()
        self._connection_lost(None)

    async def publish(self, message: OutgoingMessage, *, timeout: float) -> None:
        headers = to_wire(message.attributes, message.headers)
        headers["content-type"] = message.content_type
        headers["persistent"] = "true"
        await self._client.send(
            f"/topic/{naming.activemq_topic(message.topic)}", message.body, headers, timeout
        )

    async def send_copy(
        self, queue: str, delivery: _Delivery, headers: Mapping[str, str], *, delay: float = 0.0
    ) -> None:
        """A confirmed copy of ``delivery`` into ``queue`` (retry, dead letter, replay)."""
        wire = to_wire(delivery.attributes, headers)
        wire["persistent"] = "true"
        if delivery.content_type:
            wire["content-type"] = delivery.content_type
        if delay > 0:
            wire[SCHEDULED_DELAY] = str(round(delay * 1000))
        await self._client.send(f"/queue/{queue}", delivery.body, wire, timeout=30.0)

    def queue_names(self, spec: SubscriptionSpec) -> dict[str, str]:
        names = {
            "dead_letter": naming.activemq_dead_letter_queue(spec.group, self.prefix),
            "retry": naming.activemq_retry_queue(spec.group, self.prefix),
        }
        for index, pattern in enumerate(spec.topics):
            key = "queue" if index == 0 else f"queue.{index}"
            names[key] = naming.activemq_consumer_queue(spec.group, pattern)
        return names

    async def subscribe(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        if spec.durable:
            names = self.queue_names(spec)
            destinations = [
                f"/queue/{naming.activemq_consumer_queue(spec.group, p)}" for p in spec.topics
            ]
            destinations.append(f"/queue/{names['retry']}")
        else:
            destinations = [
                f"/topic/{naming.VIRTUAL_TOPIC}.{naming.activemq_pattern(p)}" for p in spec.topics
            ]
        return await self._subscribe_all(
            destinations, spec, on_delivery, ephemeral=not spec.durable
        )

    async def consume_dead_letters(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        dlq = naming.activemq_dead_letter_queue(spec.group, self.prefix)
        return await self._subscribe_all([f"/queue/{dlq}"], spec, on_delivery, ephemeral=False)

    async def _subscribe_all(
        self,
        destinations: list[str],
        spec: SubscriptionSpec,
        on_delivery: Callable[[Delivery], None],
        *,
        ephemeral: bool,
    ) -> Consumer:
        consumer = _Consumer(self._client)

        def on_frame(frame: Frame) -> None:
            if consumer.paused:
                return  # not acknowledged: ActiveMQ takes it back at UNSUBSCRIBE
            delivery = _Delivery(self, frame, spec, consumer, ephemeral=ephemeral)
            consumer.handed_out(delivery)
            on_delivery(delivery)

        for destination in destinations:
            headers = {"ack": "client-individual", "activemq.prefetchSize": str(spec.prefetch)}
            consumer.ids.append(await self._client.subscribe(destination, headers, on_frame))
        return consumer


class _Consumer(Consumer):
    """The SUBSCRIBEs of one subscription, and the deliveries it has handed out."""

    def __init__(self, client: StompClient) -> None:
        self._client = client
        self.ids: list[str] = []
        self.paused = False
        self.in_flight: set[_Delivery] = set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._unsubscribing: asyncio.Task[None] | None = None

    def handed_out(self, delivery: _Delivery) -> None:
        self.in_flight.add(delivery)
        self._drained.clear()

    def settled(self, delivery: _Delivery) -> None:
        self.in_flight.discard(delivery)
        if not self.in_flight:
            self._drained.set()

    async def cancel(self) -> None:
        """Stop handing out deliveries now; UNSUBSCRIBE once the handed-out ones are settled.

        An UNSUBSCRIBE makes ActiveMQ take back every unacknowledged message of the
        subscription, so sending it while handlers still run would undo their acks; and a
        released delivery (left unacknowledged on purpose) returns to the queue then."""
        if self.paused:
            return
        self.paused = True
        if self.in_flight:
            self._unsubscribing = asyncio.get_running_loop().create_task(self._unsubscribe_later())
        else:
            await self._unsubscribe()

    async def _unsubscribe_later(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), _DRAIN_LIMIT)
        with contextlib.suppress(Exception):  # the connection may be gone by then: fine
            await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        ids, self.ids = self.ids, []
        for subscription in ids:
            await self._client.unsubscribe(subscription)


class _Delivery(Delivery):
    def __init__(
        self,
        transport: StompTransport,
        frame: Frame,
        spec: SubscriptionSpec,
        consumer: _Consumer,
        *,
        ephemeral: bool,
    ) -> None:
        self._transport = transport
        self._consumer = consumer
        self._ack_id = frame.headers.get("ack") or frame.headers.get("message-id", "")
        self._spec = spec
        self._ephemeral = ephemeral
        self._settled = False
        self.body = frame.body
        self.attributes, self.headers = from_wire(frame.headers)
        self.content_type = frame.headers.get("content-type")
        self.topic = self.attributes.get("type") or frame.headers.get("destination", "")
        self.redelivered = frame.headers.get("redelivered") == "true"

    def _claim(self) -> bool:
        """True for the first settling call only: a delivery is settled once."""
        if self._settled:
            return False
        self._settled = True
        return True

    def _ack(self) -> None:
        self._transport._client.ack(self._ack_id)  # noqa: SLF001 - same module family

    async def ack(self) -> None:
        if self._claim():
            self._ack()
            self._consumer.settled(self)

    async def release(self) -> None:
        # ActiveMQ treats a STOMP NACK as a poison message (straight to its DLQ), so releasing
        # means leaving the message unacknowledged: the broker redelivers it once this
        # subscription ends, which is when release is used (shutdown, `dlq list`).
        if self._claim():
            self._consumer.settled(self)

    async def retry(self, delay: float, headers: Mapping[str, str]) -> None:
        if self._claim():
            queue = naming.activemq_retry_queue(self._spec.group, self._transport.prefix)
            await self._copy_then_ack(queue, headers, delay)

    async def dead_letter(self, headers: Mapping[str, str]) -> None:
        if self._claim():
            queue = naming.activemq_dead_letter_queue(self._spec.group, self._transport.prefix)
            await self._copy_then_ack(queue, {**self.headers, **headers}, 0.0)

    async def _copy_then_ack(self, queue: str, headers: Mapping[str, str], delay: float) -> None:
        # Counted as settled only once the ACK is written: the last settled delivery of a
        # cancelled subscription lets its UNSUBSCRIBE go out, and an ACK after that is lost
        # (ActiveMQ has taken the message back), leaving e.g. a replayed dead letter behind.
        try:
            if not self._ephemeral:
                await self._transport.send_copy(queue, self, headers, delay=delay)
            self._ack()
        finally:
            self._consumer.settled(self)


TRANSPORT = StompTransport
