"""The AuditService gRPC adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.struct_pb2 import Struct

from services.common.pages import position_token
from services.common.timestamps import from_timestamp, to_timestamp
from services.runtime import page_size
from shop.audit.v1 import audit_pb2, audit_pb2_grpc

if TYPE_CHECKING:
    from services.audit.store import AuditStore, StoredRecord

__all__ = ["AuditServicer", "audit_message"]

DEFAULT_PAGE_SIZE = 100


def audit_message(stored: StoredRecord) -> Any:
    record = stored.record
    data = Struct()
    data.update(record.data)
    return audit_pb2.AuditEvent(
        event_id=record.event_id,
        type=record.type,
        source=record.source,
        subject=record.subject,
        time=to_timestamp(record.time),
        record_time=to_timestamp(stored.recorded_at),
        trace_id=record.trace_id,
        data=data,
        data_schema=record.data_schema,
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def QueryAudit(self, request: Any, _context: Any) -> Any:  # noqa: N802
        size = page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=1000)
        found = await self._store.query(
            subject=request.subject,
            event_type=request.type,
            start=from_timestamp(request.start_time) if request.HasField("start_time") else None,
            end=from_timestamp(request.end_time) if request.HasField("end_time") else None,
            page_token=request.page_token,
            limit=size + 1,
        )
        page = found[:size]
        token = ""
        if len(found) > size:
            last = page[-1].record
            token = position_token(last.time, last.event_id)
        return audit_pb2.QueryAuditResponse(
            events=[audit_message(s) for s in page], next_page_token=token
        )
