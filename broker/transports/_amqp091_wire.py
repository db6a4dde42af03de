"""The AMQP 0-9-1 binding of CloudEvents: attributes as ``cloudEvents:<attr>`` headers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CE_PREFIX", "from_wire", "timestamp", "to_wire"]

CE_PREFIX = "cloudEvents:"
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")
"""RabbitMQ's own bookkeeping (dead-lettering through retry queues, quorum redeliveries):
not event headers, and not to be copied onto retried or dead-lettered copies."""


def to_wire(attributes: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, Any]:
    """CloudEvents attributes under the AMQP binding's ``cloudEvents:`` prefix, plus headers."""
    wire: dict[str, Any] = {CE_PREFIX + k: v for k, v in attributes.items()}
    wire.update(headers)
    return wire


def timestamp(time: str | None) -> datetime | None:
    """The AMQP ``timestamp`` property from the CloudEvents ``time`` attribute."""
    try:
        return datetime.fromisoformat(time) if time else None
    except ValueError:
        return None


def from_wire(raw: Mapping[str, Any] | None) -> tuple[dict[str, str], dict[str, str]]:
    """Headers as received, split into CloudEvents attributes and other headers (as text)."""
    attributes: dict[str, str] = {}
    headers: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if key.startswith(_BROKER_HEADERS):
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if key.startswith(CE_PREFIX):
            attributes[key[len(CE_PREFIX) :]] = text
        else:
            headers[key] = text
    return attributes, headers
