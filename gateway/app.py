"""The gateway ASGI application, built from descriptors at start-up.

:func:`build_app` takes settings, a FileDescriptorSet and an upstream map and returns an
ASGI app whose routes are the ``google.api.http`` bindings of every service that has an
upstream: no route is written by hand. Per request, in order: match route -> authenticate and
authorize -> rate limit -> read body (413 over the limit) -> cache lookup / ETag -> transcode ->
call the upstream with the request's deadline and trace metadata -> transcode back.
"""

from __future__ import annotations

import contextlib
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc
import redis.asyncio
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse, Response, StreamingResponse

from gateway._asgi import GatewayApp
from gateway._auth import Authenticator, Caller
from gateway._cache import (
    CacheStore,
    MemoryCache,
    RedisCache,
    cache_key,
    etag,
    etag_matches,
    ttl_for,
)
from gateway._docs import DOCS_HTML
from gateway._edge import TRACE_HEADERS, EdgeMiddleware
from gateway._errors import ApiError, from_rpc_error, status_json
from gateway._openapi import openapi_document
from gateway._ratelimit import MemoryLimiter, RateLimiter, RedisLimiter, retry_after
from gateway._routes import Route, Router, build_routes
from gateway._streaming import SSE, choose_media_type, stream_body
from gateway._transcode import build_request, encode, response_json
from gateway._upstreams import Upstreams, resolve_upstream
from services.runtime import get_logger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from google.protobuf.message import Message
    from starlette.requests import Request
    from starlette.types import ASGIApp

    from gateway.settings import GatewaySettings

__all__ = ["Gateway", "build_app", "load_descriptors", "openapi_for"]

_log = get_logger(__name__)
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_JSON = "application/json"
_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]  # grpc-stubs lacks the aio EOF marker


def load_descriptors(
    source: bytes | str | Path | descriptor_pb2.FileDescriptorSet | None,
) -> descriptor_pb2.FileDescriptorSet:
    """A FileDescriptorSet from bytes, a file path, a set, or None (the packaged shop set)."""
    if isinstance(source, descriptor_pb2.FileDescriptorSet):
        return source
    if source is None:
        data = resources.files("shop").joinpath("descriptors.binpb").read_bytes()
    elif isinstance(source, bytes):
        data = source
    else:
        data = Path(source).read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


def openapi_for(
    descriptors: bytes | str | Path | descriptor_pb2.FileDescriptorSet | None = None,
    *,
    auth: bool = True,
) -> dict[str, Any]:
    """The OpenAPI document of every annotated service in ``descriptors`` (default: the
    packaged shop set), exactly as a gateway fronting all of them serves it."""
    files = load_descriptors(descriptors)
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    services = sorted(
        f"{file.package}.{service.name}" if file.package else service.name
        for file in files.file
        for service in file.service
    )
    return openapi_document(build_routes(pool, services), list(files.file), auth=auth)


def _error_response(error: ApiError, pool: descriptor_pool.DescriptorPool | None) -> Response:
    return Response(
        encode(status_json(error.status, pool)),
        status_code=error.http,
        media_type=_JSON,
        headers=error.headers,
    )


class Gateway:
    """Routes, message classes, upstreams and policies; :meth:`handle` serves one request."""

    def __init__(
        self,
        settings: GatewaySettings,
        descriptors: descriptor_pb2.FileDescriptorSet,
        upstreams: Mapping[str, str],
        *,
        redis_prefix: str = "gw:",
        trace_channel: Callable[[grpc.aio.Channel], grpc.aio.Channel] | None = None,
    ) -> None:
        self.settings = settings
        self.pool = descriptor_pool.DescriptorPool()
        for file in descriptors.file:
            self.pool.Add(file)
        addresses: dict[str, str] = {}
        for file in descriptors.file:
            for service in file.service:
                full = f"{file.package}.{service.name}" if file.package else service.name
                address = resolve_upstream(full, upstreams)
                if address is not None:
                    addresses[full] = address
        self.routes = build_routes(self.pool, sorted(addresses))
        self.router = Router(self.routes)
        self.upstreams = Upstreams(
            addresses, health_interval=settings.health_interval, trace_channel=trace_channel
        )
        self.auth = Authenticator(settings)
        self.openapi = encode(
            openapi_document(self.routes, list(descriptors.file), auth=settings.auth_required)
        )
        self._classes: dict[str, type[Message]] = {}
        self._redis = redis.asyncio.from_url(settings.redis_url) if settings.redis_url else None
        self.limiter: RateLimiter | None = None
        if settings.rate_limit_rps is not None:
            rps, burst = settings.rate_limit_rps, settings.rate_limit_burst
            self.limiter = (
                RedisLimiter(self._redis, rps, burst, prefix=redis_prefix + "rl:")
                if self._redis is not None
                else MemoryLimiter(rps, burst)
            )
        self.cache: CacheStore = (
            RedisCache(self._redis, prefix=redis_prefix + "cache:")
            if self._redis is not None
            else MemoryCache()
        )
        _log.info(
            "gateway.routes",
            services=sorted(addresses),
            routes=[f"{r.http_method} {r.template}" for r in self.router.routes],
        )
        if not settings.auth_required:
            _log.warning("gateway.auth_disabled")

    def message_class(self, descriptor: Any) -> type[Message]:
        """The (cached) dynamic message class for a descriptor."""
        found = self._classes.get(descriptor.full_name)
        if found is None:
            found = message_factory.GetMessageClass(descriptor)
            self._classes[descriptor.full_name] = found
        return found

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Upstream health checks and Redis for the app's lifetime."""
        async with self.upstreams:
            try:
                yield
            finally:
                if self._redis is not None:
                    await self._redis.aclose()

    def _deadline(self, request: Request) -> float:
        header = request.headers.get("grpc-timeout")
        if header is None:
            return self.settings.request_timeout
        found = _TIMEOUT.match(header.strip())
        if found is None:
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"grpc-timeout {header!r} is not <digits><H|M|S|m|u|n>",
            )
        seconds = int(found.group(1)) * _UNITS[found.group(2)]
        return min(seconds, self.settings.max_timeout)

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request body exceeds {limit} bytes",
            http=413,
        )
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle(self, request: Request) -> Response:
        """Serve one REST call; every failure is a google.rpc.Status response."""
        try:
            return await self._handle(request)
        except ApiError as error:
            return _error_response(error, self.pool)
        except Exception:  # noqa: BLE001  -- a bug must still answer a Status body, and be logged
            _log.exception("gateway.internal_error")
            internal = ApiError(grpc.StatusCode.INTERNAL, "internal gateway error")
            return _error_response(internal, self.pool)

    def route_template(self, method: str, path: str) -> str | None:
        """The matched route's template (metrics and span names use it, never raw paths)."""
        route, _values, _allowed = self.router.match(method, path)
        return route.template if route is not None else None

    def _route(self, request: Request) -> tuple[Route, dict[str, str]]:
        route, values, allowed = self.router.match(request.method, request.url.path)
        if route is not None:
            request.state.rpc = route.rpc
            return route, values
        if allowed:
            raise ApiError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{request.method} is not allowed on {request.url.path}",
                http=405,
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        raise ApiError(grpc.StatusCode.NOT_FOUND, f"no route for {request.url.path}")

    async def _admit(self, request: Request, route: Route) -> Caller:
        """Authenticate, authorize and rate-limit: the caller, or a 401/403/429 ApiError."""
        client = request.client.host if request.client else "unknown"
        caller = await self.auth.authenticate(request.headers, client)
        request.state.caller = caller.identity
        self.auth.authorize(caller, route.rpc)
        if self.limiter is not None:
            allowed, wait = await self.limiter.take(caller.identity)
            if not allowed:
                raise ApiError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"rate limit exceeded for {caller.identity}",
                    headers={"Retry-After": retry_after(wait)},
                )
        return caller

    async def _handle(self, request: Request) -> Response:
        route, values = self._route(request)
        caller = await self._admit(request, route)
        body = await self._body(request)
        timeout = self._deadline(request)
        ttl = ttl_for(route.rpc, self.settings.cache_ttls)
        cacheable = route.http_method == "GET" and not route.server_streaming
        key = cache_key(caller.identity, request.url.path, request.url.query)
        if cacheable and ttl is not None:
            hit = await self.cache.get(key)
            if hit is not None:
                return self._json_ok(request, hit, ttl, cached=True)
        message = build_request(
            route,
            self.message_class(route.method.input_type),
            path_values={k: v for k, v in values.items() if v is not None},
            query=list(request.query_params.multi_items()),
            body=body,
            pool=self.pool,
        )
        service = route.method.containing_service.full_name
        if not self.upstreams.serving(service):
            raise ApiError(grpc.StatusCode.UNAVAILABLE, f"{service} is not serving")
        metadata = self._metadata(request, caller)
        if route.server_streaming:
            return await self._stream(request, route, message, metadata, timeout)
        call = self.upstreams.channel(service).unary_unary(
            route.grpc_path,
            request_serializer=_serialize,
            response_deserializer=self.message_class(route.method.output_type).FromString,
        )
        try:
            reply = await call(message, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        payload = encode(response_json(route, reply, self.pool))
        if cacheable and ttl is not None:
            await self.cache.put(key, payload, ttl)
        return self._json_ok(request, payload, ttl if cacheable else None, cached=False)

    def _json_ok(
        self, request: Request, body: bytes, ttl: float | None, *, cached: bool
    ) -> Response:
        headers: dict[str, str] = {}
        if request.method == "GET":
            tag = etag(body)
            headers["ETag"] = tag
            # private: responses depend on the caller's credentials.
            headers["Cache-Control"] = (
                f"private, max-age={int(ttl)}" if ttl else "private, no-cache"
            )
            if ttl is not None:
                headers["X-Cache"] = "hit" if cached else "miss"
            if etag_matches(request.headers.get("if-none-match"), tag):
                return Response(status_code=304, headers=headers)
        return Response(body, media_type=_JSON, headers=headers)

    @staticmethod
    def _metadata(request: Request, caller: Caller) -> list[tuple[str, str]]:
        metadata = [("x-request-id", str(request.state.request_id))]
        metadata += [(n, request.headers[n]) for n in TRACE_HEADERS if n in request.headers]
        metadata.append(("x-gateway-caller", caller.identity))
        return metadata

    async def _stream(
        self,
        request: Request,
        route: Route,
        message: Message,
        metadata: list[tuple[str, str]],
        timeout: float,
    ) -> Response:
        service = route.method.containing_service.full_name
        call = self.upstreams.channel(service).unary_stream(
            route.grpc_path,
            request_serializer=_serialize,
            response_deserializer=self.message_class(route.method.output_type).FromString,
        )(message, timeout=timeout, metadata=metadata)
        media_type = choose_media_type(request.headers.get("accept", ""))
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

        async def rest() -> AsyncIterator[Message]:
            try:
                while True:
                    item = await call.read()
                    if item is _EOF:
                        return
                    yield cast("Message", item)
            finally:
                # A client that went away must not leave the upstream stream running.
                call.cancel()

        def render(item: Message) -> Any:
            return response_json(route, item, self.pool)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if first is _EOF:
            return Response(b"", media_type=media_type, headers=headers)
        body = stream_body(cast("Message", first), rest(), media_type, render)
        if media_type == SSE:
            headers["Connection"] = "keep-alive"
        return StreamingResponse(body, media_type=media_type, headers=headers)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def build_app(
    settings: GatewaySettings,
    descriptors: bytes | str | Path | descriptor_pb2.FileDescriptorSet | None = None,
    upstreams: Mapping[str, str] | None = None,
    *,
    redis_prefix: str = "gw:",
    trace_channel: Callable[[grpc.aio.Channel], grpc.aio.Channel] | None = None,
) -> GatewayApp:
    """The gateway app for every service in ``descriptors`` that ``upstreams`` addresses.

    ``descriptors`` defaults to ``settings.descriptors`` or else the packaged shop set;
    ``upstreams`` to ``settings.upstreams``. ``redis_prefix`` namespaces Redis keys.
    ``trace_channel`` (``Telemetry.trace_channel``) makes each upstream call traced.
    """
    source = descriptors if descriptors is not None else settings.descriptors
    gateway = Gateway(
        settings,
        load_descriptors(source),
        upstreams if upstreams is not None else settings.upstreams,
        redis_prefix=redis_prefix,
        trace_channel=trace_channel,
    )

    async def openapi(_: Request) -> Response:
        return Response(gateway.openapi, media_type=_JSON)

    async def docs(_: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def healthz(_: Request) -> Response:
        return Response(encode({"status": "SERVING"}), media_type=_JSON)

    async def readyz(_: Request) -> Response:
        health = gateway.upstreams.health()
        ready = all(health.values())
        body = {"status": "SERVING" if ready else "NOT_SERVING", "upstreams": health}
        return Response(encode(body), status_code=200 if ready else 503, media_type=_JSON)

    fixed = {"/openapi.json": openapi, "/docs": docs, "/healthz": healthz, "/readyz": readyz}

    async def dispatch(request: Request) -> Response:
        # One dispatcher instead of Starlette's router: every path, including ones the
        # router's patterns reject (newlines) and wrong methods, gets a Status JSON body.
        endpoint = fixed.get(request.url.path)
        if endpoint is not None and request.method in {"GET", "HEAD"}:
            return await endpoint(request)
        return await gateway.handle(request)

    def wrap(app: ASGIApp) -> ASGIApp:
        if settings.cors_origins:
            app = CORSMiddleware(
                app,
                allow_origins=list(settings.cors_origins),
                allow_methods=_ALL_METHODS,
                allow_headers=["*"],
                expose_headers=["X-Request-Id", "ETag", "Retry-After", *TRACE_HEADERS],
                max_age=600,
            )
        return EdgeMiddleware(app)

    return GatewayApp(gateway, dispatch, gateway.lifespan, wrap)
