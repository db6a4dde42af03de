"""The event a service publishes and a handler receives: CloudEvents 1.0 attributes + data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["EncodedEvent", "Event"]

SPECVERSION = "1.0"
AVRO_CONTENT_TYPE = "application/avro"


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One CloudEvent whose ``data`` is an Avro record.

    ``type`` is the Avro full name of the record's schema (``shop.orders.v1.OrderPlaced``); it is
    also the routing key / topic. ``id`` is the deduplication key consumers store in their inbox.
    """

    type: str
    data: dict[str, Any]
    source: str
    subject: str | None = None
    id: str = field(default_factory=_new_id)
    time: datetime = field(default_factory=_now)
    dataschema: str | None = None
    datacontenttype: str = AVRO_CONTENT_TYPE
    extensions: dict[str, str] = field(default_factory=dict)
    """Extra headers that travelled with the event (trace context, retry bookkeeping)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EncodedEvent:
    """An event validated and encoded for the wire: what the outbox stores and the relay sends.

    ``attributes`` are the CloudEvents attributes; ``headers`` other headers to send (trace
    context is injected at publish time, not stored here)."""

    type: str
    body: bytes
    attributes: dict[str, str]
    headers: dict[str, str]
    content_type: str = AVRO_CONTENT_TYPE
