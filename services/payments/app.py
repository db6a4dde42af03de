"""Payments' wiring: processor rules from the environment, handlers through the inbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.inbox import idempotent
from services.common.bootstrap import Blueprint, Dispatcher, Wiring
from services.payments.domain import ProcessorRules
from services.payments.grpc_api import PaymentServicer
from services.payments.handlers import PaymentHandlers
from services.payments.store import PaymentStore, metadata
from shop.payments.v1 import payments_pb2, payments_pb2_grpc

if TYPE_CHECKING:
    from services.common.bootstrap import Context

__all__ = ["BLUEPRINT"]


async def wire(context: Context) -> Wiring:
    handlers = PaymentHandlers(context.broker, context.outbox, ProcessorRules.from_env())
    engine, inbox = context.engine, context.inbox
    dispatcher = Dispatcher(
        {
            "shop.orders.v1.OrderPlaced": idempotent(engine, inbox, handlers.order_placed),
            "shop.orders.v1.OrderCancelled": idempotent(engine, inbox, handlers.order_cancelled),
        },
        after=context.relay.notify,
    )

    service = (
        payments_pb2.DESCRIPTOR.services_by_name["PaymentService"],
        PaymentServicer(PaymentStore(engine)),
        payments_pb2_grpc.add_PaymentServiceServicer_to_server,
    )
    return Wiring(services=[service], handler=dispatcher)


BLUEPRINT = Blueprint(name="payments", grpc_port=50053, metadata=metadata, wire=wire)
