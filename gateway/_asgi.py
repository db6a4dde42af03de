"""The gateway's ASGI application: the lifespan protocol, then every HTTP request to one
dispatcher, with no framework layers in between.

The gateway answers every failure itself with a google.rpc.Status body (``Gateway.handle``
catches everything), routes by its own descriptor-built table and needs no per-route
endpoints, so Starlette's application, error and exception middlewares, router and
endpoint wrapper would only add coroutine layers per request (about a tenth of the
gateway's CPU under load). Starlette's ``Request``, responses and CORS middleware are used
as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from services.runtime import get_logger

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Awaitable, Callable

    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["GatewayApp"]

_log = get_logger(__name__)


class GatewayApp:
    """``wrap(endpoint)`` serves HTTP; ``lifespan()`` holds the resources between the
    server's startup and shutdown."""

    def __init__(
        self,
        gateway: Any,
        dispatch: Callable[[Request], Awaitable[Response]],
        lifespan: Callable[[], contextlib.AbstractAsyncContextManager[None]],
        wrap: Callable[[ASGIApp], ASGIApp],
    ) -> None:
        self.gateway = gateway
        """The :class:`~gateway.app.Gateway` behind the app (routes, upstreams, OpenAPI)."""
        self._dispatch = dispatch
        self._lifespan = lifespan
        self._app = wrap(self._http)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._run_lifespan(receive, send)
        else:
            await self._app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets are not served
            await send({"type": "websocket.close", "code": 1000})
            return
        response = await self._dispatch(Request(scope, receive))
        await response(scope, receive, send)

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        started = False
        await receive()  # lifespan.startup
        try:
            async with self._lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except BaseException as exc:
            _log.exception("gateway.lifespan_failed", started=started)
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": repr(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})
