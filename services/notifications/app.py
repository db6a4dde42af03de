"""Notifications' wiring: a channel to orders, the handler through the inbox."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from broker.inbox import idempotent
from services.common.bootstrap import Blueprint, Dispatcher, Wiring
from services.notifications.domain import CANCELLED, CONFIRMED
from services.notifications.grpc_api import NotificationServicer
from services.notifications.handlers import NotificationHandler
from services.notifications.store import NotificationStore, metadata
from services.runtime.channels import upstream_channel
from shop.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from shop.orders.v1 import orders_pb2_grpc

if TYPE_CHECKING:
    from services.common.bootstrap import Context

__all__ = ["BLUEPRINT"]


async def wire(context: Context) -> Wiring:
    channel = context.telemetry.trace_channel(upstream_channel(context.settings.upstream("orders")))
    handle = idempotent(
        context.engine,
        context.inbox,
        NotificationHandler(orders_pb2_grpc.OrderServiceStub(channel)),
    )
    service = (
        notifications_pb2.DESCRIPTOR.services_by_name["NotificationService"],
        NotificationServicer(NotificationStore(context.engine)),
        notifications_pb2_grpc.add_NotificationServiceServicer_to_server,
    )
    return Wiring(
        services=[service],
        handler=Dispatcher({CONFIRMED: handle, CANCELLED: handle}),
        closers=[("orders channel", partial(channel.close, None))],
    )


BLUEPRINT = Blueprint(
    name="notifications",
    grpc_port=50054,
    metadata=metadata,
    wire=wire,
    upstreams=("orders",),
)
