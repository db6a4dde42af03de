"""SERVER spans for the runtime's gRPC server, continuing the caller's trace.

Why not opentelemetry-instrumentation-grpc's aio *server* interceptor (for the client side see
``_grpc_client_tracing``): it iterates a streaming handler with ``async for``, while the runtime's
interceptor chain runs every streaming handler as a coroutine writing through
``context.write`` (``WatchOrder`` would fail), and it misses codes set through
``abort_with_status`` (every domain error). This interceptor sits in the runtime's chain, so it
sees all four RPC kinds alike and the final code; names and attributes follow that
instrumentation (and the RPC semantic conventions), so client and server spans read the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.runtime._carriers import LOWER_CASE_GETTER
from services.runtime.errors import StatusError
from services.runtime.interceptors import RpcCall, RpcInterceptor, final_code

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["RpcTracingInterceptor"]

# Server spans are errors only for codes meaning the server failed, not the caller.
_SERVER_ERRORS = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}


_ANSWERS = (grpc.aio.AbortError, StatusError)
"""Exceptions that are how a handler answers with a status, not failures to record."""


class RpcTracingInterceptor(RpcInterceptor):
    """One SERVER span per RPC (health and reflection excluded), child of the caller's
    context from the metadata, current while the handler runs."""

    def __init__(self, tracer_provider: trace.TracerProvider) -> None:
        self._tracer = tracer_provider.get_tracer("services.runtime.grpc")

    async def around(self, call: RpcCall, proceed: Callable[[], Awaitable[Any]]) -> Any:
        if call.rpc.probe:  # health checks and reflection
            return await proceed()
        metadata = {
            str(key).lower(): value
            for key, value in (call.context.invocation_metadata() or ())
            if isinstance(value, str)
        }
        parent = propagate.extract(metadata, getter=LOWER_CASE_GETTER)
        # start_span and attach rather than start_as_current_span: the same span without the
        # two generator-based context managers around it, on every call.
        span = self._tracer.start_span(
            call.method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": call.service,
                "rpc.method": call.name,
                "client.address": call.context.peer(),
            },
            record_exception=False,
            set_status_on_exception=False,
        )
        # The caller's baggage stays current beside the span, as in a message handler.
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        failure: BaseException | None = None
        try:
            return await proceed()
        except BaseException as exc:
            failure = exc
            if isinstance(exc, Exception) and not isinstance(exc, _ANSWERS):
                span.record_exception(exc)  # a bug, not an answer: keep its traceback
            raise
        finally:
            code = final_code(call, failure)
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code in _SERVER_ERRORS:
                span.set_status(Status(StatusCode.ERROR, code.name))
            otel_context.detach(token)
            span.end()
