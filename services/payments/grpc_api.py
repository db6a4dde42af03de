"""The PaymentService gRPC adapter (read-only: payments are created by events)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.common.pages import position_token
from services.common.timestamps import to_timestamp
from services.runtime import page_size
from shop.common.v1 import common_pb2
from shop.payments.v1 import payments_pb2, payments_pb2_grpc

if TYPE_CHECKING:
    from services.payments.store import Payment, PaymentStore

__all__ = ["PaymentServicer", "payment_message"]

_TO_PROTO = {
    "AUTHORIZED": payments_pb2.PAYMENT_STATUS_AUTHORIZED,
    "DECLINED": payments_pb2.PAYMENT_STATUS_DECLINED,
    "REFUNDED": payments_pb2.PAYMENT_STATUS_REFUNDED,
}
_FROM_PROTO = {value: key for key, value in _TO_PROTO.items()}


def payment_message(payment: Payment) -> Any:
    return payments_pb2.Payment(
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        customer_id=payment.customer_id,
        amount=common_pb2.Money(currency_code=payment.currency, minor_units=payment.amount_minor),
        status=_TO_PROTO[payment.status],
        decline_reason=payment.decline_reason,
        create_time=to_timestamp(payment.created_at),
        update_time=to_timestamp(payment.updated_at),
    )


class PaymentServicer(payments_pb2_grpc.PaymentServiceServicer):
    """Thin adapter over :class:`~services.payments.store.PaymentStore`."""

    def __init__(self, store: PaymentStore) -> None:
        self._store = store

    async def GetPayment(self, request: Any, _context: Any) -> Any:  # noqa: N802
        return payment_message(await self._store.get(request.payment_id))

    async def ListPayments(self, request: Any, _context: Any) -> Any:  # noqa: N802
        size = page_size(request.page_size)
        found = await self._store.list(
            order_id=request.order_id,
            customer_id=request.customer_id,
            status=_FROM_PROTO.get(request.status),
            page_token=request.page_token,
            limit=size + 1,
        )
        page = found[:size]
        token = ""
        if len(found) > size:
            token = position_token(page[-1].created_at, page[-1].payment_id)
        return payments_pb2.ListPaymentsResponse(
            payments=[payment_message(p) for p in page], next_page_token=token
        )
