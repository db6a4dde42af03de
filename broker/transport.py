"""The interface each transport implements (AMQP 0-9-1, STOMP 1.2, AMQP 1.0).

A transport is one connection to one endpoint. Everything that is the same on every broker —
encoding, CloudEvents attributes, tracing, retry policy, reconnection with failover, graceful
shutdown — lives in :class:`broker.Broker`; a transport only moves bytes and maps names:

* ``publish`` sends to the topic of an event type and returns once the broker confirmed it;
* ``subscribe`` declares a consumer group's queue(s) for some topic patterns, starts delivering,
  and returns only when the broker has acknowledged the subscription;
* each :class:`Delivery` is settled exactly once: ``ack``, ``retry`` (a copy comes back to the same
  group after a delay), ``dead_letter`` (a copy goes to the group's dead-letter queue) or
  ``release`` (back to the queue at once, used when shutting down).

Topic patterns use AMQP topic syntax on every transport: words separated by ``.``, ``*`` matches
one word and ``#`` zero or more (ActiveMQ's ``>``); transports translate.

CloudEvents attributes travel in ``attributes`` (``id``, ``source``, ``type``, ``specversion``,
``time``, ``subject``, ``dataschema``); the transport maps them to its protocol binding
(``cloudEvents:id`` in AMQP headers/application-properties, ``cloudEvents_id`` over STOMP) and
``datacontenttype`` to the protocol's content-type. ``headers`` hold everything else
(``traceparent``, ``tracestate``, ``X-Amzn-Trace-Id``, retry bookkeeping) under their own names.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from broker.url import BrokerURL, Endpoint

__all__ = [
    "CE_ATTRIBUTES",
    "Consumer",
    "Delivery",
    "OutgoingMessage",
    "SubscriptionSpec",
    "Transport",
    "TransportOptions",
]

CE_ATTRIBUTES = ("id", "source", "type", "specversion", "time", "subject", "dataschema")
"""CloudEvents attributes carried as headers (``datacontenttype`` maps to content-type)."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to publish to the topic ``topic`` (an event type)."""

    topic: str
    body: bytes
    attributes: Mapping[str, str]
    headers: Mapping[str, str]
    content_type: str
    mandatory: bool = True
    """Fail with :class:`~broker.errors.UnroutableError` when no queue is bound (where the
    protocol can tell; ActiveMQ topics cannot)."""


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """A consumer group's subscription: durable queue(s) bound to ``topics`` patterns."""

    group: str
    topics: tuple[str, ...]
    prefetch: int = 32
    retry_delays: tuple[float, ...] = ()
    """Every delay the retry policy may ask for, so transports can declare delay queues up front."""
    durable: bool = True
    """False: a temporary subscription that lives only while this connection does and leaves
    nothing on the broker (``shopmq events tail``). RabbitMQ: an exclusive auto-delete queue
    bound to the patterns; ActiveMQ: a plain subscription to the ``VirtualTopic.<pattern>``
    topic. Retries and dead-lettering do not apply (``retry``/``dead_letter`` just ack)."""


class Delivery(abc.ABC):
    """One received message. Settle it exactly once; settling twice is a no-op."""

    body: bytes
    attributes: dict[str, str]
    headers: dict[str, str]
    content_type: str | None
    topic: str
    """The topic (routing key / destination) the message was delivered from."""
    redelivered: bool

    @abc.abstractmethod
    async def ack(self) -> None:
        """The message was handled: remove it."""

    @abc.abstractmethod
    async def retry(self, delay: float, headers: Mapping[str, str]) -> None:
        """Deliver a copy to this group again after ``delay`` seconds, with ``headers`` replacing
        the headers (attributes and body unchanged), then remove the original."""

    @abc.abstractmethod
    async def dead_letter(self, headers: Mapping[str, str]) -> None:
        """Put a copy in the group's dead-letter queue with ``headers`` added, then remove the
        original."""

    @abc.abstractmethod
    async def release(self) -> None:
        """Give the message back to the queue for another consumer (no attempt counted)."""


class Consumer(abc.ABC):
    """A running subscription on one connection."""

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Stop receiving new deliveries; ones already handed out may still be settled."""


@dataclass(slots=True)
class TransportOptions:
    """Settings a transport receives from :class:`broker.Broker` (beyond the URL)."""

    connection_name: str = "shopmq"
    connect_timeout: float = 5.0
    heartbeat: float = 30.0
    extra: dict[str, str] = field(default_factory=dict)


class Transport(abc.ABC):
    """One connection to one endpoint. ``__init__`` does no I/O."""

    name: ClassVar[str]
    """Transport name as in :data:`broker.url.SCHEMES` (``amqp091``, ``stomp``, ``amqp10``)."""

    def __init__(self, url: BrokerURL, endpoint: Endpoint, options: TransportOptions) -> None:
        self.url = url
        self.endpoint = endpoint
        self.options = options
        self._lost: asyncio.Future[BaseException | None] | None = None

    @property
    def system(self) -> str:
        """``messaging.system`` for telemetry: ``rabbitmq`` or ``activemq``."""
        return self.url.options.get("dialect", "rabbitmq" if self.name == "amqp091" else "activemq")

    @property
    def lost(self) -> asyncio.Future[BaseException | None]:
        """Resolves when the connection ends: with the error, or ``None`` after :meth:`close`
        (transports call :meth:`_connection_lost` in both cases)."""
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        return self._lost

    def _connection_lost(self, exc: BaseException | None) -> None:
        """Call from the transport when the connection ends, for whatever reason."""
        if not self.lost.done():
            self.lost.set_result(exc)

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection; raise :class:`~broker.errors.BrokerConnectionError` on failure."""

    @abc.abstractmethod
    async def publish(self, message: OutgoingMessage, *, timeout: float) -> None:
        """Send and wait for the broker's confirmation. Safe to call concurrently: many
        publishes may be in flight at once (confirms are pipelined, not one round trip each)."""

    @abc.abstractmethod
    async def subscribe(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        """Declare the group's queue(s) and start consuming; return once the broker confirmed.

        ``on_delivery`` is a plain function and returns at once; it must be called in the
        order messages arrive, from the event loop."""

    @abc.abstractmethod
    async def consume_dead_letters(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        """Consume the group's dead-letter queue(s) as raw deliveries (operator tools such as
        ``dlq list`` / ``dlq replay``, and tests); return once the broker confirmed.

        On these deliveries ``ack`` removes the message, ``release`` leaves it in the DLQ, and
        ``retry(delay, headers)`` sends the copy back to the group's live queue it was
        dead-lettered from (a replay), then removes it from the DLQ."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection. Idempotent."""

    @abc.abstractmethod
    def queue_names(self, spec: SubscriptionSpec) -> dict[str, str]:
        """Broker-side names for a subscription, for documentation and operator tools:
        at least ``queue`` and ``dead_letter``."""
