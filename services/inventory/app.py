"""Inventory's wiring: the store over the shared resources, exposed over gRPC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.bootstrap import Blueprint, Wiring
from services.inventory.grpc_api import InventoryServicer
from services.inventory.store import InventoryStore, metadata
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc

if TYPE_CHECKING:
    from services.common.bootstrap import Context

__all__ = ["BLUEPRINT"]


async def wire(context: Context) -> Wiring:
    store = InventoryStore(context.engine, context.broker, context.outbox, context.relay)
    service = (
        inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
        InventoryServicer(store),
        inventory_pb2_grpc.add_InventoryServiceServicer_to_server,
    )
    return Wiring(services=[service])


BLUEPRINT = Blueprint(name="inventory", grpc_port=50052, metadata=metadata, wire=wire)
