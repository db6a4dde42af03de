"""The services' clock and its conversions: every stored time is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["as_utc", "from_timestamp", "to_timestamp", "utcnow"]


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_timestamp(value: datetime) -> Timestamp:
    """A protobuf ``Timestamp`` for ``value``."""
    stamp = Timestamp()
    stamp.FromDatetime(as_utc(value))
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    """An aware UTC datetime for a protobuf ``Timestamp``."""
    return stamp.ToDatetime(tzinfo=UTC)
