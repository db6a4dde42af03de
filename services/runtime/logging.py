"""structlog configured once per process: JSON lines on stdout, stdlib logging routed through it.

Every line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``service``, ``logger`` and the
key-values bound for the current RPC, request or message, with :func:`log_fields` (the
runtime's interceptors bind ``rpc.service`` and ``rpc.method``, the gateway ``request_id``) or
with :func:`structlog.contextvars.bind_contextvars`. Libraries that log through the standard
library (grpc, SQLAlchemy, aio-pika) come out as the same JSON lines.

When an OpenTelemetry span is current (an RPC, a message handler, or a span a service opened),
the line also carries ``trace_id`` and ``span_id`` (hex, as in W3C ``traceparent``) and
``xray_trace_id`` (``1-xxxxxxxx-yyyy...``, the form CloudWatch and X-Ray search by).

Our own loggers are structlog-native (a level-filtering bound logger writing the rendered line
straight to the stream): a line costs about a third of what the trip through the stdlib
``logging`` machinery costs, and the services write one per RPC and the gateway one per
request. Only other libraries' records take the stdlib path, through the same processors.
Lines are rendered by orjson (the timestamp too, from a ``datetime``): a fifth of what the
standard library's ``json`` and ``isoformat`` cost for the same line.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, cast

import orjson
import structlog
from opentelemetry import trace

from services.runtime._xray import xray_from_hex

if TYPE_CHECKING:
    from collections.abc import Iterable, MutableMapping

    from structlog.typing import Processor

__all__ = ["Logger", "add_trace_context", "configure_logging", "get_logger", "log_fields"]

_HANDLER_NAME = "services.runtime"

Logger = structlog.typing.FilteringBoundLogger
"""What :func:`get_logger` returns: ``debug``/``info``/``warning``/``error``/``exception``/
``log(level, ...)`` with key-values, and ``bind``."""


_fields: ContextVar[dict[str, Any] | None] = ContextVar("shopmq_log_fields", default=None)


class log_fields:  # noqa: N801 - used like a function: ``with log_fields(request_id=...):``
    """Bind key-values to every line logged in this context (an RPC, a request, a message);
    nested blocks add to the outer ones, and each block's fields end with it.

    What :func:`structlog.contextvars.bound_contextvars` does, with one context variable for
    all fields instead of one per key (and a scan of the whole context per line): the runtime
    binds fields for every RPC and request, so that difference is paid on each."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: Any) -> None:
        self._fields = fields
        self._token: Token[dict[str, Any] | None] | None = None

    def __enter__(self) -> None:
        outer = _fields.get()
        self._token = _fields.set({**outer, **self._fields} if outer else self._fields)

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _fields.reset(self._token)


def _merge_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    fields = _fields.get()
    if fields:
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


def _add_timestamp(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # A datetime, rendered by orjson as ISO 8601 with a Z (structlog's "iso" stamp, in C).
    event.setdefault("timestamp", datetime.now(UTC))
    return event


_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _dumps(event: Any, **kw: Any) -> str:
    """orjson for every line; the standard library only for what orjson refuses (integers
    past 64 bits), so such a line still comes out."""
    default = kw.get("default")
    try:
        return orjson.dumps(event, default=default, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(event, default=lambda o: _iso(o) or (default or repr)(o))


def _iso(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return None


class _LineWriter:
    """Writes each rendered line to ``stream`` (None: whatever ``sys.stdout`` is at the time,
    so a test's capture of it works) at once; ``name`` feeds the ``logger`` key."""

    def __init__(self, stream: TextIO | None, lock: threading.Lock, name: str) -> None:
        self.name = name
        self._stream = stream
        self._lock = lock

    def msg(self, message: str) -> None:
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _LineWriterFactory:
    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> _LineWriter:
        return _LineWriter(self._stream, self._lock, str(args[0]) if args else "")


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
        _merge_fields,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_timestamp,
        add_service,
        add_trace_context,
        *extra_processors,
    ]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    # Tracebacks as structured JSON, without local variables: locals can hold secrets.
    exceptions = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    render = structlog.processors.JSONRenderer(_dumps)
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
        digits = f"{context.trace_id:032x}"
        event.setdefault("trace_id", digits)
        event.setdefault("span_id", f"{context.span_id:016x}")
        event.setdefault("xray_trace_id", xray_from_hex(digits))
    return event


class _BoundOnce:
    """A named logger bound to structlog's configuration once per configuration.

    structlog's own lazy proxy (with ``cache_logger_on_first_use`` off, which tests need to
    reconfigure) builds a new bound logger and output logger on every call: a fifth of a
    line's cost. This one rebinds only when the configuration's processors, wrapper or
    factory are other objects than at the last binding (``configure_logging``,
    ``structlog.testing.capture_logs``)."""

    __slots__ = ("_bound", "_config", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._config: tuple[object, ...] = ()
        self._bound: Any = None

    def __getattr__(self, attribute: str) -> Any:
        config = structlog.get_config()
        current = (config["processors"], config["wrapper_class"], config["logger_factory"])
        if len(current) != len(self._config) or any(
            a is not b for a, b in zip(current, self._config, strict=True)
        ):
            self._bound = structlog.get_logger(self._name).bind()
            self._config = current
        return getattr(self._bound, attribute)


def get_logger(name: str) -> Logger:
    """A structlog logger named ``name`` (use the module's ``__name__``)."""
    return cast("Logger", _BoundOnce(name))
