"""TLS settings shared by the transports, from the broker URL's options."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ssl_context"]


def ssl_context(options: Mapping[str, str]) -> ssl.SSLContext:
    """A verifying client context: ``cafile`` (a CA bundle; default: the system's),
    ``certfile``/``keyfile`` (client certificate), ``verify=false`` (tests only)."""
    context = ssl.create_default_context(cafile=options.get("cafile"))
    if options.get("certfile"):
        context.load_cert_chain(options["certfile"], options.get("keyfile"))
    if options.get("verify", "true").lower() in {"false", "0", "no"}:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
