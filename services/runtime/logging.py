"""structlog configured once per process: JSON lines on stdout, stdlib logging routed through it.

Every line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``service``, ``logger`` and the
key-values bound with :func:`structlog.contextvars.bind_contextvars` for the current RPC or
message (the interceptors bind ``rpc.service`` and ``rpc.method``). Libraries that log through
the standard library (grpc, SQLAlchemy, aio-pika) come out as the same JSON lines.

When an OpenTelemetry span is current (an RPC, a message handler, or a span a service opened),
the line also carries ``trace_id`` and ``span_id`` (hex, as in W3C ``traceparent``) and
``xray_trace_id`` (``1-xxxxxxxx-yyyy...``, the form CloudWatch and X-Ray search by).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from opentelemetry import trace

from services.runtime._xray import xray_trace_id

if TYPE_CHECKING:
    from collections.abc import Iterable, MutableMapping

    from structlog.typing import Processor

__all__ = ["add_trace_context", "configure_logging", "get_logger"]

_HANDLER_NAME = "services.runtime"


def configure_logging(
    service: str,
    level: str = "info",
    *,
    stream: TextIO | None = None,
    extra_processors: Iterable[Processor] = (),
) -> None:
    """Configure structlog and the stdlib root logger; calling it again replaces the setup."""

    def add_service(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        return event

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        add_trace_context,
        *extra_processors,
    ]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks as structured JSON, without local variables: locals can hold secrets.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    # Replace only our own handler, so a test harness's capture handlers stay in place.
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)


def add_trace_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Add ``trace_id``, ``span_id`` and ``xray_trace_id`` of the current span, if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", f"{context.trace_id:032x}")
        event.setdefault("span_id", f"{context.span_id:016x}")
        event.setdefault("xray_trace_id", xray_trace_id(context.trace_id))
    return event


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (use the module's ``__name__``)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
