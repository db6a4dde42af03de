"""How an event becomes an audit record (no I/O)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.event import Event

__all__ = ["AuditRecord", "jsonable", "record_of", "trace_id_of"]

_TRACEPARENT_PARTS = 4
_TRACE_ID_LEN = 32


@dataclass(frozen=True, slots=True)
class AuditRecord:
    event_id: str
    type: str
    source: str
    subject: str
    time: datetime
    trace_id: str
    data: dict[str, Any]
    data_schema: str


def trace_id_of(traceparent: str | None) -> str:
    """The trace id of a W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``), or ``""``."""
    if not traceparent:
        return ""
    parts = traceparent.strip().split("-")
    if len(parts) != _TRACEPARENT_PARTS or len(parts[1]) != _TRACE_ID_LEN:
        return ""
    return parts[1].lower()


def jsonable(value: Any) -> Any:
    """A decoded Avro value as JSON: times as ISO 8601 strings, bytes as base64."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def record_of(event: Event) -> AuditRecord:
    """The audit record of ``event`` as received."""
    return AuditRecord(
        event_id=event.id,
        type=event.type,
        source=event.source,
        subject=event.subject or "",
        time=event.time,
        trace_id=trace_id_of(event.extensions.get("traceparent")),
        data=jsonable(event.data),
        data_schema=event.dataschema or "",
    )
