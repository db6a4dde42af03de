"""Payments' database: one payment per order, and per-order cancellation marks."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from services.common.pages import after_position
from services.common.timestamps import as_utc
from services.runtime import NotFound

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "AUTHORIZED",
    "DECLINED",
    "REFUNDED",
    "Payment",
    "PaymentStore",
    "metadata",
]

AUTHORIZED = "AUTHORIZED"
DECLINED = "DECLINED"
REFUNDED = "REFUNDED"

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, unique=True),
    Column("customer_id", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decline_reason", String(256), nullable=False, default=""),
    Column("payment_method_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_payments_created", "created_at", "payment_id"),
)

order_marks = Table(
    "payment_orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("cancelled", Boolean, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    order_id: str
    customer_id: str
    amount_minor: int
    currency: str
    status: str
    decline_reason: str
    created_at: datetime
    updated_at: datetime


def _payment(m: RowMapping) -> Payment:
    return Payment(
        payment_id=m["payment_id"],
        order_id=m["order_id"],
        customer_id=m["customer_id"],
        amount_minor=m["amount_minor"],
        currency=m["currency"],
        status=m["status"],
        decline_reason=m["decline_reason"],
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
    )


# The statements an order's events run, built once with their values bound at execution
# (docs/services.md); a bindparam is named apart from the columns (``b_*``).
_BY_ORDER = select(payments).where(payments.c.order_id == bindparam("b_order_id"))
_BY_ID = select(payments).where(payments.c.payment_id == bindparam("b_payment_id"))
_INSERT = payments.insert()
_REFUND = update(payments).where(
    payments.c.payment_id == bindparam("b_payment_id"), payments.c.status == AUTHORIZED
)


@functools.cache
def _marking(dialect: str) -> Any:
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(order_marks)
    # Once cancelled, an order stays cancelled whatever is marked after.
    cancelled = or_(order_marks.c.cancelled, insert.excluded.cancelled)
    return insert.on_conflict_do_update(
        index_elements=[order_marks.c.order_id], set_={"cancelled": cancelled}
    ).returning(order_marks.c.cancelled)


async def mark_order(conn: AsyncConnection, order_id: str, *, cancelled: bool) -> bool:
    """Record that payments has seen ``order_id`` (and whether it is cancelled); return
    whether it is cancelled. The row lock serializes the OrderPlaced and OrderCancelled
    handlers of one order, so a cancellation cannot slip between deciding and storing."""
    marked = await conn.execute(
        _marking(conn.dialect.name), {"order_id": order_id, "cancelled": cancelled}
    )
    return bool(marked.scalar_one())


async def payment_of_order(conn: AsyncConnection, order_id: str) -> Payment | None:
    row = (await conn.execute(_BY_ORDER, {"b_order_id": order_id})).mappings().first()
    return None if row is None else _payment(row)


async def insert_payment(conn: AsyncConnection, payment: Payment, payment_method_id: str) -> None:
    await conn.execute(
        _INSERT,
        {
            "payment_id": payment.payment_id,
            "order_id": payment.order_id,
            "customer_id": payment.customer_id,
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
            "status": payment.status,
            "decline_reason": payment.decline_reason,
            "payment_method_id": payment_method_id,
            "created_at": payment.created_at,
            "updated_at": payment.updated_at,
        },
    )


async def mark_refunded(conn: AsyncConnection, payment_id: str, at: datetime) -> bool:
    """AUTHORIZED -> REFUNDED; False if the payment was not authorized."""
    result = await conn.execute(
        _REFUND, {"b_payment_id": payment_id, "status": REFUNDED, "updated_at": at}
    )
    return bool(result.rowcount == 1)


class PaymentStore:
    """Reads for the gRPC API."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, payment_id: str) -> Payment:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_BY_ID, {"b_payment_id": payment_id})).mappings().first()
        if row is None:
            raise NotFound("payment", payment_id)
        return _payment(row)

    async def list(
        self,
        *,
        order_id: str,
        customer_id: str,
        status: str | None,
        page_token: str,
        limit: int,
    ) -> list[Payment]:
        """Newest first, filtered, after ``page_token``'s position."""
        query: Any = select(payments).limit(limit)
        if order_id:
            query = query.where(payments.c.order_id == order_id)
        if customer_id:
            query = query.where(payments.c.customer_id == customer_id)
        if status is not None:
            query = query.where(payments.c.status == status)
        query = after_position(
            query, page_token, payments.c.created_at, payments.c.payment_id, newest_first=True
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_payment(row) for row in rows]
