"""Options and helpers shared by the broker-facing commands."""

from __future__ import annotations

import asyncio
import json
import os
from base64 import b64encode
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from broker import Broker

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

__all__ = ["DEFAULT_BROKER_URL", "add_broker_option", "connect", "run", "to_json"]

DEFAULT_BROKER_URL = "stomp://127.0.0.1:61613"
"""The local ActiveMQ that ``shopmq up`` starts; override with BROKER_URL or --broker."""


def add_broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        default=os.environ.get("BROKER_URL", DEFAULT_BROKER_URL),
        metavar="URL",
        help="broker URL (default: $BROKER_URL, else %(default)s)",
    )


def connect(url: str) -> Broker:
    return Broker(url, source="//shopmq/cli", name="shopmq-cli", connect_timeout=5.0)


def run(coroutine: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coroutine)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return b64encode(value).decode()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def to_json(value: Any) -> str:
    """JSON for decoded Avro records (timestamps ISO 8601, bytes base64, decimals as text)."""
    return json.dumps(value, default=_default, ensure_ascii=False, sort_keys=True)
