"""Inventory's database: products, reservations and stock adjustments, with their events
written to the outbox in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from services.common.timestamps import as_utc, utcnow
from services.inventory.domain import Line, crossed_low, shortage, sorted_lines, unknown_product
from services.runtime import AlreadyExists, FailedPrecondition, NotFound, PreconditionViolation

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from broker import Broker
    from broker.outbox import Outbox, OutboxRelay

__all__ = ["RELEASED", "RESERVED", "InventoryStore", "Product", "Reservation", "metadata"]

RESERVED = "RESERVED"
RELEASED = "RELEASED"

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", String(2000), nullable=False, default=""),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, default=0),
    Column("low_threshold", Integer, nullable=False, default=0),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("lines", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

adjustments = Table(
    "stock_adjustments",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("delta", Integer, nullable=False),
    Column("reason", String(256), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


# The statements a reservation runs, built once with their values bound at execution (as in
# services/orders/store.py; docs/services.md says why). Bindparams are named apart from the
# columns (``b_*``), whose names are reserved for the SET and VALUES clauses.
_INSERT_RESERVATION = reservations.insert()
_GET_RESERVATION = select(reservations).where(reservations.c.order_id == bindparam("b_order_id"))
_SET_RESERVED_LINES = update(reservations).where(reservations.c.order_id == bindparam("b_order_id"))
_RELEASE = update(reservations).where(
    reservations.c.order_id == bindparam("b_order_id"), reservations.c.status == RESERVED
)
_PUT_BACK = (
    update(products)
    .where(products.c.sku == bindparam("b_sku"))
    .values(
        available=products.c.available + bindparam("b_quantity"),
        reserved=products.c.reserved - bindparam("b_quantity"),
        updated_at=bindparam("b_now"),
    )
)
_TAKE = (
    update(products)
    .where(products.c.sku == bindparam("b_sku"), products.c.available >= bindparam("b_quantity"))
    .values(
        available=products.c.available - bindparam("b_quantity"),
        reserved=products.c.reserved + bindparam("b_quantity"),
        updated_at=bindparam("b_now"),
    )
    .returning(
        products.c.available,
        products.c.low_threshold,
        products.c.price_minor,
        products.c.currency,
    )
)


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    description: str
    price_minor: int
    currency: str
    available: int
    reserved: int
    low_threshold: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReservedLine:
    sku: str
    quantity: int
    unit_price_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Reservation:
    order_id: str
    status: str
    lines: tuple[ReservedLine, ...]
    created_at: datetime
    updated_at: datetime


def _product(m: RowMapping) -> Product:
    return Product(
        sku=m["sku"],
        name=m["name"],
        description=m["description"],
        price_minor=m["price_minor"],
        currency=m["currency"],
        available=m["available"],
        reserved=m["reserved"],
        low_threshold=m["low_threshold"],
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
    )


def _reservation(m: RowMapping) -> Reservation:
    return Reservation(
        order_id=m["order_id"],
        status=m["status"],
        lines=tuple(ReservedLine(**line) for line in m["lines"]),
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
    )


class InventoryStore:
    """Every inventory state change, each in one transaction with the events it causes."""

    def __init__(
        self, engine: AsyncEngine, broker: Broker, outbox: Outbox, relay: OutboxRelay
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._outbox = outbox
        self._relay = relay

    # -- products ------------------------------------------------------------------------

    async def create_product(
        self,
        *,
        idempotency_key: str,
        sku: str,
        name: str,
        description: str,
        price_minor: int,
        currency: str,
        quantity: int,
        low_threshold: int,
    ) -> Product:
        """Add a product; the same key returns the product created first."""
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    products.insert().values(
                        sku=sku,
                        name=name,
                        description=description,
                        price_minor=price_minor,
                        currency=currency,
                        available=quantity,
                        reserved=0,
                        low_threshold=low_threshold,
                        idempotency_key=idempotency_key,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            async with self._engine.connect() as conn:
                row = (
                    (
                        await conn.execute(
                            select(products).where(products.c.idempotency_key == idempotency_key)
                        )
                    )
                    .mappings()
                    .first()
                )
            if row is None:
                raise AlreadyExists("product", sku) from None
            return _product(row)
        return await self.get_product(sku)

    async def get_product(self, sku: str) -> Product:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(select(products).where(products.c.sku == sku)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("product", sku)
        return _product(row)

    async def list_products(
        self, *, low_stock_only: bool, after_sku: str | None, limit: int
    ) -> list[Product]:
        """Products in SKU order after ``after_sku`` (a keyset page)."""
        query = select(products).order_by(products.c.sku).limit(limit)
        if after_sku is not None:
            query = query.where(products.c.sku > after_sku)
        if low_stock_only:
            query = query.where(products.c.available <= products.c.low_threshold)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_product(row) for row in rows]

    async def adjust_stock(
        self, *, sku: str, delta: int, reason: str, idempotency_key: str
    ) -> Product:
        """Add or remove available units once per key; never below zero available."""
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    adjustments.insert().values(
                        idempotency_key=idempotency_key,
                        sku=sku,
                        delta=delta,
                        reason=reason,
                        applied_at=now,
                    )
                )
                row = (
                    await conn.execute(
                        update(products)
                        .where(products.c.sku == sku, products.c.available + delta >= 0)
                        .values(available=products.c.available + delta, updated_at=now)
                        .returning(products.c.available, products.c.low_threshold)
                    )
                ).first()
                if row is None:
                    current = await self._available(conn, sku)
                    if current is None:
                        raise NotFound("product", sku)
                    violation = shortage(Line(sku, -delta), current)
                    raise FailedPrecondition([violation])
                await self._maybe_low(conn, sku, row.available - delta, row.available, row[1])
        except IntegrityError:
            pass  # the key was used before: the adjustment is already applied
        self._relay.notify()
        return await self.get_product(sku)

    # -- reservations --------------------------------------------------------------------

    async def get_reservation(self, order_id: str) -> Reservation | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(_GET_RESERVATION, {"b_order_id": order_id})
            row = result.mappings().first()
        return None if row is None else _reservation(row)

    async def reserve(self, order_id: str, lines: list[Line]) -> Reservation:
        """Reserve every line or none; a repeated call for ``order_id`` returns the first
        reservation. Raises FailedPrecondition with one violation per short or unknown SKU."""
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                # The row first: a concurrent call for the same order waits on its key, and a
                # repeated one fails on it (the first reservation is then read below), so a
                # first call does not pay a read of its own.
                await conn.execute(
                    _INSERT_RESERVATION,
                    {
                        "order_id": order_id,
                        "status": RESERVED,
                        "lines": [],
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                taken = await self._take(conn, lines, now)
                await conn.execute(
                    _SET_RESERVED_LINES,
                    {"b_order_id": order_id, "lines": [_line_json(line) for line in taken]},
                )
                await self._outbox.add(
                    conn,
                    self._broker.event(
                        "shop.inventory.v1.StockReserved",
                        {
                            "order_id": order_id,
                            "reservation_id": order_id,
                            "lines": [{"sku": t.sku, "quantity": t.quantity} for t in taken],
                            "reserved_at": now,
                        },
                        subject=order_id,
                    ),
                )
        except IntegrityError:
            existing = await self.get_reservation(order_id)
            if existing is None:
                raise
            return existing
        self._relay.notify()
        # What was just committed, without reading it back (a third transaction per order).
        return Reservation(
            order_id=order_id, status=RESERVED, lines=tuple(taken), created_at=now, updated_at=now
        )

    async def _take(
        self, conn: AsyncConnection, lines: list[Line], now: datetime
    ) -> list[ReservedLine]:
        taken: list[ReservedLine] = []
        violations: list[PreconditionViolation] = []
        for line in sorted_lines(lines):
            taking = {"b_sku": line.sku, "b_quantity": line.quantity, "b_now": now}
            row = (await conn.execute(_TAKE, taking)).first()
            if row is None:
                current = await self._available(conn, line.sku)
                violations.append(
                    unknown_product(line.sku) if current is None else shortage(line, current)
                )
                continue
            available, threshold, price, currency = row
            taken.append(ReservedLine(line.sku, line.quantity, price, currency))
            await self._maybe_low(conn, line.sku, available + line.quantity, available, threshold)
        if violations:
            # Raised inside the transaction: the lines already taken are rolled back.
            raise FailedPrecondition(violations)
        return taken

    async def release(self, order_id: str, reason: str) -> Reservation:
        """Return a reservation's units to the shelf, once; later calls return it unchanged."""
        now = utcnow()
        async with self._engine.begin() as conn:
            result = await conn.execute(_GET_RESERVATION, {"b_order_id": order_id})
            row = result.mappings().first()
            if row is None:
                raise NotFound("reservation", order_id)
            reservation = _reservation(row)
            # Conditional: of two concurrent releases only one changes the status.
            changed = await conn.execute(
                _RELEASE, {"b_order_id": order_id, "status": RELEASED, "updated_at": now}
            )
            if changed.rowcount != 1:
                # Released before, or by a concurrent call that won the row: as it is now.
                result = await conn.execute(_GET_RESERVATION, {"b_order_id": order_id})
                return _reservation(result.mappings().one())
            for line in sorted(reservation.lines, key=lambda item: item.sku):
                await conn.execute(
                    _PUT_BACK, {"b_sku": line.sku, "b_quantity": line.quantity, "b_now": now}
                )
            await self._outbox.add(
                conn,
                self._broker.event(
                    "shop.inventory.v1.StockReleased",
                    {
                        "order_id": order_id,
                        "reservation_id": order_id,
                        "lines": [
                            {"sku": t.sku, "quantity": t.quantity} for t in reservation.lines
                        ],
                        "reason": reason,
                        "released_at": now,
                    },
                    subject=order_id,
                ),
            )
        self._relay.notify()
        # What was just committed, without reading it back.
        return replace(reservation, status=RELEASED, updated_at=now)

    # -- helpers -------------------------------------------------------------------------

    async def _available(self, conn: AsyncConnection, sku: str) -> int | None:
        query = select(products.c.available).where(products.c.sku == sku)
        value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else int(value)

    async def _maybe_low(
        self, conn: AsyncConnection, sku: str, before: int, after: int, threshold: int
    ) -> None:
        if crossed_low(before, after, threshold):
            await self._outbox.add(
                conn,
                self._broker.event(
                    "shop.inventory.v1.StockLow",
                    {"sku": sku, "available": after, "threshold": threshold, "at": utcnow()},
                    subject=sku,
                ),
            )


def _line_json(line: ReservedLine) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "quantity": line.quantity,
        "unit_price_minor": line.unit_price_minor,
        "currency": line.currency,
    }
