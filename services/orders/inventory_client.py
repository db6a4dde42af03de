"""The orders service's calls to inventory, with deadlines, and their errors as domain errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.runtime import FailedPrecondition, PreconditionViolation, Unavailable
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["InventoryClient", "ReservedLine"]

RESERVE_DEADLINE = 5.0


@dataclass(frozen=True, slots=True)
class ReservedLine:
    sku: str
    quantity: int
    unit_price_minor: int
    currency: str


class InventoryClient:
    """Wraps an InventoryService stub."""

    def __init__(self, stub: Any, *, deadline: float = RESERVE_DEADLINE) -> None:
        self._stub = stub
        self._deadline = deadline

    async def reserve(self, order_id: str, lines: Iterable[tuple[str, int]]) -> list[ReservedLine]:
        """Reserve every line; FailedPrecondition (one violation per short SKU) if stock is
        short, Unavailable if inventory cannot answer within the deadline."""
        request = inventory_pb2.ReserveStockRequest(
            order_id=order_id,
            lines=[common_pb2.ItemQuantity(sku=sku, quantity=q) for sku, q in lines],
        )
        try:
            reply = await self._stub.ReserveStock(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc) from exc
        return [
            ReservedLine(
                line.sku, line.quantity, line.unit_price.minor_units, line.unit_price.currency_code
            )
            for line in reply.lines
        ]

    async def release(self, order_id: str, reason: str) -> None:
        """Release the order's reservation (idempotent; an order that reserved nothing is
        fine)."""
        request = inventory_pb2.ReleaseStockRequest(order_id=order_id, reason=reason[:256])
        try:
            await self._stub.ReleaseStock(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return
            raise _domain_error(exc) from exc


def _domain_error(exc: grpc.aio.AioRpcError) -> Exception:
    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(_violations(exc), exc.details() or None)
    return Unavailable(f"inventory: {exc.code().name}: {exc.details()}")


def _violations(exc: grpc.aio.AioRpcError) -> list[PreconditionViolation]:
    found: list[PreconditionViolation] = []
    trailers: Any = exc.trailing_metadata() or ()
    for key, value in trailers:
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for packed in status.details:
            failure = error_details_pb2.PreconditionFailure()
            if packed.Unpack(failure):
                found += [
                    PreconditionViolation(v.type, v.subject, v.description)
                    for v in failure.violations
                ]
    return found
