"""The gateway's error tree (all derive from :class:`GatewayError`)::

    GatewayError
    ├── RouteError (ValueError)    an annotation the gateway cannot serve
    └── ApiError                   an error answered to a REST client as google.rpc.Status

Bad settings raise ``services.runtime.ConfigError`` (one line naming the variable), the same
error every service process reports.
"""

from __future__ import annotations

__all__ = ["GatewayError"]


class GatewayError(Exception):
    """Root of every error the gateway raises."""
