"""The outermost ASGI layer: request ids, trace headers, access logs.

Every response carries ``X-Request-Id`` (the client's, when it sent a sane one, else a new
UUID) and echoes ``traceparent``, ``tracestate`` and ``X-Amzn-Trace-Id``; the transcoder passes
the same values to the upstream as gRPC metadata. One structlog ``http.request`` line per
request records method, path, status, duration and caller.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from services.runtime import get_logger
from services.runtime.logging import log_fields

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TRACE_HEADERS", "EdgeMiddleware"]

TRACE_HEADERS = ("traceparent", "tracestate", "x-amzn-trace-id")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = get_logger("gateway.access")


class EdgeMiddleware:
    """Request id, trace header echo and the access log around ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``app`` with the request's ids in ``scope["state"]``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else str(uuid.uuid4())
        echoed = [("x-request-id", request_id)]
        echoed += [(name, headers[name]) for name in TRACE_HEADERS if name in headers]
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["trace_headers"] = echoed
        status = 500
        start = time.perf_counter()

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                existing = list(message.get("headers", []))
                names = {k.lower() for k, _ in existing}
                for name, value in echoed:
                    if name.encode() not in names:
                        existing.append((name.encode(), value.encode("latin-1")))
                message["headers"] = existing
            await send(message)

        with log_fields(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                _log.info(
                    "http.request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - start) * 1000, 2),
                    caller=state.get("caller"),
                    rpc=state.get("rpc"),
                )
