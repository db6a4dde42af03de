"""RabbitMQ topology for the AMQP 1.0 transport, declared over AMQP 0-9-1.

RabbitMQ 3.x's AMQP 1.0 plugin can attach to existing queues and exchanges but cannot declare a
queue with arguments or bind one, so the exchange, each group's queue bound to its patterns,
its dead-letter queue and its TTL retry queues are declared here through a short-lived aio-pika
connection to the same node (RabbitMQ serves both protocols on one listener, so the same host,
port, vhost, credentials and TLS settings), by the same code as the AMQP 0-9-1 transport
(:mod:`._rabbit_topology`), so both transports declare the same names and arguments and can
share a group's queues.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import aio_pika
import aiormq

from broker import naming
from broker.errors import BrokerConnectionError, ConfigurationError
from broker.transports._rabbit_topology import (
    QUEUE_TYPES,
    declare_exchange,
    declare_group,
    queue_exists_differently,
)
from broker.transports._tls import ssl_context

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aio_pika.abc import AbstractChannel, AbstractExchange

    from broker.transport import SubscriptionSpec
    from broker.url import BrokerURL, Endpoint

__all__ = ["RabbitTopology"]

_TAIL_EXPIRES_MS = 60_000
_T = TypeVar("_T")


class RabbitTopology:
    """Declares the broker-side objects a subscription needs, then disconnects."""

    def __init__(self, url: BrokerURL, endpoint: Endpoint, *, connection_name: str) -> None:
        options = url.options
        self.exchange = options.get("exchange", naming.DEFAULT_EXCHANGE)
        self.prefix = options.get("prefix", naming.DEFAULT_PREFIX)
        self.queue_type = options.get("queue_type", "quorum")
        if self.queue_type not in QUEUE_TYPES:
            raise ConfigurationError(f"queue_type must be one of {sorted(QUEUE_TYPES)}")
        self._url = url
        self._endpoint = endpoint
        self._connection_name = f"{connection_name} (amqp10 topology)"

    async def _channel_call(
        self, work: Callable[[AbstractChannel, AbstractExchange], Awaitable[_T]]
    ) -> _T:
        """Run ``work`` on a fresh channel with the exchange declared, then disconnect."""
        endpoint = self._endpoint
        kwargs: dict[str, Any] = {
            "host": endpoint.host,
            "port": endpoint.port,
            "virtualhost": endpoint.path.lstrip("/") or "/",
            "timeout": 10,
            "client_properties": {"connection_name": self._connection_name},
        }
        if self._url.username is not None:
            kwargs["login"] = self._url.username
            kwargs["password"] = self._url.password or ""
        if endpoint.tls:
            kwargs["ssl"] = True
            kwargs["ssl_context"] = ssl_context(self._url.options)
        try:
            connection = await aio_pika.connect(**kwargs)
            async with connection:
                channel = await connection.channel(publisher_confirms=False)
                exchange = await declare_exchange(channel, self.exchange)
                return await work(channel, exchange)
        except (OSError, aiormq.exceptions.AMQPError, TimeoutError) as exc:
            raise BrokerConnectionError(
                f"{endpoint}: declaring RabbitMQ topology over AMQP 0-9-1 failed: {exc!r}"
            ) from exc

    async def declare_exchange(self) -> None:
        """The durable topic exchange producers publish to."""

        async def nothing_more(_channel: AbstractChannel, _exchange: AbstractExchange) -> None:
            return None

        await self._channel_call(nothing_more)

    async def declare_group(self, spec: SubscriptionSpec) -> None:
        """The group's queue bound to its patterns, its dead-letter queue and retry queues."""

        async def declare(channel: AbstractChannel, _exchange: AbstractExchange) -> None:
            await declare_group(
                channel,
                spec,
                exchange=self.exchange,
                prefix=self.prefix,
                queue_type=self.queue_type,
            )

        try:
            await self._channel_call(declare)
        except BrokerConnectionError as exc:
            if isinstance(exc.__cause__, aiormq.exceptions.ChannelPreconditionFailed):
                raise queue_exists_differently(spec, self.queue_type, exc.__cause__) from exc
            raise

    async def declare_tail(self, spec: SubscriptionSpec) -> str:
        """A temporary queue bound to the patterns: deleted when its consumer goes (or after a
        minute unused, if none ever attaches). Returns its name."""
        name = f"{self.prefix}.tail.{uuid.uuid4().hex}"

        async def declare(channel: AbstractChannel, exchange: AbstractExchange) -> str:
            queue = await channel.declare_queue(
                name,
                durable=False,
                auto_delete=True,
                arguments={"x-queue-type": "classic", "x-expires": _TAIL_EXPIRES_MS},
            )
            for pattern in spec.topics:
                await queue.bind(exchange, routing_key=naming.validate_pattern(pattern))
            return name

        return await self._channel_call(declare)
