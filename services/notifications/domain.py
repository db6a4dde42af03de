"""What a notification says: the message for each terminal order event (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CANCELLED", "CONFIRMED", "Message", "compose"]

CONFIRMED = "shop.orders.v1.OrderConfirmed"
CANCELLED = "shop.orders.v1.OrderCancelled"


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    recipient: str
    subject: str
    body: str


def compose(event_type: str, data: dict[str, Any], customer_id: str) -> Message:
    """The simulated e-mail for ``event_type`` about an order of ``customer_id``."""
    order_id = str(data["order_id"])
    recipient = f"{customer_id}@customers.shop.invalid"
    if event_type == CONFIRMED:
        return Message(
            "EMAIL",
            recipient,
            f"Order {order_id} confirmed",
            f"Your order {order_id} is confirmed (payment {data['payment_id']}).",
        )
    reason = str(data.get("reason") or "cancelled")
    return Message(
        "EMAIL",
        recipient,
        f"Order {order_id} cancelled",
        f"Your order {order_id} was cancelled: {reason}.",
    )
