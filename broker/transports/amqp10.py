"""AMQP 1.0 over python-qpid-proton: the Amazon MQ for ActiveMQ transport (``amqp+ssl://``).

Proton's sans-IO engine runs on the event loop (:mod:`._amqp10_engine`, no threads). Messages
follow the CloudEvents AMQP binding (:mod:`._amqp10_messages`). Addresses depend on the broker,
chosen by the URL option ``dialect`` (:mod:`._amqp10_addresses`): ``activemq`` (the default;
virtual topics) or ``rabbitmq`` (RabbitMQ 3.x's AMQP 1.0 plugin, whose queues and bindings are
declared over AMQP 0-9-1 by :mod:`._amqp10_topology`, as the plugin cannot bind).

* A publish resolves once the broker settled the delivery as *accepted*; rejected, released or
  modified raise :class:`~broker.errors.PublishError`. Publishes are pipelined on one cached
  sending link per address. Neither broker reports an unroutable message over AMQP 1.0.
* A receiving link's credit is the subscription's prefetch; deliveries are settled by hand (one
  credit returned per settlement). Retries and dead letters are copies sent to the retry / DLQ
  address and accepted before the original is accepted; a copy that is not accepted drops the
  connection, so the core reconnects (redeclaring the queues) and the broker redelivers the
  original. RabbitMQ's plugin accepts and drops a message sent to a queue that does not exist,
  so on that dialect a group also holds a zero-credit link on its DLQ and retry queues: the
  broker detaches it when such a queue is deleted, which drops the connection likewise.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, Literal

import proton
import structlog

from broker.errors import BrokerConnectionError, PublishError
from broker.transport import Consumer, Delivery, Transport
from broker.transports._amqp10_addresses import DELIVERY_DELAY, Addresses
from broker.transports._amqp10_engine import Engine, EngineSettings, LinkDetached
from broker.transports._amqp10_messages import Received, from_message, to_message
from broker.transports._amqp10_topology import RabbitTopology

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from broker.transport import OutgoingMessage, SubscriptionSpec

__all__ = ["TRANSPORT", "Amqp10Transport", "ssl_domain"]

_log = structlog.get_logger("broker.amqp10")
_Mode = Literal["group", "dead_letters", "tail"]


def ssl_domain(options: Mapping[str, str]) -> proton.SSLDomain:
    """Proton TLS settings from URL options ``cafile``, ``certfile``/``keyfile``, ``verify``."""
    domain = proton.SSLDomain(proton.SSLDomain.MODE_CLIENT)
    if options.get("cafile"):
        domain.set_trusted_ca_db(options["cafile"])
    if options.get("certfile"):
        domain.set_credentials(options["certfile"], options.get("keyfile", ""), None)
    if options.get("verify", "true").lower() in {"false", "0", "no"}:
        domain.set_peer_authentication(proton.SSLDomain.ANONYMOUS_PEER)
    else:
        domain.set_peer_authentication(proton.SSLDomain.VERIFY_PEER_NAME)
    return domain


class Amqp10Transport(Transport):
    """One AMQP 1.0 connection to one endpoint (ActiveMQ, or RabbitMQ's AMQP 1.0 plugin)."""

    name = "amqp10"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = Addresses.from_options(self.url.options)
        self._engine: Engine | None = None
        self._closing = False
        self._exchange_lock = asyncio.Lock()
        self._exchange_declared = False

    def __repr__(self) -> str:
        return f"<Amqp10Transport {self.endpoint} dialect={self.addresses.dialect}>"

    # -- connection --------------------------------------------------------------------------

    async def connect(self) -> None:
        endpoint = self.endpoint
        vhost = endpoint.path.lstrip("/")
        settings = EngineSettings(
            host=endpoint.host,
            port=endpoint.port,
            # RabbitMQ takes the vhost from the open frame's hostname as ``vhost:<name>``.
            hostname=f"vhost:{vhost}" if vhost else endpoint.host,
            container_id=f"{self.options.connection_name}-{uuid.uuid4().hex[:8]}",
            user=self.url.username,
            password=self.url.password,
            ssl_domain=ssl_domain(self.url.options) if endpoint.tls else None,
            idle_timeout=self.options.heartbeat,
            connect_timeout=self.options.connect_timeout,
        )
        engine = Engine(settings, self._on_engine_lost)
        try:
            await engine.open()
        except BrokerConnectionError as exc:
            await engine.close()
            raise BrokerConnectionError(f"{endpoint}: {exc}") from exc
        self._engine = engine

    def _on_engine_lost(self, exc: BaseException | None) -> None:
        self._connection_lost(None if self._closing else exc or ConnectionError("closed"))

    def link_lost(self, exc: BaseException) -> None:
        """A link the broker closed under us, or a retry/dead-letter copy it did not accept:
        end the connection so the core reconnects and resubscribes (one recovery path for
        every failure)."""
        _log.warning("amqp10 link or copy lost; dropping the connection", error=str(exc))
        self._connection_lost(exc)
        engine = self._engine
        if engine is not None:
            task = asyncio.get_running_loop().create_task(engine.close(timeout=1.0))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def close(self) -> None:
        self._closing = True
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.close()
        self._connection_lost(None)

    def _require(self) -> Engine:
        engine = self._engine
        if engine is None or engine.ended:
            raise BrokerConnectionError(f"{self.endpoint}: not connected")
        return engine

    def _topology(self) -> RabbitTopology:
        return RabbitTopology(self.url, self.endpoint, connection_name=self.options.connection_name)

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, message: OutgoingMessage, *, timeout: float) -> None:
        amqp = to_message(
            body=message.body,
            attributes=message.attributes,
            headers=message.headers,
            content_type=message.content_type,
            topic=message.topic,
        )
        address = self.addresses.publish(message.topic)
        try:
            await self.send(address, amqp, timeout=timeout, what=message.topic)
        except LinkDetached as exc:
            if not (self.addresses.rabbitmq and "not-found" in str(exc)):
                raise PublishError(f"{message.topic}: {exc}") from exc
            # The exchange does not exist yet (nobody subscribed on this broker so far).
            await self._declare_exchange()
            await self.send(address, amqp, timeout=timeout, what=message.topic)

    async def _declare_exchange(self) -> None:
        async with self._exchange_lock:
            if not self._exchange_declared:
                await self._topology().declare_exchange()
                self._exchange_declared = True

    async def send(
        self, address: str, message: proton.Message, *, timeout: float, what: str
    ) -> None:
        """Send to ``address`` and return once the broker accepted it.

        Raises :class:`LinkDetached` if the broker refuses the address, and
        :class:`~broker.errors.PublishError` for any other outcome than *accepted*."""
        try:
            engine = self._require()
            outcome = await engine.send(address, message, timeout)
        except LinkDetached:
            raise
        except BrokerConnectionError as exc:
            raise PublishError(f"{what}: {exc}") from exc
        except TimeoutError:
            raise PublishError(f"{what}: not settled within {timeout:.1f}s") from None
        if not outcome.accepted:
            detail = f" ({outcome.condition})" if outcome.condition else ""
            raise PublishError(f"{what}: broker {outcome.name} the message{detail}")

    # -- consuming ---------------------------------------------------------------------------

    def queue_names(self, spec: SubscriptionSpec) -> dict[str, str]:
        return self.addresses.queue_names(spec)

    async def subscribe(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        engine = self._require()
        if spec.durable:
            if self.addresses.rabbitmq:
                await self._topology().declare_group(spec)
            sources = self.addresses.group_sources(spec)
            return await self._consume(engine, spec, on_delivery, sources, mode="group")
        declared = await self._topology().declare_tail(spec) if self.addresses.rabbitmq else None
        sources = self.addresses.tail_sources(spec, declared)
        return await self._consume(engine, spec, on_delivery, sources, mode="tail")

    async def consume_dead_letters(
        self, spec: SubscriptionSpec, on_delivery: Callable[[Delivery], None]
    ) -> Consumer:
        engine = self._require()
        if self.addresses.rabbitmq:
            await self._topology().declare_group(spec)
        sources = [self.addresses.dead_letter(spec)]
        return await self._consume(engine, spec, on_delivery, sources, mode="dead_letters")

    async def _consume(
        self,
        engine: Engine,
        spec: SubscriptionSpec,
        on_delivery: Callable[[Delivery], None],
        sources: list[str],
        *,
        mode: _Mode,
    ) -> Consumer:
        consumer = _Consumer(self, engine, spec, on_delivery, mode=mode)
        watched: list[str] = []
        if mode == "group":
            watched = self.addresses.copy_targets(spec)
        elif mode == "dead_letters" and self.addresses.rabbitmq:
            watched = [self.addresses.replay(spec)]
        try:
            for source in sources:
                await consumer.attach(source)
            for target in watched:
                await consumer.watch(target)
        except BaseException:
            await consumer.cancel()
            raise
        return consumer


class _Consumer(Consumer):
    """The receiving link(s) of one subscription; credit = prefetch per link."""

    def __init__(
        self,
        transport: Amqp10Transport,
        engine: Engine,
        spec: SubscriptionSpec,
        on_delivery: Callable[[Delivery], None],
        *,
        mode: _Mode,
    ) -> None:
        self.transport = transport
        self.engine = engine
        self.spec = spec
        self.mode = mode
        self._on_delivery = on_delivery
        self._links: list[proton.Link] = []
        self._outstanding: dict[proton.Link, int] = {}
        self.cancelled = False

    async def attach(self, source: str) -> None:
        link: proton.Receiver | None = None

        def on_message(delivery: proton.Delivery, message: proton.Message) -> None:
            # The attached link (set before any delivery can arrive): proton's delivery.link
            # builds a new wrapper on every access, which shows on a consumer's profile.
            receiver = link if link is not None else delivery.link
            if self.cancelled:
                # Already in flight when we stopped: give it back for another consumer.
                self.engine.settle(delivery, proton.Delivery.RELEASED, credit=0)
                return
            self._outstanding[receiver] = self._outstanding.get(receiver, 0) + 1
            wrapped = _Delivery(self, delivery, receiver, from_message(message))
            try:
                self._on_delivery(wrapped)
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the connection
                _log.exception("on_delivery failed; releasing the message", source=source)
                wrapped.settle_now(proton.Delivery.RELEASED)

        link = await self.engine.receiver(
            source, self.spec.prefetch, on_message, self.transport.link_lost
        )
        self._links.append(link)
        self._outstanding.setdefault(link, 0)

    async def watch(self, address: str) -> None:
        """Attach a receiving link with no credit to a queue this consumer sends copies to:
        it receives nothing, and the broker detaches it if the queue is deleted, which drops
        the connection so reconnecting declares the queue again (RabbitMQ's plugin would
        otherwise accept copies sent to the missing queue and drop them)."""

        def on_message(delivery: proton.Delivery, _message: proton.Message) -> None:
            self.engine.settle(delivery, proton.Delivery.RELEASED, credit=0)

        link = await self.engine.receiver(address, 0, on_message, self.transport.link_lost)
        self._links.append(link)
        self._outstanding.setdefault(link, 0)

    def settled(self, delivery: proton.Delivery, link: proton.Link, state: int) -> None:
        """Settle on the wire; return the credit, or detach once a cancelled link is drained."""
        self._outstanding[link] = max(0, self._outstanding.get(link, 1) - 1)
        self.engine.settle(delivery, state, credit=0 if self.cancelled else 1, link=link)
        if self.cancelled and self._outstanding[link] == 0:
            self.engine.close_link(link)

    async def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        for link in self._links:
            # Deliveries handed out stay settleable on the still-attached link; detach once
            # they are settled (detaching now would return them to the queue).
            if self._outstanding.get(link, 0):
                self.engine.stop_link(link)
            else:
                self.engine.close_link(link)


class _Delivery(Delivery):
    def __init__(
        self,
        consumer: _Consumer,
        delivery: proton.Delivery,
        link: proton.Link,
        received: Received,
    ) -> None:
        self._consumer = consumer
        self._delivery = delivery
        self._link = link
        self._settled = False
        self.body = received.body
        self.attributes = received.attributes
        self.headers = received.headers
        self.content_type = received.content_type
        self.topic = received.topic
        self.redelivered = received.redelivered

    def _settle(self) -> bool:
        """True the first time: a delivery is settled once, later calls do nothing."""
        if self._settled:
            return False
        self._settled = True
        return True

    def settle_now(self, state: int) -> None:
        if self._settle():
            self._consumer.settled(self._delivery, self._link, state)

    def _copy(self, headers: Mapping[str, str], delay_ms: int | None = None) -> proton.Message:
        return to_message(
            body=self.body,
            attributes=self.attributes,
            headers=headers,
            content_type=self.content_type,
            topic=self.topic,
            annotations={DELIVERY_DELAY: delay_ms} if delay_ms else None,
        )

    async def _send_copy(self, address: str, message: proton.Message) -> None:
        transport = self._consumer.transport
        try:
            await transport.send(
                address, message, timeout=30.0, what=f"copy of {self.attributes.get('id')}"
            )
        except (PublishError, BrokerConnectionError) as exc:
            # The copy is not accepted, so the original stays unsettled and would hold a credit
            # for good. Dropping the connection makes the core reconnect, which redeclares the
            # group's retry/dead-letter queues (in case they were deleted), and the broker
            # redelivers the original.
            transport.link_lost(exc)
            raise

    async def ack(self) -> None:
        self.settle_now(proton.Delivery.ACCEPTED)

    async def release(self) -> None:
        self.settle_now(proton.Delivery.RELEASED)

    async def retry(self, delay: float, headers: Mapping[str, str]) -> None:
        if not self._settle():
            return
        consumer = self._consumer
        addresses = consumer.transport.addresses
        if consumer.mode == "group":
            target, delay_ms = addresses.retry(consumer.spec, delay)
            await self._send_copy(target, self._copy(headers, delay_ms))
        elif consumer.mode == "dead_letters":
            await self._send_copy(addresses.replay(consumer.spec), self._copy(headers))
        self._consumer.settled(self._delivery, self._link, proton.Delivery.ACCEPTED)

    async def dead_letter(self, headers: Mapping[str, str]) -> None:
        if not self._settle():
            return
        consumer = self._consumer
        if consumer.mode != "tail":
            target = consumer.transport.addresses.dead_letter(consumer.spec)
            await self._send_copy(target, self._copy({**self.headers, **headers}))
        self._consumer.settled(self._delivery, self._link, proton.Delivery.ACCEPTED)


TRANSPORT = Amqp10Transport
