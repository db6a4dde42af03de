"""A consumer group's subscription: decode, trace, run the handler, settle in one place."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from broker._telemetry import record_failure
from broker.errors import DeadLetter, DecodeError
from broker.event import Event

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from broker._telemetry import Telemetry
    from broker.codec import AvroCodec
    from broker.retry import RetryPolicy
    from broker.transport import Consumer, Delivery, SubscriptionSpec, Transport

__all__ = ["ATTEMPT_HEADER", "ERROR_HEADERS", "Subscription"]


ATTEMPT_HEADER = "x-attempt"
"""Delivery number of the next delivery (1-based), carried on retried copies."""

ERROR_HEADERS = (
    "x-error-type",
    "x-error-message",
    "x-attempts",
    "x-original-topic",
    "x-consumer-group",
    "x-failed-at",
)
"""Headers a dead-lettered copy carries, saying why it was dead-lettered."""

_MAX_ERROR_LEN = 1000
_log = structlog.get_logger("broker")


class Subscription:
    """Handles a consumer group's deliveries. Created by :meth:`broker.Broker.subscribe`."""

    def __init__(
        self,
        spec: SubscriptionSpec,
        handler: Callable[[Event], Awaitable[None]],
        *,
        codec: AvroCodec,
        policy: RetryPolicy,
        concurrency: int,
        telemetry: Telemetry,
    ) -> None:
        self.spec = spec
        self._handler = handler
        self._codec = codec
        self._policy = policy
        self._limit = asyncio.Semaphore(concurrency)
        self._telemetry = telemetry
        self._consumer: Consumer | None = None
        self._transport: Transport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def group(self) -> str:
        return self.spec.group

    @property
    def topics(self) -> tuple[str, ...]:
        return self.spec.topics

    @property
    def in_flight(self) -> int:
        """Deliveries received and not yet settled."""
        return len(self._tasks)

    async def attach(self, transport: Transport) -> None:
        """Start consuming on ``transport`` (at start and again after every reconnect)."""
        if self._stopping:
            return
        self._transport = transport
        self._consumer = await transport.subscribe(self.spec, self._on_delivery)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking deliveries, let in-flight handlers finish for up to ``timeout`` seconds,
        then cancel the rest (their messages return to the queue unacknowledged)."""
        self._stopping = True
        consumer, self._consumer = self._consumer, None
        # Cancelling runs alongside the drain: some transports (STOMP) may only end the
        # subscription once its in-flight deliveries are settled.
        cancelling = asyncio.ensure_future(consumer.cancel()) if consumer is not None else None
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                _log.warning("handlers cancelled at shutdown", group=self.group, count=len(pending))
                await asyncio.wait(pending)
        if cancelling is not None:
            try:
                await cancelling
            except Exception:  # noqa: BLE001 - a dead connection has nothing left to cancel
                _log.debug("consumer cancel failed", group=self.group, exc_info=True)

    def _on_delivery(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, delivery: Delivery) -> None:
        try:
            await self._handle_limited(delivery)
        except asyncio.CancelledError:
            # Cancelled at shutdown before settling: hand the message back (a no-op if the
            # delivery was already settled).
            await _settle(delivery.release())
            raise

    async def _handle_limited(self, delivery: Delivery) -> None:
        async with self._limit:
            if self._stopping:
                await _settle(delivery.release())
                return
            transport = self._transport
            system = transport.system if transport else "unknown"
            attempt = _attempt(delivery)
            event_id = delivery.attributes.get("id")
            with self._telemetry.consumer_span(
                system=system,
                topic=delivery.attributes.get("type", delivery.topic),
                group=self.group,
                event_id=event_id,
                body_size=len(delivery.body),
                headers=delivery.headers,
            ) as span:
                started = time.perf_counter()
                outcome = "ack"
                try:
                    event = self._decode(delivery, attempt)
                except DecodeError as exc:
                    record_failure(span, exc)
                    outcome = "dead_letter"
                    await self._dead_letter(delivery, exc, attempt)
                    return
                try:
                    await self._handler(event)
                except asyncio.CancelledError:
                    raise
                except DeadLetter as exc:
                    record_failure(span, exc)
                    outcome = "dead_letter"
                    self._log(event).warning("handler dead-lettered event", error=str(exc))
                    await self._dead_letter(delivery, exc, attempt)
                except Exception as exc:  # noqa: BLE001 - any handler failure is retried
                    record_failure(span, exc)
                    if self._policy.exhausted(attempt):
                        outcome = "dead_letter"
                        self._log(event).warning(
                            "retries exhausted", attempt=attempt, error=repr(exc)
                        )
                        await self._dead_letter(delivery, exc, attempt)
                    else:
                        outcome = "retry"
                        delay = self._policy.delay(attempt)
                        self._log(event).info(
                            "handler failed, retrying",
                            attempt=attempt,
                            delay=delay,
                            error=repr(exc),
                        )
                        headers = dict(delivery.headers)
                        headers[ATTEMPT_HEADER] = str(attempt + 1)
                        self._telemetry.retried.add(1, {"messaging.destination.name": event.type})
                        await _settle(delivery.retry(delay, headers))
                else:
                    await _settle(delivery.ack())
                finally:
                    attrs = {
                        "messaging.destination.name": delivery.attributes.get("type", ""),
                        "messaging.consumer.group.name": self.group,
                        "outcome": outcome,
                    }
                    self._telemetry.consumed.add(1, attrs)
                    self._telemetry.process_duration.record(time.perf_counter() - started, attrs)

    def _log(self, event: Event) -> structlog.typing.FilteringBoundLogger:
        # Bound only when a failure is logged (most deliveries log nothing here): a bind per
        # delivery is a few microseconds each one pays for nothing.
        bound: structlog.typing.FilteringBoundLogger = _log.bind(
            event_id=event.id, event_type=event.type, group=self.group
        )
        return bound

    def _decode(self, delivery: Delivery, attempt: int) -> Event:
        writer, data = self._codec.decode(delivery.body)
        attrs = delivery.attributes
        event_id = attrs.get("id")
        if not event_id:
            raise DecodeError("message has no CloudEvents id attribute")
        raw_time = attrs.get("time")
        try:
            when = datetime.fromisoformat(raw_time) if raw_time else datetime.now(UTC)
        except ValueError:
            raise DecodeError(f"CloudEvents time {raw_time!r} is not RFC 3339") from None
        extensions = dict(delivery.headers)
        extensions[ATTEMPT_HEADER] = str(attempt)
        return Event(
            type=attrs.get("type") or writer.name,
            data=data,
            source=attrs.get("source", ""),
            subject=attrs.get("subject"),
            id=event_id,
            time=when,
            dataschema=attrs.get("dataschema"),
            datacontenttype=delivery.content_type or "application/avro",
            extensions=extensions,
        )

    async def _dead_letter(self, delivery: Delivery, exc: BaseException, attempt: int) -> None:
        headers = dict(delivery.headers)
        headers.update(
            {
                "x-error-type": type(exc).__name__,
                "x-error-message": str(exc)[:_MAX_ERROR_LEN],
                "x-attempts": str(attempt),
                "x-original-topic": delivery.attributes.get("type", delivery.topic),
                "x-consumer-group": self.group,
                "x-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        self._telemetry.dead_lettered.add(
            1, {"messaging.destination.name": delivery.attributes.get("type", delivery.topic)}
        )
        if isinstance(exc, DecodeError):
            _log.warning("undecodable message dead-lettered", group=self.group, error=str(exc))
        await _settle(delivery.dead_letter(headers))


def _attempt(delivery: Delivery) -> int:
    try:
        return max(1, int(delivery.headers.get(ATTEMPT_HEADER, "1")))
    except ValueError:
        return 1


async def _settle(operation: Awaitable[None]) -> None:
    """Settle a delivery; if the connection is gone the broker redelivers, which is safe."""
    try:
        await operation
    except Exception:  # noqa: BLE001 - lost connection: the broker will redeliver
        _log.warning("could not settle delivery; the broker will redeliver it", exc_info=True)
