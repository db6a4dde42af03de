"""HTTP server telemetry for an ASGI app: the SERVER span, the trace headers, the histogram.

One middleware does all three, per request: continues the client's trace (``traceparent`` or
``X-Amzn-Trace-Id``, through the global propagator) in a SERVER span named
``{method} {route}`` with the stable HTTP semantic-convention attributes, tells the client which
trace it is in (response headers), and records ``http.server.request.duration`` by method,
route template and status.

Why not opentelemetry-instrumentation-asgi's middleware, which this replaced (with two layers
of our own inside it): it was ~15% of the gateway's CPU per request in a profile, most of it
work the gateway does not need (a span name and attributes from the raw URL first, then
renamed; an ASGI receive/send wrapper around each message; environment-driven header capture
and semantic-convention switching). Made directly, the span costs what the SDK costs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.runtime._carriers import LOWER_CASE_GETTER
from services.runtime._xray import xray_trace_id

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from opentelemetry.context import Context
    from opentelemetry.metrics import Meter

    from services.runtime.metrics import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HttpServerTelemetry"]


_SERVER_ERROR = 500


class HttpServerTelemetry:
    """Wraps an ASGI app: SERVER span, trace response headers and the request histogram.

    ``route_of(scope)`` names the route template once the app has routed (default: Starlette's
    ``scope["route"].path``); it names the span and labels the histogram, never the raw path,
    so ids in URLs do not explode either. Requests no route matched count as ``unmatched``.
    Paths in ``untraced`` (probes, the scrape endpoint) get no span and no trace headers but
    are still counted.

    Response headers: ``traceresponse`` (W3C Trace Context level 2), ``X-Trace-Id`` (32 hex
    digits) and ``X-Amzn-Trace-Id`` (``Root=1-...;Parent=...;Sampled=...``), so a client that
    sent either ``traceparent`` or ``X-Amzn-Trace-Id`` can find its trace.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer: trace.Tracer,
        meter: Meter,
        route_of: Callable[[Scope], str | None] | None = None,
        untraced: Collection[str] = (),
    ) -> None:
        self._app = app
        self._tracer = tracer
        self._route_of = route_of or _starlette_route
        self._untraced = frozenset(untraced)
        self._duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="HTTP server request duration"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        method = str(scope.get("method") or "HTTP")
        span, token = None, None
        if scope["path"] not in self._untraced:
            span, context = self._start(scope, method)
            token = otel_context.attach(context)
        status = 500  # an app that raised before answering is answered 500 by the server
        route: str | None = None
        answered = False

        async def send_observed(message: Message) -> None:
            nonlocal status, route, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                route = self._route_of(scope)
                answered = True
                if span is not None:
                    _answering(span, method, route, message)
            await send(message)

        try:
            await self._app(scope, receive, send_observed)
        except Exception as exc:
            _failed(span, exc)
            raise
        finally:
            if not answered:  # the app raised first: it may have routed before it did
                route = self._route_of(scope)
            self._duration.record(
                time.perf_counter() - started,
                {
                    "http.request.method": method,
                    "http.route": route or "unmatched",
                    "http.response.status_code": status,
                },
            )
            _finish(span, status)
            if token is not None:
                otel_context.detach(token)

    def _start(self, scope: Scope, method: str) -> tuple[trace.Span, Context]:
        """The request's SERVER span, and the context to make current: the client's (its
        baggage included) with the span in it."""
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        parent = propagate.extract(headers, getter=LOWER_CASE_GETTER)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.scheme": str(scope.get("scheme") or "http"),
            "url.path": str(scope["path"]),
            "network.protocol.version": str(scope.get("http_version") or "1.1"),
        }
        if query := scope.get("query_string"):
            attributes["url.query"] = query.decode("latin-1")
        if server := scope.get("server"):
            attributes["server.address"], attributes["server.port"] = server[0], server[1]
        if client := scope.get("client"):
            attributes["client.address"], attributes["client.port"] = client[0], client[1]
        if agent := headers.get("user-agent"):
            attributes["user_agent.original"] = agent
        # Named by the method until routed: the raw path would make one name per order id.
        span = self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        return span, trace.set_span_in_context(span, parent)


def _answering(span: trace.Span, method: str, route: str | None, message: Message) -> None:
    if route is not None and span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    context = span.get_span_context()
    if context.is_valid:
        ours = _trace_headers(context)
        # Replace, never add: an inner layer may already have echoed the client's
        # headers, and a response must name one trace, this server span's.
        names = {name for name, _ in ours}
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
        headers.extend(ours)
        message["headers"] = headers


def _failed(span: trace.Span | None, exc: Exception) -> None:
    if span is not None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _finish(span: trace.Span | None, status: int) -> None:
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= _SERVER_ERROR:  # a server span fails for 5xx only: 4xx is the client's
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def _starlette_route(scope: Scope) -> str | None:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def _trace_headers(context: trace.SpanContext) -> list[tuple[bytes, bytes]]:
    trace_id = f"{context.trace_id:032x}"
    span_id = f"{context.span_id:016x}"
    sampled = int(context.trace_flags.sampled)
    xray = f"Root={xray_trace_id(context.trace_id)};Parent={span_id};Sampled={sampled}"
    return [
        (b"traceresponse", f"00-{trace_id}-{span_id}-{int(context.trace_flags):02x}".encode()),
        (b"x-trace-id", trace_id.encode()),
        (b"x-amzn-trace-id", xray.encode()),
    ]
