"""Audit's database: the append-only trail (rows are only ever inserted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, DateTime, Index, MetaData, String, Table, select

from services.audit.domain import AuditRecord
from services.common.pages import after_position
from services.common.store import insert_ignore
from services.common.timestamps import as_utc, utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["AuditStore", "StoredRecord", "append", "metadata"]

metadata = MetaData()

trail = Table(
    "audit_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(255), nullable=False),
    Column("source", String(255), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("data_schema", String(255), nullable=False),
    Index("ix_audit_subject_time", "subject", "time"),
    Index("ix_audit_time", "time", "event_id"),
)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    record: AuditRecord
    recorded_at: datetime


async def append(conn: AsyncConnection, record: AuditRecord) -> bool:
    """Add ``record`` to the trail; False if its event id is there already (a redelivery)."""
    return await insert_ignore(
        conn,
        trail,
        {
            "event_id": record.event_id,
            "type": record.type,
            "source": record.source,
            "subject": record.subject,
            "time": record.time,
            "recorded_at": utcnow(),
            "trace_id": record.trace_id,
            "data": record.data,
            "data_schema": record.data_schema,
        },
    )


class AuditStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, record: AuditRecord) -> bool:
        async with self._engine.begin() as conn:
            return await append(conn, record)

    async def query(
        self,
        *,
        subject: str,
        event_type: str,
        start: datetime | None,
        end: datetime | None,
        page_token: str,
        limit: int,
    ) -> list[StoredRecord]:
        """Oldest first, filtered, after ``page_token``'s position."""
        query: Any = select(trail).limit(limit)
        if subject:
            query = query.where(trail.c.subject == subject)
        if event_type:
            query = query.where(trail.c.type == event_type)
        if start is not None:
            query = query.where(trail.c.time >= start)
        if end is not None:
            query = query.where(trail.c.time < end)
        query = after_position(
            query, page_token, trail.c.time, trail.c.event_id, newest_first=False
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            StoredRecord(
                record=AuditRecord(
                    event_id=row["event_id"],
                    type=row["type"],
                    source=row["source"],
                    subject=row["subject"],
                    time=as_utc(row["time"]),
                    trace_id=row["trace_id"],
                    data=row["data"],
                    data_schema=row["data_schema"],
                ),
                recorded_at=as_utc(row["recorded_at"]),
            )
            for row in rows
        ]
