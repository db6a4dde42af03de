"""AMQP 0-9-1 consumers and deliveries: settle once; retry and dead-letter by confirmed copy.

Deliveries come straight from aiormq's channel (``basic.consume`` on the underlying channel), as
publishes go straight to it: aio-pika's ``Queue.consume`` would build an ``IncomingMessage``
(every property decoded again) and run the callback in one more task per message, for nothing
this transport reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from aio_pika import DeliveryMode, Message

from broker import naming
from broker.transport import Consumer, Delivery
from broker.transports._amqp091_wire import from_wire, to_wire

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aio_pika.abc import AbstractChannel, AbstractQueue
    from aiormq.abc import DeliveredMessage
    from pamqp.commands import Basic

    from broker.transport import SubscriptionSpec
    from broker.transports.amqp091 import Amqp091Transport

__all__ = ["AmqpConsumer", "AmqpDelivery"]


class AmqpConsumer(Consumer):
    """A basic.consume on its own channel."""

    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, tag: str) -> None:
        self._channel = channel
        self._queue = queue
        self._tag = tag
        self._cancelled = False

    async def cancel(self) -> None:
        if self._cancelled or self._channel.is_closed:
            self._cancelled = True
            return
        self._cancelled = True
        await self._queue.cancel(self._tag)
        # The channel stays open until its deliveries are settled; closing it now would
        # return them to the queue. It closes with the connection.


class AmqpDelivery(Delivery):
    """One basic.deliver. ``home`` is the queue a retried copy returns to (the group queue);
    empty for a temporary subscription, where retry and dead-letter just ack."""

    def __init__(
        self,
        transport: Amqp091Transport,
        message: DeliveredMessage,
        spec: SubscriptionSpec,
        *,
        home: str,
    ) -> None:
        self._transport = transport
        self._message = message
        self._properties = properties = message.header.properties
        self._spec = spec
        self._home = home
        self._settled = False
        self.body = message.body
        self.attributes, self.headers = from_wire(properties.headers)
        self.content_type = properties.content_type
        # A consumer is only ever handed basic.deliver frames (not get-ok or return), and
        # the broker numbers each of them (pamqp types the tag optional for other frames).
        deliver = cast("Basic.Deliver", message.delivery)
        self._tag = cast("int", deliver.delivery_tag)
        # A retried or replayed copy comes through the default exchange with the queue name as
        # routing key; its topic is the event type the original was published under.
        routed = deliver.routing_key or ""
        self.topic = routed if deliver.exchange else (properties.message_type or routed)
        self.redelivered = bool(deliver.redelivered)

    def _settle(self) -> bool:
        """True the first time: a delivery is settled once, later calls do nothing."""
        if self._settled:
            return False
        self._settled = True
        return True

    def _copy(self, headers: Mapping[str, str]) -> Message:
        return Message(
            self.body,
            headers=to_wire(self.attributes, headers),
            content_type=self.content_type,
            message_id=self._properties.message_id,
            type=self._properties.message_type,
            timestamp=self._properties.timestamp,
            delivery_mode=DeliveryMode.PERSISTENT,
        )

    async def _ack(self) -> None:
        await self._message.channel.basic_ack(self._tag)

    async def ack(self) -> None:
        if self._settle():
            await self._ack()

    async def release(self) -> None:
        if self._settle():
            await self._message.channel.basic_nack(self._tag, requeue=True)

    async def retry(self, delay: float, headers: Mapping[str, str]) -> None:
        if not self._settle():
            return
        if self._home:
            target = self._home
            delays = sorted(self._spec.retry_delays)
            if delay > 0 and delays:
                chosen = next((d for d in delays if d >= delay), delays[-1])
                target = naming.rabbit_retry_queue(self._spec.group, chosen, self._transport.prefix)
            await self._transport.send_to_queue(target, self._copy(headers))
        await self._ack()

    async def dead_letter(self, headers: Mapping[str, str]) -> None:
        if not self._settle():
            return
        if self._home:
            merged = {**self.headers, **headers}
            dlq = naming.rabbit_dead_letter_queue(self._spec.group, self._transport.prefix)
            await self._transport.send_to_queue(dlq, self._copy(merged))
        await self._ack()
