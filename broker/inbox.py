"""Inbox: a consumer records each processed event id in the same transaction as the effect,
so a redelivered event (at-least-once delivery) has no second effect.

::

    inbox = Inbox(inbox_table(metadata), consumer="payments")

    async def on_order_placed(event: Event) -> None:
        async with engine.begin() as conn:
            if not await inbox.record(conn, event.id):
                return                      # already handled: the redelivery is dropped
            await conn.execute(...)         # the effect, committed together with the id

or, equivalently, ``broker.subscribe(..., idempotent(engine, inbox, handler))`` where
``handler(event, conn)`` runs inside that transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, String, Table
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlalchemy.sql.dml import Insert

    from broker.event import Event

__all__ = ["Inbox", "idempotent", "inbox_table"]


def inbox_table(metadata: MetaData, name: str = "inbox") -> Table:
    """The inbox table, added to the service's own ``metadata``."""
    return Table(
        name,
        metadata,
        Column("consumer", String(100), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(255), nullable=False, default=""),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


class Inbox:
    """Processed event ids of one consumer."""

    def __init__(self, table: Table, consumer: str) -> None:
        self.table = table
        self.consumer = consumer
        # Built once per dialect, the values bound at execution: a statement made anew with
        # ``.values(...)`` for every event costs SQLAlchemy more than the insert itself.
        self._inserts: dict[str, Insert] = {}

    async def record(self, conn: AsyncConnection, event_id: str, event_type: str = "") -> bool:
        """Insert ``event_id`` in ``conn``'s transaction; False if it was already there."""
        values = {
            "consumer": self.consumer,
            "event_id": event_id,
            "event_type": event_type,
            "processed_at": datetime.now(UTC),
        }
        dialect = conn.dialect.name
        statement = self._inserts.get(dialect)
        if statement is None:
            statement = self._inserts[dialect] = self._insert(dialect)
        result = await conn.execute(statement, values)
        return bool(result.rowcount == 1)

    def _insert(self, dialect: str) -> Insert:
        if dialect == "postgresql":
            return postgresql.insert(self.table).on_conflict_do_nothing()
        if dialect == "sqlite":
            return sqlite.insert(self.table).on_conflict_do_nothing()
        return self.table.insert()  # pragma: no cover - other databases: conflicts raise


def idempotent(
    engine: AsyncEngine,
    inbox: Inbox,
    handler: Callable[[Event, AsyncConnection], Awaitable[None]],
) -> Callable[[Event], Awaitable[None]]:
    """Wrap ``handler(event, conn)`` so it runs once per event id, in one transaction with the
    inbox record. A handler exception rolls both back, so the retry runs it again."""

    async def run(event: Event) -> None:
        async with engine.begin() as conn:
            if await inbox.record(conn, event.id, event.type):
                await handler(event, conn)

    run.__name__ = getattr(handler, "__name__", "idempotent_handler")
    return run
