"""The orders application layer: each use case loads the order from its events, decides with
the domain, and appends the new events + read model + outbox rows in one transaction."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from services.common.timestamps import utcnow
from services.orders import store
from services.orders.domain import (
    CANCELLED,
    PENDING,
    TERMINAL,
    DomainEvent,
    Line,
    Order,
    authorize,
    cancel,
    decline,
    place,
)
from services.runtime import (
    Aborted,
    FailedPrecondition,
    NotFound,
    PreconditionViolation,
    get_logger,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from broker import Broker
    from broker.event import Event
    from broker.inbox import Inbox
    from broker.outbox import Outbox, OutboxRelay
    from services.orders.inventory_client import InventoryClient
    from services.orders.notifier import ChangeNotifier

__all__ = ["OrderService"]

_log = get_logger("services.orders.service")
WATCH_POLL = 1.0
"""Seconds between WatchOrder's reloads when no in-process change woke it."""


class OrderService:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: Broker,
        outbox: Outbox,
        relay: OutboxRelay,
        inbox: Inbox,
        inventory: InventoryClient,
        notifier: ChangeNotifier,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._outbox = outbox
        self._relay = relay
        self._inbox = inbox
        self._inventory = inventory
        self._notifier = notifier

    # -- commands ------------------------------------------------------------------------

    async def create(
        self,
        *,
        idempotency_key: str,
        customer_id: str,
        lines: Iterable[tuple[str, int]],
        payment_method_id: str,
    ) -> Order:
        """Reserve stock, then store the order and OrderPlaced together. The same key returns
        the first order; a failed reservation leaves no order behind.

        The reservation is recorded as open before inventory is asked, and closed in the
        transaction that stores the order. One left open (the release after a failure failed
        too, the reservation committed after its deadline, or this process died in between)
        is released by :class:`~services.orders.sweeper.ReservationSweeper`."""
        async with self._engine.connect() as conn:
            existing = await store.find_by_key(conn, idempotency_key)
        if existing is not None:
            return await self.get(existing)
        order_id = str(uuid.uuid4())
        async with self._engine.begin() as conn:
            await store.open_reservation(conn, order_id, utcnow())
        try:
            reserved = await self._inventory.reserve(order_id, lines)
        except FailedPrecondition:
            await self._forget(order_id)  # refused: nothing was reserved
            raise
        except BaseException:
            # Deadline, cancellation or a lost connection: inventory may have committed the
            # reservation anyway, or may still commit it, so release it now (idempotent; an
            # unknown order is fine) and leave it open for the sweeper to release once more.
            await asyncio.shield(self._undo(order_id, "reservation outcome unknown", final=False))
            raise
        try:
            return await self._place(
                order_id, idempotency_key, customer_id, reserved, payment_method_id
            )
        except IntegrityError:
            # A concurrent call with the same key stored its order first: undo ours.
            await asyncio.shield(self._undo(order_id, "duplicate idempotency key"))
            async with self._engine.connect() as conn:
                winner = await store.find_by_key(conn, idempotency_key)
            if winner is None:
                raise
            return await self.get(winner)
        except BaseException:
            await asyncio.shield(self._undo(order_id, "order not stored"))
            raise

    async def _undo(self, order_id: str, reason: str, *, final: bool = True) -> None:
        """Release the stock of an order that was not stored, unless it was after all (a
        failure reported after the commit landed). Claiming the open reservation first is what
        tells: the transaction storing the order closes it. A failure here is logged, never
        raised (the original error is what counts), and left to the sweeper, as is the open
        reservation unless ``final`` (a reservation that may still commit late)."""
        try:
            async with self._engine.begin() as conn:
                if not await store.claim_reservation(conn, order_id):
                    return  # stored: the order owns its stock
            await self._inventory.release(order_id, reason)
            if final:
                async with self._engine.begin() as conn:
                    await store.forget_reservation(conn, order_id)
        except Exception:  # noqa: BLE001 - never mask the original failure
            _log.warning("stock release failed", order_id=order_id, reason=reason, exc_info=True)

    async def _forget(self, order_id: str) -> None:
        """Close an open reservation that holds no stock; a failure leaves it to the sweeper
        (which releases it, harmlessly)."""
        try:
            async with self._engine.begin() as conn:
                await store.forget_reservation(conn, order_id)
        except Exception:  # noqa: BLE001 - the request's own outcome is what counts
            _log.warning("open reservation not closed", order_id=order_id, exc_info=True)

    async def _place(
        self,
        order_id: str,
        key: str,
        customer_id: str,
        reserved: list[Any],
        payment_method_id: str,
    ) -> Order:
        currencies = {line.currency for line in reserved}
        if len(currencies) != 1:
            violation = PreconditionViolation(
                "CURRENCY", "orders", f"lines priced in {sorted(currencies)}"
            )
            raise FailedPrecondition([violation])
        now = utcnow()
        events = place(
            customer_id=customer_id,
            lines=[Line(r.sku, r.quantity, r.unit_price_minor) for r in reserved],
            currency=currencies.pop(),
            payment_method_id=payment_method_id,
            at=now,
        )
        async with self._engine.begin() as conn:
            if not await store.close_reservation(conn, order_id):
                raise Aborted(
                    f"order {order_id}: its stock reservation expired before the order could be"
                    " stored; retry"
                )
            await store.remember_key(conn, key, order_id)
            order = await self._append(conn, Order(order_id), events)
        self._committed(order_id)
        return order

    async def cancel(self, order_id: str, reason: str) -> Order:
        """Release the stock, then cancel (a cancelled order is returned unchanged)."""
        order = await self.get(order_id)
        if order.status == CANCELLED:
            return order
        cancel(order, reason, utcnow())  # refuses early if the order cannot be cancelled
        await self._inventory.release(order_id, reason)
        try:
            async with self._engine.begin() as conn:
                current = await self._load(conn, order_id)
                order = await self._append(conn, current, cancel(current, reason, utcnow()))
        except IntegrityError:
            raise Aborted(f"order {order_id} changed concurrently; retry") from None
        self._committed(order_id)
        return order

    # -- event handlers (run through the inbox) -----------------------------------------

    async def payment_authorized(self, event: Event) -> None:
        order_id = str(event.data["order_id"])
        async with self._engine.begin() as conn:
            if not await self._inbox.record(conn, event.id, event.type):
                return
            order = await self._load_if_any(conn, order_id)
            if order is None:
                return
            await self._append(
                conn, order, authorize(order, str(event.data["payment_id"]), utcnow())
            )
        self._committed(order_id)

    async def payment_declined(self, event: Event) -> None:
        """Compensate first (release the stock: idempotent, so safe to repeat when this
        handler is retried), then record the decline and the cancellation."""
        order_id = str(event.data["order_id"])
        async with self._engine.connect() as conn:
            order = await self._load_if_any(conn, order_id)
        if order is None or order.status != PENDING:
            return
        reason = str(event.data["reason"])
        await self._inventory.release(order_id, f"payment declined: {reason}")
        async with self._engine.begin() as conn:
            if not await self._inbox.record(conn, event.id, event.type):
                return
            current = await self._load(conn, order_id)
            new = decline(current, str(event.data["payment_id"]), reason, utcnow())
            await self._append(conn, current, new)
        self._committed(order_id)

    # -- queries -------------------------------------------------------------------------

    async def get(self, order_id: str) -> Order:
        async with self._engine.connect() as conn:
            return await self._load(conn, order_id)

    async def summaries(
        self, *, customer_id: str, status: str | None, page_token: str, limit: int
    ) -> list[Any]:
        async with self._engine.connect() as conn:
            return await store.list_summaries(
                conn, customer_id=customer_id, status=status, page_token=page_token, limit=limit
            )

    async def watch(self, order_id: str) -> AsyncIterator[Order]:
        """The order now, then after every change, until it is terminal."""
        order = await self.get(order_id)
        yield order
        while order.status not in TERMINAL:
            await self._notifier.wait(order_id, WATCH_POLL)
            latest = await self.get(order_id)
            if latest.version != order.version:
                order = latest
                yield order

    # -- helpers -------------------------------------------------------------------------

    async def _load(self, conn: AsyncConnection, order_id: str) -> Order:
        order = await store.load(conn, order_id)
        if order is None:
            raise NotFound("order", order_id)
        return order

    async def _load_if_any(self, conn: AsyncConnection, order_id: str) -> Order | None:
        order = await store.load(conn, order_id)
        if order is None:
            _log.warning("order.unknown", order_id=order_id)
        return order

    async def _append(
        self, conn: AsyncConnection, order: Order, events: list[DomainEvent]
    ) -> Order:
        state = await store.append(conn, order, events)
        for event in events:
            published = self._integration_event(state, event)
            if published is not None:
                await self._outbox.add(conn, published)
        return state

    def _integration_event(self, order: Order, event: DomainEvent) -> Event | None:
        """The public event (Avro, schemas/orders) a domain event is announced as, if any."""
        at = event.at
        if event.type == "OrderPlaced":
            data: dict[str, Any] = {
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "lines": [
                    {
                        "sku": line.sku,
                        "quantity": line.quantity,
                        "unit_price_minor": line.unit_price_minor,
                    }
                    for line in order.lines
                ],
                "total_minor": order.total_minor,
                "currency": order.currency,
                "payment_method_id": order.payment_method_id,
                "placed_at": at,
                "channel": "API",
                "promo_code": None,
            }
        elif event.type == "OrderConfirmed":
            data = {"order_id": order.order_id, "payment_id": order.payment_id, "confirmed_at": at}
        elif event.type == "OrderCancelled":
            data = {
                "order_id": order.order_id,
                "reason": order.cancel_reason,
                "compensated": True,
                "cancelled_at": at,
            }
        else:
            return None
        return self._broker.event(f"shop.orders.v1.{event.type}", data, subject=order.order_id)

    def _committed(self, order_id: str) -> None:
        self._relay.notify()
        self._notifier.changed(order_id)
