"""A consumer group's RabbitMQ topology, declared over AMQP 0-9-1 (aio-pika).

Shared by the AMQP 0-9-1 transport and the AMQP 1.0 transport's ``rabbitmq`` dialect (whose
plugin cannot declare bindings), so both declare exactly the same names and arguments and can
share a group's queues. Names come from :mod:`broker.naming`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aio_pika import ExchangeType

from broker import naming
from broker.errors import ConfigurationError

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

    from broker.transport import SubscriptionSpec

__all__ = ["QUEUE_TYPES", "declare_exchange", "declare_group", "queue_exists_differently"]

QUEUE_TYPES = frozenset({"quorum", "classic"})
"""Values of the URL option ``queue_type`` (the group and dead-letter queues' type)."""


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    """The durable topic exchange producers publish to."""
    return await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)


async def declare_group(
    channel: AbstractChannel,
    spec: SubscriptionSpec,
    *,
    exchange: str,
    prefix: str,
    queue_type: str,
) -> AbstractQueue:
    """The group's queue bound to its patterns, its dead-letter queue, and one TTL queue per
    retry delay dead-lettering back to the group queue. Returns the group queue."""
    bound_to = await declare_exchange(channel, exchange)
    group_queue = naming.rabbit_group_queue(spec.group, prefix)
    typed: dict[str, Any] = {"x-queue-type": queue_type}
    queue = await channel.declare_queue(group_queue, durable=True, arguments=typed)
    for pattern in spec.topics:
        await queue.bind(bound_to, routing_key=naming.validate_pattern(pattern))
    await channel.declare_queue(
        naming.rabbit_dead_letter_queue(spec.group, prefix), durable=True, arguments=typed
    )
    for delay in spec.retry_delays:
        await channel.declare_queue(
            naming.rabbit_retry_queue(spec.group, delay, prefix),
            durable=True,
            arguments={
                "x-queue-type": "classic",
                "x-message-ttl": max(1, round(delay * 1000)),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": group_queue,
            },
        )
    return queue


def queue_exists_differently(
    spec: SubscriptionSpec, queue_type: str, exc: BaseException
) -> ConfigurationError:
    """The error for a PRECONDITION_FAILED on declare: the queue exists with other arguments."""
    return ConfigurationError(
        f"group {spec.group!r}: a queue exists with other arguments than "
        f"queue_type={queue_type} declares ({exc}); delete it or change the queue_type option"
    )
