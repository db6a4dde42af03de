"""``python -m gateway``: the gateway on uvicorn (port 8080 unless GATEWAY_PORT says otherwise)."""

from __future__ import annotations

import sys

import uvicorn

from gateway.app import build_app
from gateway.settings import GatewaySettings
from services.runtime import ConfigError, configure_logging


def main() -> int:
    """Read settings (one clear line and exit 2 on a bad value), then serve until signalled."""
    try:
        settings = GatewaySettings.from_env()
        configure_logging("gateway", settings.log_level)
        app = build_app(settings)
    except ConfigError as exc:
        sys.stderr.write(f"gateway: {exc}\n")
        return 2
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish in-flight, then lifespan shutdown.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
