"""Opaque page tokens and page sizes for every List RPC (``page_size`` / ``page_token``).

A token is the URL-safe base64 of a small JSON object holding the position after the last
item returned (a keyset cursor, e.g. ``{"t": "2026-01-01T00:00:00Z", "id": "..."}``), so pages
stay stable while rows are inserted. Clients treat it as opaque; a token that does not decode
is a client error (INVALID_ARGUMENT on ``page_token``), never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["DEFAULT_PAGE_SIZE", "decode_page_token", "encode_page_token", "page_size"]

DEFAULT_PAGE_SIZE = 50


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = 500) -> int:
    """The page size to use: ``default`` for 0, at most ``maximum`` (the contract's bound)."""
    if requested < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative", "page_size")])
    return min(requested or default, maximum)


def encode_page_token(position: dict[str, Any]) -> str:
    """An opaque token for the position after the last item of this page."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> dict[str, Any] | None:
    """The position a token holds; None for an empty token (the first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        position = None
    if not isinstance(position, dict):
        violation = FieldViolation("page_token", "is not a token this service issued", "page_token")
        raise InvalidArgument([violation])
    return position
