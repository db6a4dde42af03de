"""structlog configured once per process: JSON lines on stdout, stdlib logging routed through it.

Every line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``service``, ``logger`` and the
key-values bound with :func:`structlog.contextvars.bind_contextvars` for the current RPC or
message (the interceptors bind ``rpc.service`` and ``rpc.method``). Libraries that log through
the standard library (grpc, SQLAlchemy, aio-pika) come out as the same JSON lines.

When an OpenTelemetry span is current (an RPC, a message handler, or a span a service opened),
the line also carries ``trace_id`` and ``span_id`` (hex, as in W3C ``traceparent``) and
``xray_trace_id`` (``1-xxxxxxxx-yyyy...``, the form CloudWatch and X-Ray search by).

Our own loggers are structlog-native (a level-filtering bound logger writing the rendered line
straight to the stream): a line costs about a third of what the trip through the stdlib
``logging`` machinery costs, and the services write one per RPC and the gateway one per
request. Only other libraries' records take the stdlib path, through the same processors.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from opentelemetry import trace

from services.runtime._xray import xray_trace_id

if TYPE_CHECKING:
    from collections.abc import Iterable, MutableMapping

    from structlog.typing import Processor

__all__ = ["Logger", "add_trace_context", "configure_logging", "get_logger"]

_HANDLER_NAME = "services.runtime"

Logger = structlog.typing.FilteringBoundLogger
"""What :func:`get_logger` returns: ``debug``/``info``/``warning``/``error``/``exception``/
``log(level, ...)`` with key-values, and ``bind``."""


class _LineWriter:
    """Writes each rendered line to ``stream`` at once; ``name`` feeds the ``logger`` key."""

    def __init__(self, stream: TextIO, lock: threading.Lock, name: str) -> None:
        self.name = name
        self._stream = stream
        self._lock = lock

    def msg(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
            self._stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _LineWriterFactory:
    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> _LineWriter:
        # sys.stdout is looked up per logger, not once, so a test's capture of it works.
        stream = self._stream if self._stream is not None else sys.stdout
        return _LineWriter(stream, self._lock, str(args[0]) if args else "")


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
    # Tracebacks as structured JSON, without local variables: locals can hold secrets.
    exceptions = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    render = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            exceptions,
            render,
        ],
        logger_factory=_LineWriterFactory(stream),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Not cached: configuring again (tests do, with other streams) must reach every logger.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions, render],
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


def get_logger(name: str) -> Logger:
    """A structlog logger named ``name`` (use the module's ``__name__``)."""
    logger: Logger = structlog.get_logger(name)
    return logger
