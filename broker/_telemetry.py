"""PRODUCER and CONSUMER spans (OpenTelemetry messaging conventions) and broker metrics.

Trace context crosses the broker through the *global* propagator, so whatever
``OTEL_PROPAGATORS`` names (``tracecontext,baggage,xray``) is injected and extracted.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextvars import Token
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

_SCOPE = "broker"
_log = structlog.get_logger("broker.consume")
_level = logging.getLogger("broker.consume")
"""Gates the per-message line: structlog left unconfigured (benchmarks, scripts) prints every
call, so the line is only made when the stdlib logger it is routed to would emit INFO."""


class Telemetry:
    """Spans and instruments for one :class:`~broker.Broker`."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        self.published = meter.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Events published"
        )
        self.consumed = meter.create_counter(
            "messaging.client.consumed.messages", unit="{message}", description="Events consumed"
        )
        self.retried = meter.create_counter(
            "shopmq.messages.retried", unit="{message}", description="Deliveries sent to retry"
        )
        self.dead_lettered = meter.create_counter(
            "shopmq.messages.dead_lettered",
            unit="{message}",
            description="Deliveries sent to a dead-letter queue",
        )
        self.process_duration = meter.create_histogram(
            "messaging.process.duration", unit="s", description="Handler duration"
        )
        self.publish_duration = meter.create_histogram(
            "messaging.client.operation.duration", unit="s", description="Publish until confirmed"
        )

    def producer_span(
        self,
        *,
        system: str,
        topic: str,
        event_id: str,
        body_size: int,
        headers: dict[str, str],
        parent: Context | None,
    ) -> _Current:
        """A PRODUCER span around one publish, current inside the block; its context is
        injected into ``headers``. An exception leaving the block is recorded on it (ERROR)."""
        span = self._tracer.start_span(
            f"send {topic}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": system,
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": event_id,
                "messaging.message.body.size": body_size,
            },
            record_exception=True,
            set_status_on_exception=True,
        )
        context = trace.set_span_in_context(span, parent)
        propagate.inject(headers, context=context)
        return _Current(span, context, record_errors=True)

    def consumer_span(
        self,
        *,
        system: str,
        topic: str,
        group: str,
        event_id: str | None,
        body_size: int,
        headers: Mapping[str, str],
    ) -> _Current:
        """A CONSUMER span for one delivery: child of the producer's context, linked to it too,
        and current while the handler runs (so the handler's own spans and publishes nest).

        A delivery that was processed is logged once (``message.processed``, info) inside the
        span, the way ``rpc.finished`` is for an RPC: every consumer's logs then carry the
        trace id of each event it saw, even when its handler logs nothing itself."""
        parent = propagate.extract(headers)
        producer = trace.get_current_span(parent).get_span_context()
        links = [Link(producer)] if producer.is_valid else []
        attributes: dict[str, str | int] = {
            "messaging.system": system,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.message.body.size": body_size,
        }
        if event_id:
            attributes["messaging.message.id"] = event_id
        span = self._tracer.start_span(
            f"process {topic}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        # The extracted context stays current beside the span: the producer's baggage
        # reaches the handler and whatever it publishes.
        processed = None
        if _level.isEnabledFor(logging.INFO):
            processed = {"event_id": event_id, "event_type": topic, "group": group}
        return _Current(span, trace.set_span_in_context(span, parent), processed=processed)


class _Current:
    """Makes ``span`` current (in ``context``) for a block and ends it after; with
    ``record_errors``, an exception leaving the block is recorded on it (ERROR); with
    ``processed``, ``message.processed`` is logged with those fields when the block completes.

    A class, not ``@contextmanager`` around ``start_as_current_span``: that is three
    generator-based context managers per message, for the same span."""

    __slots__ = ("_context", "_processed", "_record_errors", "_span", "_started", "_token")

    def __init__(
        self,
        span: Span,
        context: Context,
        *,
        record_errors: bool = False,
        processed: dict[str, Any] | None = None,
    ) -> None:
        self._span = span
        self._context = context
        self._record_errors = record_errors
        self._processed = processed
        self._token: Token[Context] | None = None
        self._started = 0.0

    def __enter__(self) -> Span:
        self._token = otel_context.attach(self._context)
        self._started = time.perf_counter()
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        try:
            if exc is not None:
                if self._record_errors:
                    record_failure(span, exc)
            elif self._processed is not None:
                duration_ms = round((time.perf_counter() - self._started) * 1000, 3)
                _log.info("message.processed", **self._processed, duration_ms=duration_ms)
        finally:
            if self._token is not None:
                otel_context.detach(self._token)
            span.end()


def record_failure(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
