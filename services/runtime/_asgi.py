"""ASGI middleware telling an HTTP client which trace its request belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace

from services.runtime._xray import xray_trace_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.runtime.metrics import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TraceHeadersMiddleware"]


class TraceHeadersMiddleware:
    """Adds the current trace to every response and names the server span by its route.

    Response headers: ``traceresponse`` (W3C Trace Context level 2), ``X-Trace-Id`` (32 hex
    digits) and ``X-Amzn-Trace-Id`` (``Root=1-...;Parent=...;Sampled=...``), so a client that
    sent either ``traceparent`` or ``X-Amzn-Trace-Id`` can find its trace. Runs inside the
    OpenTelemetry ASGI middleware, whose SERVER span is current here.
    """

    def __init__(
        self, app: ASGIApp, *, route_of: Callable[[Scope], str | None] | None = None
    ) -> None:
        self._app = app
        self._route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        span = trace.get_current_span()
        context = span.get_span_context()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and context.is_valid:
                # Routing is done by now; the span (ended with the response body) was named
                # after the raw path at start, which would make one span name per order id.
                self._name_by_route(span, scope)
                ours = _trace_headers(context)
                # Replace, never add: an inner layer may already have echoed the client's
                # headers, and a response must name one trace, this server span's.
                names = {name for name, _ in ours}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers.extend(ours)
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, send_with_headers)

    def _name_by_route(self, span: trace.Span, scope: Scope) -> None:
        route = self._route(scope)
        if route is not None and span.is_recording():
            span.update_name(f"{scope.get('method', 'HTTP')} {route}")
            span.set_attribute("http.route", route)

    def _route(self, scope: Scope) -> str | None:
        if self._route_of is not None:
            return self._route_of(scope)
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
