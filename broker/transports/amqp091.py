"""AMQP 0-9-1 over aio-pika: the Amazon MQ for RabbitMQ transport.

Topology (names from :mod:`broker.naming`): one durable topic exchange; per consumer group a
durable queue (quorum by default) bound with the group's patterns, a dead-letter queue, and one
TTL queue per retry delay that dead-letters back to the group queue, so a retried copy returns to
that group only and a waiting retry never occupies the consumer's prefetch window.

Publishes go through one channel with publisher confirms; each publish awaits its own confirm,
so many are in flight at once (pipelined), and a mandatory publish nobody is bound for raises
:class:`~broker.errors.UnroutableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import aio_pika
import aiormq
from aio_pika import DeliveryMode, Message

from broker import naming
from broker.errors import (
    BrokerConnectionError,
    ConfigurationError,
    PublishError,
    UnroutableError,
)
from broker.transport import Consumer, Delivery, Transport
from broker.transports._amqp091_delivery import AmqpConsumer, AmqpDelivery
from broker.transports._amqp091_wire import timestamp, to_wire
from broker.transports._rabbit_topology import (
    QUEUE_TYPES,
    declare_exchange,
    declare_group,
    queue_exists_differently,
)
from broker.transports._tls import ssl_context

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from aio_pika.abc import (
        AbstractChannel,
        AbstractConnection,
        AbstractExchange,
        AbstractQueue,
    )
    from aiormq.abc import DeliveredMessage

    from broker.transport import OutgoingMessage, SubscriptionSpec

__all__ = ["TRANSPORT", "Amqp091Transport"]


class Amqp091Transport(Transport):
    """One AMQP 0-9-1 connection to one RabbitMQ endpoint."""

    name = "amqp091"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        opts = self.url.options
        self.exchange_name = opts.get("exchange", naming.DEFAULT_EXCHANGE)
        self.prefix = opts.get("prefix", naming.DEFAULT_PREFIX)
        self.queue_type = opts.get("queue_type", "quorum")
        self._connection: AbstractConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._default_exchange: AbstractExchange | None = None
        self._wire: aiormq.abc.AbstractChannel | None = None
        self._closing = False

    # -- connection --------------------------------------------------------------------------

    async def connect(self) -> None:
        if self.queue_type not in QUEUE_TYPES:
            raise ConfigurationError(
                f"queue_type={self.queue_type!r}: must be one of {sorted(QUEUE_TYPES)}"
            )
        endpoint = self.endpoint
        # The URL path is the vhost, percent-encoded (``/%2F`` is ``/``); none means ``/``.
        vhost = unquote(endpoint.path[1:]) or "/"
        kwargs: dict[str, Any] = {
            "host": endpoint.host,
            "port": endpoint.port,
            "virtualhost": vhost,
            "timeout": self.options.connect_timeout,
            "client_properties": {"connection_name": self.options.connection_name},
            # AMQP negotiates whole seconds; 0 turns heartbeats off, so never round down to it.
            "heartbeat": math.ceil(self.options.heartbeat),
        }
        if self.url.username is None:
            # No credentials: aiormq would log in as guest/guest. Ask for certificate login
            # (EXTERNAL, with ``certfile``/``keyfile``) instead; a broker without it refuses.
            kwargs["auth"] = "external"
        elif self.url.password is None:
            raise ConfigurationError(
                f"{endpoint}: the broker URL names user {self.url.username!r} but no password"
            )
        else:
            kwargs["login"] = self.url.username
            kwargs["password"] = self.url.password
        if endpoint.tls:
            kwargs["ssl"] = True
            kwargs["ssl_context"] = ssl_context(self.url.options)
        try:
            self._connection = await aio_pika.connect(**kwargs)
            self._connection.close_callbacks.add(self._on_close)
            self._publisher = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._publisher.close_callbacks.add(self._on_channel_close)
            await declare_exchange(self._publisher, self.exchange_name)
            self._default_exchange = self._publisher.default_exchange
            self._wire = await self._publisher.get_underlay_channel()
        except (OSError, aiormq.exceptions.AMQPError, TimeoutError) as exc:
            await self.close()
            reason = str(exc) or type(exc).__name__
            if self.url.username is None and isinstance(exc, aiormq.exceptions.AuthenticationError):
                reason = "no username/password in the URL, and no certificate (EXTERNAL) login"
            raise BrokerConnectionError(f"{endpoint}: {reason}") from exc

    def _on_close(self, _sender: Any, exc: BaseException | None = None) -> None:
        self._connection_lost(None if self._closing else exc or ConnectionError("closed"))

    def _on_channel_close(self, _channel: Any, exc: BaseException | None = None) -> None:
        # A channel the broker closed (a channel error such as a deleted exchange or queue)
        # leaves a connection that can no longer publish or consume: report it lost, so the
        # supervisor reconnects, redeclares and resubscribes.
        if not self._closing:
            self._connection_lost(exc or ConnectionError("channel closed by the broker"))

    async def close(self) -> None:
        self._closing = True
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                self._connection_lost(None)
        self._connection_lost(None)

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, message: OutgoingMessage, *, timeout: float) -> None:
        if self._wire is None:
            raise BrokerConnectionError(f"{self.endpoint}: not connected")
        # The hot path goes straight to aiormq's channel: aio-pika's Message and Exchange
        # layers would only rebuild these same properties, at a measurable cost per publish.
        properties = aiormq.spec.Basic.Properties(
            content_type=message.content_type,
            delivery_mode=DeliveryMode.PERSISTENT,
            headers=to_wire(message.attributes, message.headers),
            message_id=message.attributes.get("id"),
            message_type=message.topic,
            timestamp=timestamp(message.attributes.get("time")),
        )
        await self._confirm(
            self._wire.basic_publish(
                message.body,
                exchange=self.exchange_name,
                routing_key=message.topic,
                properties=properties,
                mandatory=message.mandatory,
                timeout=timeout,
            ),
            message.topic,
        )

    async def send_to_queue(self, queue: str, message: Message, *, timeout: float = 30.0) -> None:
        """Publish a copy straight into ``queue`` (retry, dead-letter, replay), confirmed."""
        if self._default_exchange is None:
            raise BrokerConnectionError(f"{self.endpoint}: not connected")
        try:
            await self._confirm(
                self._default_exchange.publish(message, routing_key=queue, timeout=timeout), queue
            )
        except PublishError as exc:
            # The copy is not confirmed, so the original stays unacknowledged and would hold a
            # prefetch slot for good. Reconnecting redeclares the group's retry and dead-letter
            # queues (in case they were deleted) and redelivers the original.
            self._connection_lost(exc)
            raise

    async def _confirm(self, publishing: Any, what: str) -> None:
        try:
            await publishing
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # aiormq cancels pending confirmations when the connection closes.
            raise PublishError(f"{what}: connection lost before confirm") from exc
        except aiormq.exceptions.PublishError as exc:
            raise UnroutableError(f"{what}: no queue is bound for this routing key") from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishError(f"{what}: broker refused the message ({exc})") from exc
        except TimeoutError as exc:
            raise PublishError(f"{what}: not confirmed in time") from exc
        except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise PublishError(f"{what}: connection lost before confirm ({exc})") from exc

    # -- consuming ---------------------------------------------------------------------------

    def queue_names(self, spec: SubscriptionSpec) -> dict[str, str]:
        return {
            "exchange": self.exchange_name,
            "queue": naming.rabbit_group_queue(spec.group, self.prefix),
            "dead_letter": naming.rabbit_dead_letter_queue(spec.group, self.prefix),
        }

    async def _declare(self, channel: AbstractChannel, spec: SubscriptionSpec) -> AbstractQueue:
        """The group's queue bound to its patterns, its DLQ and its retry queues."""
        return await declare_group(
            channel,
            spec,
            exchange=self.exchange_name,
            prefix=self.prefix,
            queue_type=self.queue_type,
        )

    async def subscribe(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        channel = await self._consumer_channel(spec)
        async with self._setting_up(channel, spec):
            if spec.durable:
                queue = await self._declare(channel, spec)
                home = queue.name
            else:
                queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
                exchange = await declare_exchange(channel, self.exchange_name)
                for pattern in spec.topics:
                    await queue.bind(exchange, routing_key=naming.validate_pattern(pattern))
                home = ""
            return await self._consume(channel, queue, spec, on_delivery, home=home)

    async def consume_dead_letters(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        channel = await self._consumer_channel(spec)
        async with self._setting_up(channel, spec):
            group_queue = await self._declare(channel, spec)
            dlq = await channel.get_queue(self.queue_names(spec)["dead_letter"], ensure=False)
            return await self._consume(channel, dlq, spec, on_delivery, home=group_queue.name)

    @contextlib.asynccontextmanager
    async def _setting_up(
        self, channel: AbstractChannel, spec: SubscriptionSpec
    ) -> AsyncIterator[None]:
        """Close the channel if setting up a subscription fails; a queue that exists with other
        arguments (another queue type) is a configuration error, not a lost connection."""
        try:
            yield
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await channel.close()
            if isinstance(exc, aiormq.exceptions.ChannelPreconditionFailed):
                raise queue_exists_differently(spec, self.queue_type, exc) from exc
            raise

    async def _consumer_channel(self, spec: SubscriptionSpec) -> AbstractChannel:
        if self._connection is None:
            raise BrokerConnectionError(f"{self.endpoint}: not connected")
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=spec.prefetch)
        return channel

    async def _consume(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        spec: SubscriptionSpec,
        on_delivery: Callable[[Delivery], None],
        *,
        home: str,
    ) -> Consumer:
        async def deliver(message: DeliveredMessage) -> None:
            on_delivery(AmqpDelivery(self, message, spec, home=home))

        wire = await channel.get_underlay_channel()
        consuming = await wire.basic_consume(queue.name, deliver, no_ack=False)
        tag = consuming.consumer_tag
        if tag is None:  # pamqp types it optional; RabbitMQ always names the consumer
            raise BrokerConnectionError(f"{self.endpoint}: basic.consume-ok without a tag")
        # From here on a channel the broker closes means a dead subscription: reconnect.
        channel.close_callbacks.add(self._on_channel_close)
        return AmqpConsumer(channel, queue, tag)


TRANSPORT = Amqp091Transport
