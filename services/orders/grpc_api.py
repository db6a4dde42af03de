"""The OrderService gRPC adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.common.pages import position_token
from services.common.timestamps import as_utc, to_timestamp
from services.runtime import page_size
from shop.common.v1 import common_pb2
from shop.orders.v1 import orders_pb2, orders_pb2_grpc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.orders.domain import Order
    from services.orders.service import OrderService

__all__ = ["OrderServicer", "order_message"]

_STATUS = {
    "PENDING": orders_pb2.ORDER_STATUS_PENDING,
    "CONFIRMED": orders_pb2.ORDER_STATUS_CONFIRMED,
    "CANCELLED": orders_pb2.ORDER_STATUS_CANCELLED,
}
_STATUS_NAMES = {value: key for key, value in _STATUS.items()}
_OUTCOME = {
    "SUCCEEDED": orders_pb2.STEP_OUTCOME_SUCCEEDED,
    "FAILED": orders_pb2.STEP_OUTCOME_FAILED,
    "COMPENSATED": orders_pb2.STEP_OUTCOME_COMPENSATED,
}


def _money(currency: str, minor: int) -> Any:
    return common_pb2.Money(currency_code=currency, minor_units=minor)


def order_message(order: Order) -> Any:
    message = orders_pb2.Order(
        order_id=order.order_id,
        customer_id=order.customer_id,
        status=_STATUS.get(order.status, orders_pb2.ORDER_STATUS_UNSPECIFIED),
        lines=[
            orders_pb2.OrderLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=_money(order.currency, line.unit_price_minor),
                line_total=_money(order.currency, line.total_minor),
            )
            for line in order.lines
        ],
        total=_money(order.currency, order.total_minor),
        steps=[
            orders_pb2.SagaStep(
                name=step.name,
                outcome=_OUTCOME[step.outcome],
                time=to_timestamp(step.at),
                detail=step.detail,
            )
            for step in order.steps
        ],
        cancel_reason=order.cancel_reason,
        payment_id=order.payment_id,
        version=order.version,
    )
    if order.created_at is not None:
        message.create_time.CopyFrom(to_timestamp(order.created_at))
    if order.updated_at is not None:
        message.update_time.CopyFrom(to_timestamp(order.updated_at))
    return message


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    """Thin adapter over :class:`~services.orders.service.OrderService`."""

    def __init__(self, orders: OrderService) -> None:
        self._orders = orders

    async def CreateOrder(self, request: Any, _context: Any) -> Any:  # noqa: N802
        order = await self._orders.create(
            idempotency_key=request.idempotency_key,
            customer_id=request.customer_id,
            lines=[(line.sku, line.quantity) for line in request.lines],
            payment_method_id=request.payment_token,
        )
        return order_message(order)

    async def GetOrder(self, request: Any, _context: Any) -> Any:  # noqa: N802
        return order_message(await self._orders.get(request.order_id))

    async def ListOrders(self, request: Any, _context: Any) -> Any:  # noqa: N802
        size = page_size(request.page_size)
        rows = await self._orders.summaries(
            customer_id=request.customer_id,
            status=_STATUS_NAMES.get(request.status),
            page_token=request.page_token,
            limit=size + 1,
        )
        page = rows[:size]
        token = ""
        if len(rows) > size:
            token = position_token(page[-1]["created_at"], page[-1]["order_id"])
        return orders_pb2.ListOrdersResponse(
            orders=[
                orders_pb2.OrderSummary(
                    order_id=row["order_id"],
                    customer_id=row["customer_id"],
                    status=_STATUS[row["status"]],
                    total=_money(row["currency"], row["total_minor"]),
                    item_count=row["item_count"],
                    create_time=to_timestamp(as_utc(row["created_at"])),
                    update_time=to_timestamp(as_utc(row["updated_at"])),
                )
                for row in page
            ],
            next_page_token=token,
        )

    async def CancelOrder(self, request: Any, _context: Any) -> Any:  # noqa: N802
        reason = request.reason or "cancelled by request"
        return order_message(await self._orders.cancel(request.order_id, reason))

    async def WatchOrder(self, request: Any, _context: Any) -> AsyncIterator[Any]:  # noqa: N802
        async for order in self._orders.watch(request.order_id):
            yield order_message(order)
