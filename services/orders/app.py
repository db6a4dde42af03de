"""Orders' wiring: inventory channel, application service, servicer, payment handlers."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from services.common.bootstrap import Blueprint, Dispatcher, Wiring
from services.orders.grpc_api import OrderServicer
from services.orders.inventory_client import RESERVE_DEADLINE, InventoryClient
from services.orders.notifier import ChangeNotifier
from services.orders.service import OrderService
from services.orders.store import metadata
from services.orders.sweeper import SWEEP_AFTER, SWEEP_INTERVAL, ReservationSweeper
from services.runtime.channels import upstream_channel
from shop.inventory.v1 import inventory_pb2_grpc
from shop.orders.v1 import orders_pb2, orders_pb2_grpc

if TYPE_CHECKING:
    from services.common.bootstrap import Context

__all__ = ["BLUEPRINT"]


async def wire(context: Context) -> Wiring:
    channel = context.telemetry.trace_channel(
        upstream_channel(context.settings.upstream("inventory"))
    )
    env = context.env
    inventory = InventoryClient(
        inventory_pb2_grpc.InventoryServiceStub(channel),
        # Seconds each inventory call may take (ReserveStock/ReleaseStock deadline).
        deadline=env.seconds("INVENTORY_DEADLINE", RESERVE_DEADLINE),
    )
    orders = OrderService(
        engine=context.engine,
        broker=context.broker,
        outbox=context.outbox,
        relay=context.relay,
        inbox=context.inbox,
        inventory=inventory,
        notifier=ChangeNotifier(),
    )
    sweeper = ReservationSweeper(
        context.engine,
        inventory,
        after=env.seconds("RESERVATION_SWEEP_AFTER", SWEEP_AFTER),
        interval=env.seconds("RESERVATION_SWEEP_INTERVAL", SWEEP_INTERVAL),
    )
    service = (
        orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
        OrderServicer(orders),
        orders_pb2_grpc.add_OrderServiceServicer_to_server,
    )
    handler = Dispatcher(
        {
            "shop.payments.v1.PaymentAuthorized": orders.payment_authorized,
            "shop.payments.v1.PaymentDeclined": orders.payment_declined,
        }
    )
    return Wiring(
        services=[service],
        handler=handler,
        closers=[("inventory channel", partial(channel.close, None))],
        tasks=[("reservation sweeper", sweeper.run)],
    )


BLUEPRINT = Blueprint(
    name="orders", grpc_port=50051, metadata=metadata, wire=wire, upstreams=("inventory",)
)
