"""The InventoryService gRPC adapter: requests in, store calls, messages out.

Requests arrive validated against the contract (the runtime's ValidationInterceptor); domain
errors leave as rich statuses through the runtime's ErrorInterceptor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.common.timestamps import to_timestamp
from services.inventory.domain import Line
from services.runtime import decode_page_token, encode_page_token, page_size
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc

if TYPE_CHECKING:
    from services.inventory.store import InventoryStore, Product, Reservation

__all__ = ["InventoryServicer", "product_message", "reservation_message"]

_STATUS = {
    "RESERVED": inventory_pb2.RESERVATION_STATUS_RESERVED,
    "RELEASED": inventory_pb2.RESERVATION_STATUS_RELEASED,
}


def product_message(product: Product) -> Any:
    return inventory_pb2.Product(
        sku=product.sku,
        name=product.name,
        description=product.description,
        price=common_pb2.Money(currency_code=product.currency, minor_units=product.price_minor),
        available_quantity=product.available,
        reserved_quantity=product.reserved,
        low_stock_threshold=product.low_threshold,
        create_time=to_timestamp(product.created_at),
        update_time=to_timestamp(product.updated_at),
    )


def reservation_message(reservation: Reservation) -> Any:
    return inventory_pb2.Reservation(
        order_id=reservation.order_id,
        status=_STATUS[reservation.status],
        lines=[
            inventory_pb2.ReservedLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=common_pb2.Money(
                    currency_code=line.currency, minor_units=line.unit_price_minor
                ),
            )
            for line in reservation.lines
        ],
        create_time=to_timestamp(reservation.created_at),
        update_time=to_timestamp(reservation.updated_at),
    )


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    """Thin adapter over :class:`~services.inventory.store.InventoryStore`."""

    def __init__(self, store: InventoryStore) -> None:
        self._store = store

    async def CreateProduct(self, request: Any, _context: Any) -> Any:  # noqa: N802
        product = await self._store.create_product(
            idempotency_key=request.idempotency_key,
            sku=request.sku,
            name=request.name,
            description=request.description,
            price_minor=request.price.minor_units,
            currency=request.price.currency_code,
            quantity=request.initial_quantity,
            low_threshold=request.low_stock_threshold,
        )
        return product_message(product)

    async def GetProduct(self, request: Any, _context: Any) -> Any:  # noqa: N802
        return product_message(await self._store.get_product(request.sku))

    async def ListProducts(self, request: Any, _context: Any) -> Any:  # noqa: N802
        size = page_size(request.page_size)
        position = decode_page_token(request.page_token)
        after = None if position is None else str(position.get("sku", ""))
        found = await self._store.list_products(
            low_stock_only=request.low_stock_only, after_sku=after, limit=size + 1
        )
        page, more = found[:size], len(found) > size
        return inventory_pb2.ListProductsResponse(
            products=[product_message(p) for p in page],
            next_page_token=encode_page_token({"sku": page[-1].sku}) if more else "",
        )

    async def AdjustStock(self, request: Any, _context: Any) -> Any:  # noqa: N802
        product = await self._store.adjust_stock(
            sku=request.sku,
            delta=request.delta,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
        )
        return product_message(product)

    async def ReserveStock(self, request: Any, _context: Any) -> Any:  # noqa: N802
        lines = [Line(line.sku, line.quantity) for line in request.lines]
        return reservation_message(await self._store.reserve(request.order_id, lines))

    async def ReleaseStock(self, request: Any, _context: Any) -> Any:  # noqa: N802
        reason = request.reason or "released"
        return reservation_message(await self._store.release(request.order_id, reason))
