"""Serves the web console's static files (``web/``) at ``/``, same origin as the API.

API paths (``/v1/...``) and the gateway's own endpoints always go to the gateway, so a file in
the static directory can never shadow an API route.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.staticfiles import StaticFiles

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["StaticFallback"]

_GATEWAY_PATHS = ("/v1/", "/openapi.json", "/docs", "/healthz", "/readyz", "/livez", "/metrics")


class StaticFallback:
    """ASGI wrapper: GET/HEAD of a file under ``directory`` (or ``/``) is served from disk."""

    def __init__(self, app: ASGIApp, directory: str | Path) -> None:
        self._app = app
        self._root = Path(directory).resolve()
        self._files = StaticFiles(directory=self._root, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_static(scope):
            await self._files(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _is_static(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if scope["method"] not in {"GET", "HEAD"} or path.startswith(_GATEWAY_PATHS):
            return False
        if path == "/":
            return (self._root / "index.html").is_file()
        candidate = (self._root / path.lstrip("/")).resolve()
        return candidate.is_relative_to(self._root) and candidate.is_file()
