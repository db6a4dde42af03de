"""AMQP 1.0 addresses per broker dialect (URL option ``dialect``), from :mod:`broker.naming`.

==============  ============================================  ==================================
what            ``activemq`` (ActiveMQ Classic / Amazon MQ)   ``rabbitmq`` (3.x AMQP 1.0 plugin)
==============  ============================================  ==================================
publish         ``topic://VirtualTopic.<type>``                ``/exchange/<exchange>/<type>``
group reads     ``queue://Consumer.<g>.VirtualTopic.<p>``      ``/amq/queue/<prefix>.<g>``
                per pattern (``#`` -> ``>``), plus             (one queue bound to every pattern)
                ``queue://<prefix>.<g>.retry``
retry           ``queue://<prefix>.<g>.retry`` with the        ``/amq/queue/<prefix>.<g>.retry.<n>``
                ``x-opt-delivery-delay`` annotation            (TTL queue dead-lettering home)
dead letters    ``queue://<prefix>.<g>.dlq``                   ``/amq/queue/<prefix>.<g>.dlq``
replay          ``queue://<prefix>.<g>.retry`` (no delay)      ``/amq/queue/<prefix>.<g>``
temporary tail  ``topic://VirtualTopic.<p>`` per pattern       ``/amq/queue/<declared queue>``
==============  ============================================  ==================================

On ActiveMQ retries and replays go to the group's retry queue rather than back to the consumer
queue because a consumer queue may be a wildcard (``Consumer.audit.VirtualTopic.shop.>``), and
sending to a wildcard name is a wildcard send there (the STOMP transport does the same).
RabbitMQ's plugin cannot declare bindings, so on that dialect the queues behind these addresses
are declared over AMQP 0-9-1 first (:mod:`broker.transports._amqp10_topology`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from broker import naming
from broker.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from broker.transport import SubscriptionSpec

__all__ = ["DELIVERY_DELAY", "Addresses"]

DELIVERY_DELAY = "x-opt-delivery-delay"
"""Message annotation (milliseconds) ActiveMQ's scheduler honours for delayed delivery."""

Dialect = Literal["activemq", "rabbitmq"]


@dataclass(frozen=True, slots=True)
class Addresses:
    """Every address the AMQP 1.0 transport uses, for one dialect."""

    dialect: Dialect
    exchange: str = naming.DEFAULT_EXCHANGE
    prefix: str = naming.DEFAULT_PREFIX

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Addresses:
        """From URL options: ``dialect`` (default ``activemq``), ``exchange``, ``prefix``."""
        dialect = options.get("dialect", "activemq")
        if dialect not in {"activemq", "rabbitmq"}:
            raise ConfigurationError(f"dialect must be 'activemq' or 'rabbitmq', not {dialect!r}")
        return cls(
            dialect="rabbitmq" if dialect == "rabbitmq" else "activemq",
            exchange=options.get("exchange", naming.DEFAULT_EXCHANGE),
            prefix=options.get("prefix", naming.DEFAULT_PREFIX),
        )

    @property
    def rabbitmq(self) -> bool:
        return self.dialect == "rabbitmq"

    def queue(self, name: str) -> str:
        """The address of an existing queue, as a source or a target."""
        return f"/amq/queue/{name}" if self.rabbitmq else f"queue://{name}"

    def publish(self, topic: str) -> str:
        """Where a producer sends an event of type ``topic``."""
        if self.rabbitmq:
            return f"/exchange/{self.exchange}/{topic}"
        return f"topic://{naming.activemq_topic(topic)}"

    def group_sources(self, spec: SubscriptionSpec) -> list[str]:
        """What a consumer group reads: on RabbitMQ its queue (bound to every pattern); on
        ActiveMQ one virtual-topic consumer queue per pattern plus the group's retry queue."""
        if self.rabbitmq:
            return [self.queue(naming.rabbit_group_queue(spec.group, self.prefix))]
        queues = [naming.activemq_consumer_queue(spec.group, p) for p in dict.fromkeys(spec.topics)]
        queues.append(naming.activemq_retry_queue(spec.group, self.prefix))
        return [self.queue(q) for q in queues]

    def dead_letter(self, spec: SubscriptionSpec) -> str:
        """The group's dead-letter queue (copies go there; operator tools read it)."""
        if self.rabbitmq:
            return self.queue(naming.rabbit_dead_letter_queue(spec.group, self.prefix))
        return self.queue(naming.activemq_dead_letter_queue(spec.group, self.prefix))

    def replay(self, spec: SubscriptionSpec) -> str:
        """Where a replayed dead letter goes to be consumed by the group again at once."""
        if self.rabbitmq:
            return self.queue(naming.rabbit_group_queue(spec.group, self.prefix))
        return self.queue(naming.activemq_retry_queue(spec.group, self.prefix))

    def retry(self, spec: SubscriptionSpec, delay: float) -> tuple[str, int | None]:
        """Where a retried copy goes, and the delivery delay (ms) to annotate it with, if any.

        RabbitMQ: the TTL queue of the smallest declared delay at least ``delay`` (the largest
        if none is), which dead-letters back to the group queue. ActiveMQ: the group's retry
        queue, held back by the broker's scheduler."""
        if self.rabbitmq:
            delays = sorted(spec.retry_delays)
            if delay <= 0 or not delays:
                return self.replay(spec), None
            chosen = next((d for d in delays if d >= delay), delays[-1])
            return self.queue(naming.rabbit_retry_queue(spec.group, chosen, self.prefix)), None
        delay_ms = round(delay * 1000) if delay > 0 else None
        return self.replay(spec), delay_ms or None

    def copy_targets(self, spec: SubscriptionSpec) -> list[str]:
        """Queues a group's consumer sends copies to that it does not read itself: on RabbitMQ
        the dead-letter queue and the TTL retry queues. The plugin accepts (and drops) a
        message sent to a queue that does not exist, so the consumer watches these instead
        (ActiveMQ creates a queue on first send, so there is nothing to watch)."""
        if not self.rabbitmq:
            return []
        retries = [naming.rabbit_retry_queue(spec.group, d, self.prefix) for d in spec.retry_delays]
        dead_letter = naming.rabbit_dead_letter_queue(spec.group, self.prefix)
        return [self.queue(q) for q in (dead_letter, *dict.fromkeys(retries))]

    def tail_sources(self, spec: SubscriptionSpec, declared_queue: str | None = None) -> list[str]:
        """Sources of a temporary (non-durable) subscription: on RabbitMQ the queue declared
        for it; on ActiveMQ the virtual topics themselves (nothing is left behind)."""
        if self.rabbitmq:
            if declared_queue is None:
                raise ConfigurationError("a RabbitMQ tail needs its declared queue")
            return [self.queue(declared_queue)]
        return [
            f"topic://{naming.activemq_topic(naming.activemq_pattern(p))}"
            for p in dict.fromkeys(spec.topics)
        ]

    def queue_names(self, spec: SubscriptionSpec) -> dict[str, str]:
        """Broker-side names for operator tools (same keys as the other transports)."""
        if self.rabbitmq:
            return {
                "exchange": self.exchange,
                "queue": naming.rabbit_group_queue(spec.group, self.prefix),
                "dead_letter": naming.rabbit_dead_letter_queue(spec.group, self.prefix),
            }
        names = {
            "dead_letter": naming.activemq_dead_letter_queue(spec.group, self.prefix),
            "retry": naming.activemq_retry_queue(spec.group, self.prefix),
        }
        for index, pattern in enumerate(spec.topics):
            key = "queue" if index == 0 else f"queue.{index}"
            names[key] = naming.activemq_consumer_queue(spec.group, pattern)
        return names
