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

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, String, Table
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlalchemy.sql.dml import Insert

    from broker.event import Event

__all__ = ["Inbox", "idempotent", "inbox_table", "insert_ignore"]


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

    async def record(self, conn: AsyncConnection, event_id: str, event_type: str = "") -> bool:
        """Insert ``event_id`` in ``conn``'s transaction; False if it was already there."""
        values = {
            "consumer": self.consumer,
            "event_id": event_id,
            "event_type": event_type,
            "processed_at": datetime.now(UTC),
        }
        return await insert_ignore(conn, self.table, values)


async def insert_ignore(conn: AsyncConnection, table: Table, values: Mapping[str, Any]) -> bool:
    """Insert a row unless one with the same unique key exists; whether it was inserted.

    The inbox's own insert, for stores that deduplicate the same way (PostgreSQL and SQLite:
    ``ON CONFLICT DO NOTHING``). Unlike catching IntegrityError, this keeps the surrounding
    transaction usable: "already there" is an answer, not an error."""
    result = await conn.execute(_insert_ignoring(conn.dialect.name, table), dict(values))
    return bool(result.rowcount == 1)


@functools.cache
def _insert_ignoring(dialect: str, table: Table) -> Insert:
    # One statement object per table and dialect, its values bound at execution: SQLAlchemy
    # then finds the compiled form by the statement's memoized cache key, where building
    # ``.values(...)`` anew for every row cost more than the database's own work on SQLite.
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return table.insert()  # pragma: no cover - other databases: a conflict raises


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
