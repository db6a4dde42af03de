"""AMQP 1.0 addresses per broker dialect (URL option ``dialect``), from :mod:`broker.naming`.

==================  =========================================  ===============================
what                ``activemq`` (ActiveMQ Classic / Amazon MQ)  ``rabbitmq`` (3.x AMQP 1.0 plugin)
==================  =========================================  ===============================
publish             ``topic://VirtualTopic.<type>``             ``/exchange/<exchange>/<type>``
group queue(s)      ``queue://Consumer.<g>.VirtualTopic.<p>``   ``/amq/queue/<prefix>.<g>``
                    (one per pattern, ``#`` -> ``>``)           (one, bound to every pattern)
retry               the home queue, with the                    ``/amq/queue/<g queue>.retry.<ms>``
                    ``x-opt-delivery-delay`` annotation         (TTL queue dead-lettering home)
dead letters        ``queue://DLQ.<home queue>``                ``/amq/queue/<g queue>.dlq``
temporary tail      ``topic://VirtualTopic.<p>`` per pattern    ``/amq/queue/<declared queue>``
==================  =========================================  ===============================

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

__all__ = ["DELIVERY_DELAY", "Addresses", "Home"]

DELIVERY_DELAY = "x-opt-delivery-delay"
"""Message annotation (milliseconds) ActiveMQ's scheduler honours for delayed delivery."""

Dialect = Literal["activemq", "rabbitmq"]


@dataclass(frozen=True, slots=True)
class Home:
    """A queue a consumer reads from, with where its retries and dead letters go."""

    source: str
    """The address the receiving link attaches to."""
    queue: str
    """The broker-side queue name (for :meth:`Transport.queue_names`)."""
    dead_letter: str
    """Address of this queue's dead-letter queue."""
    requeue: str
    """Address that puts a message straight back into this queue (retry without delay, replay)."""


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

    def publish(self, topic: str) -> str:
        """Where a producer sends an event of type ``topic``."""
        if self.rabbitmq:
            return f"/exchange/{self.exchange}/{topic}"
        return f"topic://{naming.activemq_topic(topic)}"

    def queue(self, name: str) -> str:
        """The address of an existing queue, as a source or a target."""
        return f"/amq/queue/{name}" if self.rabbitmq else f"queue://{name}"

    def homes(self, spec: SubscriptionSpec) -> list[Home]:
        """The group's queue(s): one on RabbitMQ (bound to every pattern), one per pattern on
        ActiveMQ (a virtual-topic consumer queue each)."""
        if self.rabbitmq:
            queue = naming.rabbit_group_queue(spec.group, self.prefix)
            return [
                Home(
                    source=self.queue(queue),
                    queue=queue,
                    dead_letter=self.queue(
                        naming.rabbit_dead_letter_queue(spec.group, self.prefix)
                    ),
                    requeue=self.queue(queue),
                )
            ]
        homes = []
        for pattern in dict.fromkeys(spec.topics):
            queue = naming.activemq_consumer_queue(spec.group, pattern)
            homes.append(
                Home(
                    source=self.queue(queue),
                    queue=queue,
                    dead_letter=self.queue(naming.activemq_dead_letter_queue(queue)),
                    requeue=self.queue(queue),
                )
            )
        return homes

    def retry(self, spec: SubscriptionSpec, home: Home, delay: float) -> tuple[str, int | None]:
        """Where a retried copy goes, and the delivery delay (ms) to annotate it with, if any.

        RabbitMQ: the TTL queue of the smallest declared delay at least ``delay`` (the largest
        if none is), which dead-letters back to the group queue. ActiveMQ: the home queue
        itself, delayed by the broker's scheduler."""
        if delay <= 0:
            return home.requeue, None
        if self.rabbitmq:
            delays = sorted(spec.retry_delays)
            if not delays:
                return home.requeue, None
            chosen = next((d for d in delays if d >= delay), delays[-1])
            return self.queue(naming.rabbit_retry_queue(spec.group, chosen, self.prefix)), None
        return home.requeue, max(1, round(delay * 1000))

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
        """Broker-side names for operator tools (several ActiveMQ queues joined by ``,``)."""
        homes = self.homes(spec)
        names = {
            "queue": ",".join(h.queue for h in homes),
            "dead_letter": ",".join(h.dead_letter.removeprefix("queue://") for h in homes),
        }
        if self.rabbitmq:
            names["exchange"] = self.exchange
            names["dead_letter"] = naming.rabbit_dead_letter_queue(spec.group, self.prefix)
        else:
            names["topics"] = ",".join(
                naming.activemq_topic(naming.activemq_pattern(p)) for p in spec.topics
            )
        return names
