"""The order aggregate: its events, the fold that rebuilds it, and the saga's decisions.

Pure: no I/O, no clock (times are passed in). Each decision returns the new events, or none
when the order is already past that point (which is what makes redelivered or late messages
harmless).

Events and the saga step each records (name, outcome)::

    StockReserved      reserve_stock      SUCCEEDED
    OrderPlaced        place_order        SUCCEEDED   -> PENDING
    PaymentAuthorized  authorize_payment  SUCCEEDED
    PaymentDeclined    authorize_payment  FAILED
    StockReleased      release_stock      COMPENSATED
    OrderConfirmed     confirm_order      SUCCEEDED   -> CONFIRMED
    OrderCancelled     cancel_order       SUCCEEDED   -> CANCELLED
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from services.runtime import FailedPrecondition, PreconditionViolation

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

__all__ = [
    "CANCELLED",
    "CONFIRMED",
    "PENDING",
    "TERMINAL",
    "DomainEvent",
    "Line",
    "Order",
    "Step",
    "apply",
    "authorize",
    "cancel",
    "decline",
    "fold",
    "place",
]

PENDING = "PENDING"
CONFIRMED = "CONFIRMED"
CANCELLED = "CANCELLED"
TERMINAL = frozenset({CONFIRMED, CANCELLED})
"""Statuses after which the saga has nothing left to do (WatchOrder ends there)."""

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
COMPENSATED = "COMPENSATED"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    type: str
    data: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int
    unit_price_minor: int

    @property
    def total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    outcome: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer_id: str = ""
    status: str = ""
    lines: tuple[Line, ...] = ()
    currency: str = ""
    payment_method_id: str = ""
    payment_id: str = ""
    cancel_reason: str = ""
    steps: tuple[Step, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0

    @property
    def total_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


_STEPS = {
    "StockReserved": ("reserve_stock", SUCCEEDED),
    "OrderPlaced": ("place_order", SUCCEEDED),
    "PaymentAuthorized": ("authorize_payment", SUCCEEDED),
    "PaymentDeclined": ("authorize_payment", FAILED),
    "StockReleased": ("release_stock", COMPENSATED),
    "OrderConfirmed": ("confirm_order", SUCCEEDED),
    "OrderCancelled": ("cancel_order", SUCCEEDED),
}


def apply(order: Order, event: DomainEvent) -> Order:
    """``order`` after ``event`` (one step of the fold)."""
    data = event.data
    name, outcome = _STEPS[event.type]
    changes: dict[str, Any] = {}
    if event.type == "OrderPlaced":
        changes = {
            "customer_id": data["customer_id"],
            "status": PENDING,
            "lines": tuple(Line(**line) for line in data["lines"]),
            "currency": data["currency"],
            "payment_method_id": data["payment_method_id"],
        }
    elif event.type in {"PaymentAuthorized", "PaymentDeclined", "OrderConfirmed"}:
        changes = {"payment_id": data.get("payment_id", order.payment_id)}
        if event.type == "OrderConfirmed":
            changes["status"] = CONFIRMED
    elif event.type == "OrderCancelled":
        changes = {"status": CANCELLED, "cancel_reason": data["reason"]}
    step = Step(name, outcome, event.at, str(data.get("detail", "")))
    return replace(
        order,
        **changes,
        steps=(*order.steps, step),
        created_at=order.created_at or event.at,
        updated_at=event.at,
        version=order.version + 1,
    )


def fold(order_id: str, events: Iterable[DomainEvent]) -> Order | None:
    """The order rebuilt from its events in version order; None when there are none."""
    order = Order(order_id)
    for event in events:
        order = apply(order, event)
    return order if order.version else None


def place(
    *,
    customer_id: str,
    lines: Iterable[Line],
    currency: str,
    payment_method_id: str,
    at: datetime,
) -> list[DomainEvent]:
    """The events of a new order whose stock is already reserved."""
    priced = [
        {"sku": line.sku, "quantity": line.quantity, "unit_price_minor": line.unit_price_minor}
        for line in lines
    ]
    detail = ", ".join(f"{line['sku']} x{line['quantity']}" for line in priced)
    return [
        DomainEvent("StockReserved", {"lines": priced, "detail": detail}, at),
        DomainEvent(
            "OrderPlaced",
            {
                "customer_id": customer_id,
                "lines": priced,
                "currency": currency,
                "payment_method_id": payment_method_id,
            },
            at,
        ),
    ]


def authorize(order: Order, payment_id: str, at: datetime) -> list[DomainEvent]:
    """Payment authorized: a pending order is confirmed; any other is left alone."""
    if order.status != PENDING:
        return []
    return [
        DomainEvent("PaymentAuthorized", {"payment_id": payment_id, "detail": payment_id}, at),
        DomainEvent("OrderConfirmed", {"payment_id": payment_id}, at),
    ]


def decline(order: Order, payment_id: str, reason: str, at: datetime) -> list[DomainEvent]:
    """Payment declined: a pending order's stock was released (the caller did it first) and
    the order is cancelled; any other order is left alone."""
    if order.status != PENDING:
        return []
    return [
        DomainEvent("PaymentDeclined", {"payment_id": payment_id, "detail": reason}, at),
        DomainEvent("StockReleased", {"detail": "payment declined"}, at),
        DomainEvent("OrderCancelled", {"reason": f"payment declined: {reason}"}, at),
    ]


def cancel(order: Order, reason: str, at: datetime) -> list[DomainEvent]:
    """Cancelled on request: stock released (by the caller, first) and the order cancelled;
    a cancelled order stays as it is."""
    if order.status == CANCELLED:
        return []
    if order.status not in {PENDING, CONFIRMED}:
        violation = PreconditionViolation("STATUS", f"orders/{order.order_id}", order.status)
        raise FailedPrecondition([violation])
    return [
        DomainEvent("StockReleased", {"detail": reason}, at),
        DomainEvent("OrderCancelled", {"reason": reason}, at),
    ]
