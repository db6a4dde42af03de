"""The order aggregate: the fold and the saga's decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.orders.domain import (
    CANCELLED,
    CONFIRMED,
    PENDING,
    Line,
    authorize,
    cancel,
    decline,
    fold,
    place,
)
from services.runtime import FailedPrecondition

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _placed():
    events = place(
        customer_id="c",
        lines=[Line("A", 2, 150)],
        currency="EUR",
        payment_method_id="pm",
        at=AT,
    )
    order = fold("o", events)
    assert order is not None
    return order


def test_placing_folds_to_a_pending_order_with_two_steps():
    """StockReserved + OrderPlaced fold to PENDING, version 2, priced total."""
    order = _placed()
    assert (order.status, order.version, order.total_minor, order.item_count) == (
        PENDING,
        2,
        300,
        2,
    )
    assert [s.name for s in order.steps] == ["reserve_stock", "place_order"]


def test_authorization_confirms_once():
    """A pending order is confirmed; a confirmed one ignores a second authorization."""
    order = fold(
        "o",
        [
            *place(
                customer_id="c",
                lines=[Line("A", 1, 1)],
                currency="EUR",
                payment_method_id="pm",
                at=AT,
            )
        ],
    )
    assert order is not None
    events = authorize(order, "p", AT)
    confirmed = fold(
        "o",
        [
            *place(
                customer_id="c",
                lines=[Line("A", 1, 1)],
                currency="EUR",
                payment_method_id="pm",
                at=AT,
            ),
            *events,
        ],
    )
    assert confirmed is not None
    assert (confirmed.status, confirmed.payment_id) == (CONFIRMED, "p")
    assert authorize(confirmed, "p", AT) == []
    assert decline(confirmed, "p", "late", AT) == []


def test_decline_compensates_and_cancels():
    """A decline records the failed step, the released stock and the cancellation."""
    order = _placed()
    events = decline(order, "p", "card declined", AT)
    assert [e.type for e in events] == ["PaymentDeclined", "StockReleased", "OrderCancelled"]


def test_cancel_is_idempotent_and_refuses_unknown_states():
    """Cancelling a cancelled order yields nothing; an order with no status cannot cancel."""
    order = _placed()
    events = cancel(order, "bye", AT)
    assert events[-1].type == "OrderCancelled"
    history = [
        *place(
            customer_id="c",
            lines=[Line("A", 2, 150)],
            currency="EUR",
            payment_method_id="pm",
            at=AT,
        ),
        *events,
    ]
    cancelled = fold("o", history)
    assert cancelled is not None
    assert cancelled.status == CANCELLED
    assert cancel(cancelled, "again", AT) == []
    with pytest.raises(FailedPrecondition):
        cancel(type(order)("x"), "no", AT)


def test_no_events_is_no_order():
    """Folding nothing is no order at all."""
    assert fold("o", []) is None
