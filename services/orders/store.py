"""Orders' database: the event store (source of truth), the summaries read model projected
from it in the same transaction, the idempotency keys of CreateOrder, and the open stock
reservations (asked of inventory, not yet owned by a stored order)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    select,
    update,
)

from services.common.pages import after_position
from services.common.timestamps import as_utc
from services.orders.domain import DomainEvent, Order, apply, fold

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "append",
    "claim_reservation",
    "claim_stale_reservations",
    "close_reservation",
    "find_by_key",
    "forget_reservation",
    "list_summaries",
    "load",
    "metadata",
    "open_reservation",
    "rebuild_read_model",
    "remember_key",
]

metadata = MetaData()

order_events = Table(
    "order_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # Two writers appending to one order: the second fails here instead of forking history.
    UniqueConstraint("order_id", "version"),
)

order_summaries = Table(
    "order_summaries",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_summaries_customer_created", "customer_id", "created_at"),
)

idempotency_keys = Table(
    "order_idempotency_keys",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("order_id", String(36), nullable=False),
)

open_reservations = Table(
    "order_open_reservations",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    # Set by the sweeper before it releases: from then on the order can no longer be stored.
    Column("releasing", Boolean, nullable=False, default=False),
    Index("ix_open_reservations_opened", "opened_at"),
)


def _event(m: RowMapping) -> DomainEvent:
    return DomainEvent(m["type"], dict(m["data"]), as_utc(m["at"]))


# The statements an order's requests and events run, built once with their values bound at
# execution: made anew per call, SQLAlchemy builds and keys each one again, which on the
# services' short transactions costs more than the database does (docs/services.md). A
# bindparam is named apart from the columns (``b_*``): the column names are reserved for the
# SET and VALUES clauses.
_APPEND_EVENTS = order_events.insert()
_INSERT_SUMMARY = order_summaries.insert()
_REMEMBER_KEY = idempotency_keys.insert()
_OPEN_RESERVATION = open_reservations.insert()
_LOAD = (
    select(order_events)
    .where(order_events.c.order_id == bindparam("b_order_id"))
    .order_by(order_events.c.version)
)
_UPDATE_SUMMARY = update(order_summaries).where(
    order_summaries.c.order_id == bindparam("b_order_id")
)
_FIND_KEY = select(idempotency_keys.c.order_id).where(
    idempotency_keys.c.idempotency_key == bindparam("b_key")
)
_CLOSE_RESERVATION = delete(open_reservations).where(
    open_reservations.c.order_id == bindparam("b_order_id"),
    open_reservations.c.releasing.is_(False),
)
_CLAIM_RESERVATION = (
    update(open_reservations)
    .where(open_reservations.c.order_id == bindparam("b_order_id"))
    .values(releasing=True)
)
_FORGET_RESERVATION = delete(open_reservations).where(
    open_reservations.c.order_id == bindparam("b_order_id")
)


async def load(conn: AsyncConnection, order_id: str) -> Order | None:
    """The order rebuilt from its events (None if it has none)."""
    rows = (await conn.execute(_LOAD, {"b_order_id": order_id})).mappings().all()
    return fold(order_id, (_event(row) for row in rows))


async def append(conn: AsyncConnection, order: Order, events: Iterable[DomainEvent]) -> Order:
    """Store ``events`` after ``order``'s version and project the read model; return the new
    state. A concurrent append raises IntegrityError on (order_id, version)."""
    new = list(events)
    if not new:
        return order
    await conn.execute(
        _APPEND_EVENTS,
        [
            {
                "order_id": order.order_id,
                "version": order.version + index,
                "type": event.type,
                "data": event.data,
                "at": event.at,
            }
            for index, event in enumerate(new, start=1)
        ],
    )
    state = order
    for event in new:
        state = apply(state, event)
    await project(conn, state, created=order.version == 0)
    return state


async def project(conn: AsyncConnection, order: Order, *, created: bool) -> None:
    """Write ``order``'s row of the summaries read model."""
    values = _summary(order)
    if created:
        await conn.execute(_INSERT_SUMMARY, values)
    else:
        values["b_order_id"] = values.pop("order_id")
        await conn.execute(_UPDATE_SUMMARY, values)


def _summary(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status,
        "total_minor": order.total_minor,
        "currency": order.currency,
        "item_count": order.item_count,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


async def rebuild_read_model(engine: AsyncEngine) -> int:
    """Drop every summary and project them again from the events; return how many orders."""
    async with engine.begin() as conn:
        await conn.execute(delete(order_summaries))
        query = select(order_events).order_by(order_events.c.order_id, order_events.c.version)
        rows = (await conn.execute(query)).mappings().all()
        by_order: dict[str, list[DomainEvent]] = {}
        for row in rows:
            by_order.setdefault(row["order_id"], []).append(_event(row))
        summaries = []
        for order_id, events in by_order.items():
            order = fold(order_id, events)
            if order is not None:
                summaries.append(_summary(order))
        if summaries:
            await conn.execute(_INSERT_SUMMARY, summaries)
    return len(summaries)


async def find_by_key(conn: AsyncConnection, key: str) -> str | None:
    value = (await conn.execute(_FIND_KEY, {"b_key": key})).scalar_one_or_none()
    return None if value is None else str(value)


async def remember_key(conn: AsyncConnection, key: str, order_id: str) -> None:
    """Bind ``key`` to ``order_id``; IntegrityError if a concurrent call bound it first."""
    await conn.execute(_REMEMBER_KEY, {"idempotency_key": key, "order_id": order_id})


async def list_summaries(
    conn: AsyncConnection, *, customer_id: str, status: str | None, page_token: str, limit: int
) -> list[RowMapping]:
    """Summaries newest first, filtered, after ``page_token``'s position."""
    query: Any = select(order_summaries).limit(limit)
    if customer_id:
        query = query.where(order_summaries.c.customer_id == customer_id)
    if status is not None:
        query = query.where(order_summaries.c.status == status)
    query = after_position(
        query,
        page_token,
        order_summaries.c.created_at,
        order_summaries.c.order_id,
        newest_first=True,
    )
    return list((await conn.execute(query)).mappings().all())


async def open_reservation(conn: AsyncConnection, order_id: str, at: datetime) -> None:
    """Record that a reservation for ``order_id`` is about to be asked of inventory."""
    await conn.execute(_OPEN_RESERVATION, {"order_id": order_id, "opened_at": at})


async def close_reservation(conn: AsyncConnection, order_id: str) -> bool:
    """In the transaction storing the order: the reservation is the order's now. False when
    the sweeper has claimed it (its stock is being released: the order must not be stored)."""
    closed = await conn.execute(_CLOSE_RESERVATION, {"b_order_id": order_id})
    return bool(closed.rowcount == 1)


async def claim_reservation(conn: AsyncConnection, order_id: str) -> bool:
    """Mark one reservation as being released, so its order can no longer be stored; False
    when it is not open (its order was stored, or it was forgotten)."""
    claimed = await conn.execute(_CLAIM_RESERVATION, {"b_order_id": order_id})
    return bool(claimed.rowcount == 1)


async def forget_reservation(conn: AsyncConnection, order_id: str) -> None:
    """The reservation was released (or never made): nothing left to sweep."""
    await conn.execute(_FORGET_RESERVATION, {"b_order_id": order_id})


async def claim_stale_reservations(
    conn: AsyncConnection, opened_before: datetime, limit: int
) -> list[str]:
    """Order ids of reservations opened before ``opened_before`` and still open (claimed ones
    included: their release failed before), marked so no order can take them any more. Only
    rows this statement updated are returned: one that an order took meanwhile is not."""
    stale = (
        select(open_reservations.c.order_id)
        .where(open_reservations.c.opened_at < opened_before)
        .order_by(open_reservations.c.opened_at)
        .limit(limit)
        .scalar_subquery()
    )
    claimed = await conn.execute(
        update(open_reservations)
        .where(open_reservations.c.order_id.in_(stale))
        .values(releasing=True)
        .returning(open_reservations.c.order_id)
    )
    return [str(order_id) for (order_id,) in claimed]
