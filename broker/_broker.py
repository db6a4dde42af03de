"""The transport-neutral broker client: publish events, run consumer groups, stay connected."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, Literal, Self

import structlog

from broker import transports
from broker._subscription import Subscription
from broker._telemetry import Telemetry
from broker.codec import AvroCodec
from broker.errors import BrokerConnectionError, BrokerError, PublishError, UnroutableError
from broker.event import SPECVERSION, EncodedEvent, Event
from broker.registry import SchemaRegistry
from broker.retry import RetryPolicy
from broker.transport import OutgoingMessage, SubscriptionSpec, Transport, TransportOptions
from broker.url import BrokerURL

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping
    from datetime import datetime
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Broker"]

_log = structlog.get_logger("broker")
_State = Literal["new", "running", "closing", "closed"]


class Broker:
    """Publishes Avro CloudEvents and runs consumer groups over one broker connection.

    ::

        async with Broker("amqp://guest:guest@localhost/", source="//shop/orders") as broker:
            await broker.subscribe("payments", ["shop.orders.v1.#"], handle_order_event)
            await broker.publish("shop.orders.v1.OrderPlaced", {...}, subject=order_id)

    The connection is supervised: when it drops, the broker reconnects with backoff, trying each
    endpoint of a failover URL in turn, and resubscribes every consumer group; publishes wait for
    the new connection (up to ``publish_timeout``) instead of failing.
    """

    def __init__(
        self,
        url: str | BrokerURL,
        *,
        source: str,
        registry: SchemaRegistry | None = None,
        schema_versions: Mapping[str, int] | None = None,
        name: str = "shopmq",
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        publish_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        reconnect_delay: tuple[float, float] = (0.1, 5.0),
        heartbeat: float = 30.0,
        transport_class: type[Transport] | None = None,
    ) -> None:
        self.url = url if isinstance(url, BrokerURL) else BrokerURL.parse(url)
        self.source = source
        self.registry = registry or SchemaRegistry.default()
        self.codec = AvroCodec(self.registry, schema_versions)
        self.name = name
        # Tests pass a transport in (broker.testing's in-memory one) instead of patching.
        self._transport_class = transport_class or transports.load(self.url.transport)
        self._telemetry = Telemetry(tracer_provider, meter_provider)
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._reconnect_delay = reconnect_delay
        self._heartbeat = heartbeat
        self._state: _State = "new"
        self._transport: Transport | None = None
        self._connected = asyncio.Event()
        self._subscriptions: list[Subscription] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._endpoint_index = 0
        self.reconnects = 0
        """How many times the connection was re-established (for tests and metrics)."""

    def __repr__(self) -> str:
        return f"<Broker {self.name} {self.url} {self._state}>"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def transport(self) -> Transport:
        """The current connection (changes after a reconnect)."""
        if self._transport is None:
            raise BrokerConnectionError(f"{self!r} is not connected")
        return self._transport

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, or raise :class:`BrokerConnectionError` once every endpoint has been tried
        for ``connect_timeout`` seconds."""
        if self._state != "new":
            raise BrokerError(f"{self!r} cannot be started twice")
        self._state = "running"
        try:
            self._transport = await self._connect(deadline=time.monotonic() + self._connect_timeout)
        except BaseException:
            self._state = "closed"
            raise
        self._connected.set()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def stop_consuming(self, timeout: float = 10.0) -> None:
        """Stop every consumer group and let in-flight handlers finish (first step of shutdown:
        no new work, finish what was started)."""
        await asyncio.gather(*(s.stop(timeout) for s in self._subscriptions))

    async def close(self, timeout: float = 10.0) -> None:
        """Stop consuming, drain handlers for up to ``timeout`` s, then close the connection.
        Safe to call twice."""
        if self._state in {"closing", "closed"}:
            return
        self._state = "closing"
        await self.stop_consuming(timeout)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._transport is not None:
            await self._transport.close()
        self._connected.clear()
        self._state = "closed"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- publishing --------------------------------------------------------------------------

    def event(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        subject: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> Event:
        """Build an :class:`Event` from this broker's ``source`` (validated on publish)."""
        kwargs: dict[str, Any] = {}
        if event_id is not None:
            kwargs["id"] = event_id
        if time is not None:
            kwargs["time"] = time
        return Event(
            type=event_type, data=dict(data), source=self.source, subject=subject, **kwargs
        )

    async def publish(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        subject: str | None = None,
        event_id: str | None = None,
        mandatory: bool = True,
    ) -> Event:
        """Encode, publish and wait for the broker's confirmation; return the event sent.

        Raises :class:`~broker.errors.EncodeError` (naming the field) before sending anything if
        ``data`` does not match the newest schema of ``event_type``."""
        event = self.event(event_type, data, subject=subject, event_id=event_id)
        await self.publish_event(event, mandatory=mandatory)
        return event

    def encode(self, event: Event) -> EncodedEvent:
        """Validate and encode ``event`` (raises :class:`~broker.errors.EncodeError` naming the
        field). The outbox stores this form, so a bad record fails the writing transaction."""
        body, writer = self.codec.encode(event.type, event.data)
        attributes = {
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "specversion": SPECVERSION,
            "time": event.time.isoformat(),
            "dataschema": writer.uri,
        }
        if event.subject is not None:
            attributes["subject"] = event.subject
        headers = {k: v for k, v in event.extensions.items() if not k.startswith("x-")}
        return EncodedEvent(
            type=event.type,
            body=body,
            attributes=attributes,
            headers=headers,
            content_type=event.datacontenttype,
        )

    async def publish_event(
        self, event: Event, *, context: Context | None = None, mandatory: bool = True
    ) -> None:
        """Publish a prepared event. ``context`` is the trace context to parent the PRODUCER
        span on (default: the current one)."""
        await self.publish_encoded(self.encode(event), context=context, mandatory=mandatory)

    async def publish_encoded(
        self, encoded: EncodedEvent, *, context: Context | None = None, mandatory: bool = True
    ) -> None:
        """Publish an already encoded event (the outbox relay's path) and wait for the
        broker's confirmation, inside a PRODUCER span parented on ``context``."""
        headers = dict(encoded.headers)
        started = time.perf_counter()
        with self._telemetry.producer_span(
            system=self._transport_class_system(),
            topic=encoded.type,
            event_id=encoded.attributes["id"],
            body_size=len(encoded.body),
            headers=headers,
            parent=context,
        ):
            message = OutgoingMessage(
                topic=encoded.type,
                body=encoded.body,
                attributes=encoded.attributes,
                headers=headers,
                content_type=encoded.content_type,
                mandatory=mandatory,
            )
            await self._send(message)
        attrs = {"messaging.destination.name": encoded.type}
        self._telemetry.published.add(1, attrs)
        self._telemetry.publish_duration.record(time.perf_counter() - started, attrs)

    async def publish_many(self, events: Iterable[Event]) -> None:
        """Publish several events concurrently (confirms pipelined); raise the first failure."""
        await asyncio.gather(*(self.publish_event(e) for e in events))

    async def _send(self, message: OutgoingMessage) -> None:
        if self._state != "running":
            raise PublishError(f"{self!r} is not running")
        deadline = time.monotonic() + self._publish_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishError(
                    f"{message.topic}: not confirmed within {self._publish_timeout}s"
                )
            if not self._connected.is_set():
                try:
                    await asyncio.wait_for(self._connected.wait(), remaining)
                except TimeoutError:
                    raise PublishError(
                        f"{message.topic}: broker unreachable for {self._publish_timeout}s"
                    ) from None
            transport = self.transport
            try:
                await transport.publish(message, timeout=deadline - time.monotonic())
            except UnroutableError:
                raise
            except (PublishError, BrokerConnectionError, ConnectionError):
                # The transport reports the loss through ``lost``, possibly a moment after the
                # failed publish: give it that moment before deciding this was a real refusal.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(transport.lost), 1.0)
                if not transport.lost.done():
                    raise
                # The connection dropped with the publish unconfirmed: send it again on the
                # next connection (at-least-once; consumers deduplicate by event id).
                self._connected.clear()
                continue
            return

    def _transport_class_system(self) -> str:
        if self._transport is not None:
            return self._transport.system
        return "unknown"

    # -- consuming ---------------------------------------------------------------------------

    async def subscribe(
        self,
        group: str,
        topics: Iterable[str],
        handler: Callable[[Event], Awaitable[None]],
        *,
        retry: RetryPolicy | None = None,
        prefetch: int = 32,
        concurrency: int = 8,
    ) -> Subscription:
        """Run ``handler`` for every event matching ``topics`` delivered to consumer group
        ``group``. Returns once the broker acknowledged the subscription.

        Each group has its own durable queue: every group gets every event (fan-out) and the
        consumers of one group share them (competing consumers). The handler's success acks the
        message; an exception retries it with backoff per ``retry`` and dead-letters it when
        retries run out; :class:`~broker.errors.DeadLetter` and undecodable bodies go to the
        dead-letter queue at once."""
        policy = retry or RetryPolicy()
        if concurrency < 1 or prefetch < 1:
            raise BrokerError("prefetch and concurrency must be at least 1")
        spec = SubscriptionSpec(
            group=group,
            topics=tuple(topics),
            prefetch=prefetch,
            retry_delays=tuple(sorted(set(policy.delays()))),
        )
        subscription = Subscription(
            spec,
            handler,
            codec=self.codec,
            policy=policy,
            concurrency=min(concurrency, prefetch),
            telemetry=self._telemetry,
        )
        self._subscriptions.append(subscription)
        if self._connected.is_set():
            try:
                await subscription.attach(self.transport)
            except BaseException:
                # A subscription the broker refused (e.g. a queue of another type) must not be
                # retried by every later reconnect: the caller got the error.
                self._subscriptions.remove(subscription)
                raise
        return subscription

    def queue_names(self, group: str, topics: Iterable[str]) -> dict[str, str]:
        """Broker-side queue names of a consumer group on this transport."""
        spec = SubscriptionSpec(group=group, topics=tuple(topics))
        return self.transport.queue_names(spec)

    # -- connection supervision --------------------------------------------------------------

    def _new_transport(self, index: int) -> Transport:
        endpoint = self.url.endpoints[index % len(self.url.endpoints)]
        options = TransportOptions(
            connection_name=self.name,
            connect_timeout=min(self._connect_timeout, 5.0),
            heartbeat=float(self.url.options.get("heartbeat", self._heartbeat)),
        )
        return self._transport_class(self.url, endpoint, options)

    async def _connect(self, deadline: float | None) -> Transport:
        """Try endpoints in turn with backoff until one answers (or ``deadline`` passes)."""
        delay, max_delay = self._reconnect_delay
        last_error: BaseException | None = None
        while True:
            transport = self._new_transport(self._endpoint_index)
            try:
                await transport.connect()
            except (BrokerConnectionError, OSError) as exc:
                last_error = exc
                _log.warning(
                    "broker endpoint unreachable",
                    broker=self.name,
                    endpoint=str(transport.endpoint),
                    error=str(exc),
                )
                with contextlib.suppress(Exception):
                    await transport.close()
                self._endpoint_index += 1
            else:
                _log.info("broker connected", broker=self.name, endpoint=str(transport.endpoint))
                return transport
            if deadline is not None and time.monotonic() + delay > deadline:
                raise BrokerConnectionError(
                    f"cannot connect to broker {self.url}: {last_error}"
                ) from last_error
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    def _running(self) -> bool:
        return self._state == "running"

    async def _supervise(self) -> None:
        while self._running():
            transport = self.transport
            error = await transport.lost
            if not self._running():
                return
            self._connected.clear()
            _log.warning("broker connection lost; reconnecting", broker=self.name, error=str(error))
            with contextlib.suppress(Exception):
                await transport.close()
            self._endpoint_index += 1 if len(self.url.endpoints) > 1 else 0
            new = await self._connect(deadline=None)
            try:
                for subscription in self._subscriptions:
                    await subscription.attach(new)
            except Exception as exc:  # noqa: BLE001 - resubscribe failed: drop it and retry
                _log.warning("resubscribe failed; reconnecting", error=str(exc))
                with contextlib.suppress(Exception):
                    await new.close()
                self._transport = new
                await asyncio.sleep(self._reconnect_delay[0])
                continue
            self._transport = new
            self.reconnects += 1
            self._connected.set()
            _log.info("broker reconnected", broker=self.name, reconnects=self.reconnects)
