"""Notifications' event handler: look the customer up, record the message, once per event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.notifications.domain import compose
from services.notifications.store import record
from services.runtime import get_logger
from shop.orders.v1 import orders_pb2

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from broker.event import Event

__all__ = ["NotificationHandler"]

_log = get_logger("services.notifications.handlers")
LOOKUP_TIMEOUT = 5.0


class NotificationHandler:
    """``(event, conn)`` for :func:`broker.inbox.idempotent`; ``orders`` is an OrderService
    stub (a failed lookup raises, and the broker retries the event)."""

    def __init__(self, orders: Any) -> None:
        self._orders = orders

    async def __call__(self, event: Event, conn: AsyncConnection) -> None:
        order_id = str(event.data["order_id"])
        order = await self._orders.GetOrder(
            orders_pb2.GetOrderRequest(order_id=order_id), timeout=LOOKUP_TIMEOUT
        )
        message = compose(event.type, event.data, order.customer_id)
        sent = await record(
            conn,
            order_id=order_id,
            customer_id=order.customer_id,
            event_type=event.type,
            event_id=event.id,
            message=message,
        )
        _log.info("notification.sent" if sent else "notification.duplicate", order_id=order_id)
