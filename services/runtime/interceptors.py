"""Server interceptors: logging, error mapping and request validation, one concern each.

Each interceptor implements :meth:`RpcInterceptor.around`, which receives the call and a
``proceed`` coroutine function running everything inside it (for a server-streaming RPC,
``proceed`` writes the whole stream and returns None). :class:`ServiceServer` installs them as

    [*extra (tracing, RPC metrics), LoggingInterceptor, ErrorInterceptor,
     ValidationInterceptor] -> handler

so the log line sees the final status code, and invalid requests are rejected with field
violations before any handler code runs.

Each is a ``grpc.aio`` server interceptor on its own, but the server runs them as one
:class:`InterceptorChain`: grpc.aio awaits every interceptor's ``intercept_service`` for
every call and each would wrap the handler anew, while the chain does that once per call and
builds each method's wrapped handler (and its service and method names) only once.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import grpc
from grpc_status import rpc_status

from services.runtime.errors import StatusError
from services.runtime.logging import Logger, get_logger, log_fields
from services.runtime.validation import validate

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import protovalidate

__all__ = [
    "ErrorInterceptor",
    "InterceptorChain",
    "LoggingInterceptor",
    "RpcCall",
    "RpcInterceptor",
    "ValidationInterceptor",
    "final_code",
]

_QUIET_SERVICES = ("grpc.health.", "grpc.reflection.")
"""Probes and tooling: logged at debug level so health checks do not flood the logs."""
_UPSTREAM_DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # generic only in grpc-stubs, not at run time
    _ServerInterceptor = grpc.aio.ServerInterceptor


@dataclass(frozen=True, slots=True)
class RpcMethod:
    """What the interceptors need to know of a method, worked out once per method."""

    path: str
    """Full method path, ``/shop.orders.v1.OrderService/GetOrder``."""
    service: str
    """``shop.orders.v1.OrderService``."""
    name: str
    """``GetOrder``."""
    probe: bool
    """A health check or reflection call: not application traffic (logged at debug level,
    neither traced nor timed)."""

    @classmethod
    def of(cls, path: str) -> RpcMethod:
        service = path.lstrip("/").partition("/")[0]
        return cls(path, service, path.rpartition("/")[2], service.startswith(_QUIET_SERVICES))


@dataclass(frozen=True, slots=True)
class RpcCall:
    """One incoming RPC as the interceptors see it."""

    rpc: RpcMethod
    request: Any
    """The request message; None for client-streaming RPCs (their requests are a stream)."""
    context: grpc.aio.ServicerContext[Any, Any]

    @property
    def method(self) -> str:
        """Full method path, ``/shop.orders.v1.OrderService/GetOrder``."""
        return self.rpc.path

    @property
    def service(self) -> str:
        return self.rpc.service

    @property
    def name(self) -> str:
        return self.rpc.name


class RpcInterceptor(_ServerInterceptor, ABC):
    """Base class: wraps every handler so :meth:`around` runs around each call."""

    _alone: InterceptorChain | None = None

    @abstractmethod
    async def around(self, call: RpcCall, proceed: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``proceed()`` (the rest of the chain) and return its result."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Installed on a server by itself: a chain of one."""
        if self._alone is None:
            self._alone = InterceptorChain([self])
        return await self._alone.intercept_service(continuation, handler_call_details)


class InterceptorChain(_ServerInterceptor):
    """Several :class:`RpcInterceptor` as one ``grpc.aio`` interceptor, the first outermost.

    Per call: one ``intercept_service`` and one :class:`RpcCall`; the wrapped handler of a
    method is built the first time it is called and reused while the servicer's handler for
    it stays the same object (as generated servicers' do)."""

    def __init__(self, interceptors: Sequence[RpcInterceptor]) -> None:
        self._arounds = tuple(interceptor.around for interceptor in reversed(interceptors))
        self._wrapped: dict[str, tuple[object, Any]] = {}

    def _around(self, call: RpcCall, proceed: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        for around in self._arounds:
            proceed = partial(around, call, proceed)
        return proceed()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler: grpc.RpcMethodHandler[Any, Any] | None = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return cast("grpc.RpcMethodHandler[Any, Any]", None)
        path = handler_call_details.method
        cached = self._wrapped.get(path)
        if cached is None or cached[0] is not handler:
            cached = (handler, _wrap(handler, RpcMethod.of(path), self._around))
            self._wrapped[path] = cached
        return cast("grpc.RpcMethodHandler[Any, Any]", cached[1])


def _wrap(handler: Any, method: RpcMethod, around: Callable[..., Awaitable[Any]]) -> Any:
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        async def call_unary_unary(request: Any, context: Any) -> Any:
            call = RpcCall(method, request, context)
            return await around(call, lambda: unary_unary(request, context))

        return grpc.unary_unary_rpc_method_handler(call_unary_unary, **serializers)
    if handler.unary_stream is not None:
        unary_stream = handler.unary_stream

        async def call_unary_stream(request: Any, context: Any) -> None:
            call = RpcCall(method, request, context)
            await around(call, lambda: _stream(unary_stream(request, context), context))

        return grpc.unary_stream_rpc_method_handler(call_unary_stream, **serializers)
    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        async def call_stream_unary(requests: Any, context: Any) -> Any:
            call = RpcCall(method, None, context)
            return await around(call, lambda: stream_unary(requests, context))

        return grpc.stream_unary_rpc_method_handler(call_stream_unary, **serializers)
    stream_stream = handler.stream_stream

    async def call_stream_stream(requests: Any, context: Any) -> None:
        call = RpcCall(method, None, context)
        await around(call, lambda: _stream(stream_stream(requests, context), context))

    return grpc.stream_stream_rpc_method_handler(call_stream_stream, **serializers)


async def _stream(result: Any, context: Any) -> None:
    # A streaming handler is either an async generator or a coroutine calling context.write;
    # the wrapper always writes, so both kinds pass through every interceptor alike.
    if hasattr(result, "__aiter__"):
        async for message in result:
            await context.write(message)
    else:
        await result


class LoggingInterceptor(RpcInterceptor):
    """Binds ``rpc.service``/``rpc.method`` to the log context and logs each call's outcome
    (status code, duration, peer) once it finished."""

    def __init__(self, logger: Logger | None = None) -> None:
        self._log = logger or get_logger("services.runtime.rpc")

    async def around(self, call: RpcCall, proceed: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        failure: BaseException | None = None
        with log_fields(**{"rpc.service": call.service, "rpc.method": call.name}):
            try:
                return await proceed()
            except BaseException as exc:
                failure = exc
                raise
            finally:
                self._finished(call, final_code(call, failure), started)

    def _finished(self, call: RpcCall, code: grpc.StatusCode, started: float) -> None:
        level = "info"
        if call.rpc.probe:
            level = "debug"
        elif code in {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}:
            level = "error"
        self._log.log(
            _LEVELS[level],
            "rpc.finished",
            code=code.name,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            peer=call.context.peer(),
        )


def final_code(call: RpcCall, failure: BaseException | None) -> grpc.StatusCode:
    """The status ``call`` ends with, seen from an interceptor around the handler: the code
    the handler chose (``abort``, ``set_code``), else OK if it returned; the code a
    :class:`StatusError` carries; CANCELLED; UNKNOWN for anything else it raised."""
    if failure is None:
        return _context_code(call) or grpc.StatusCode.OK
    if isinstance(failure, grpc.aio.AbortError):
        return _context_code(call) or grpc.StatusCode.UNKNOWN
    return _code_of(failure)


def _context_code(call: RpcCall) -> grpc.StatusCode | None:
    # The code set by abort() or set_code(); None while the handler has not chosen one.
    return cast("grpc.StatusCode | None", call.context.code())


def _code_of(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, StatusError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


_LEVELS = {"debug": 10, "info": 20, "error": 40}


class ErrorInterceptor(RpcInterceptor):
    """The one place errors become gRPC statuses.

    :class:`StatusError` -> its code with ``google.rpc.Status`` details (BadRequest,
    PreconditionFailure, ResourceInfo); an upstream gRPC call that failed UNAVAILABLE or
    DEADLINE_EXCEEDED -> UNAVAILABLE; anything else -> INTERNAL with a generic message, the
    traceback going to the log only, never to the client.
    """

    def __init__(self, logger: Logger | None = None) -> None:
        self._log = logger or get_logger("services.runtime.errors")

    async def around(self, call: RpcCall, proceed: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await proceed()
        except StatusError as exc:
            # grpc-stubs lacks aio abort_with_status; grpcio has it since 1.38.
            context = cast("Any", call.context)
            await context.abort_with_status(rpc_status.to_status(exc.to_status()))
        except grpc.aio.AbortError:
            raise  # the handler aborted with a status of its own choosing
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _UPSTREAM_DOWN:
                self._log.warning("rpc.upstream_unavailable", upstream_code=exc.code().name)
                await call.context.abort(grpc.StatusCode.UNAVAILABLE, "upstream unavailable")
            self._log.exception("rpc.upstream_failed", upstream_code=exc.code().name)
            await call.context.abort(grpc.StatusCode.INTERNAL, "internal error")
        except Exception:  # noqa: BLE001 -- the catch-all is this interceptor's purpose
            self._log.exception("rpc.unexpected_error")
            await call.context.abort(grpc.StatusCode.INTERNAL, "internal error")


class ValidationInterceptor(RpcInterceptor):
    """Checks each request against its contract's protovalidate rules before the handler."""

    def __init__(self, validator: protovalidate.Validator | None = None) -> None:
        self._validator = validator

    async def around(self, call: RpcCall, proceed: Callable[[], Awaitable[Any]]) -> Any:
        if call.request is not None:
            validate(call.request, self._validator)
        return await proceed()
