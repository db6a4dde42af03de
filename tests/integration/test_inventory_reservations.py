"""Inventory over real gRPC, a real broker and both databases: reservations never oversell
under concurrency, are idempotent per order, and release exactly once."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from services.inventory.app import BLUEPRINT
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from tests.e2e.support import in_process, isolated_broker_url, status_details
from tests.support.databases import DATABASES, fresh_database

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=DATABASES)
async def inventory(request, tmp_path):
    url, _prefix = isolated_broker_url()
    async with (
        fresh_database(request.param, tmp_path) as (database_url, _engine),
        in_process(BLUEPRINT, broker_url=url, database_url=database_url) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.server.port}") as channel,
    ):
        yield inventory_pb2_grpc.InventoryServiceStub(channel)


async def _product(stub, sku, quantity, threshold=0):
    return await stub.CreateProduct(
        inventory_pb2.CreateProductRequest(
            idempotency_key=f"create-{sku}",
            sku=sku,
            name=sku,
            price=common_pb2.Money(currency_code="EUR", minor_units=250),
            initial_quantity=quantity,
            low_stock_threshold=threshold,
        )
    )


def _reserve(order_id, *lines):
    return inventory_pb2.ReserveStockRequest(
        order_id=order_id,
        lines=[common_pb2.ItemQuantity(sku=sku, quantity=q) for sku, q in lines],
    )


async def test_concurrent_reservations_never_oversell(inventory):
    """60 concurrent 1-unit reservations of a 25-unit product: exactly 25 succeed, the rest
    fail with FAILED_PRECONDITION, and available + reserved stays 25."""
    await _product(inventory, "SKU-HOT", 25)
    outcomes = await asyncio.gather(
        *(inventory.ReserveStock(_reserve(str(uuid.uuid4()), ("SKU-HOT", 1))) for _ in range(60)),
        return_exceptions=True,
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 25
    assert len(lost) == 35
    assert {e.code() for e in lost} == {grpc.StatusCode.FAILED_PRECONDITION}
    product = await inventory.GetProduct(inventory_pb2.GetProductRequest(sku="SKU-HOT"))
    assert (product.available_quantity, product.reserved_quantity) == (0, 25)


async def test_multi_line_reservation_is_all_or_nothing_with_a_violation_per_short_sku(
    inventory,
):
    """A reservation with two short lines reserves nothing and names both SKUs."""
    await _product(inventory, "A", 5)
    await _product(inventory, "B", 1)
    await _product(inventory, "C", 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inventory.ReserveStock(_reserve(str(uuid.uuid4()), ("A", 2), ("B", 3), ("C", 2)))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    (failure,) = status_details(caught.value)
    assert sorted(v.subject for v in failure.violations) == ["products/B", "products/C"]
    assert {v.type for v in failure.violations} == {"STOCK"}
    product = await inventory.GetProduct(inventory_pb2.GetProductRequest(sku="A"))
    assert product.available_quantity == 5


async def test_reserve_and_release_are_idempotent_per_order(inventory):
    """Repeated ReserveStock for one order reserves once; repeated ReleaseStock returns the
    units once; the reservation carries the unit price. The calls that reserved and released
    answer with exactly what the repeats read back from the database."""
    await _product(inventory, "SKU-1", 10)
    order_id = str(uuid.uuid4())
    first, second = await asyncio.gather(
        inventory.ReserveStock(_reserve(order_id, ("SKU-1", 4))),
        inventory.ReserveStock(_reserve(order_id, ("SKU-1", 4))),
    )
    third = await inventory.ReserveStock(_reserve(order_id, ("SKU-1", 4)))
    assert first.order_id == order_id
    assert first == second == third
    assert first.lines[0].unit_price.minor_units == 250
    assert first.status == inventory_pb2.RESERVATION_STATUS_RESERVED
    product = await inventory.GetProduct(inventory_pb2.GetProductRequest(sku="SKU-1"))
    assert product.available_quantity == 6
    request = inventory_pb2.ReleaseStockRequest(order_id=order_id, reason="test")
    released = await asyncio.gather(*(inventory.ReleaseStock(request) for _ in range(3)))
    assert {r.status for r in released} == {inventory_pb2.RESERVATION_STATUS_RELEASED}
    # The call that released answers with what the others (and a later one) read back.
    again = await inventory.ReleaseStock(request)
    assert released[0] == released[1] == released[2] == again
    product = await inventory.GetProduct(inventory_pb2.GetProductRequest(sku="SKU-1"))
    assert (product.available_quantity, product.reserved_quantity) == (10, 0)


async def test_unknown_ids_and_invalid_arguments(inventory):
    """An unknown SKU is NOT_FOUND, releasing an unknown order is NOT_FOUND, and a bad
    request is INVALID_ARGUMENT naming the field."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inventory.GetProduct(inventory_pb2.GetProductRequest(sku="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inventory.ReleaseStock(inventory_pb2.ReleaseStockRequest(order_id=str(uuid.uuid4())))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inventory.ReserveStock(_reserve("not-a-uuid", ("A", 0)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = status_details(caught.value)
    assert {v.field for v in bad.field_violations} == {"order_id", "lines[0].quantity"}


async def test_products_page_and_adjustments_apply_once(inventory):
    """ListProducts pages by SKU; AdjustStock applies once per idempotency key and refuses to
    go below zero available."""
    for sku in ("P1", "P2", "P3"):
        await _product(inventory, sku, 3)
    page = await inventory.ListProducts(inventory_pb2.ListProductsRequest(page_size=2))
    assert [p.sku for p in page.products] == ["P1", "P2"]
    rest = await inventory.ListProducts(
        inventory_pb2.ListProductsRequest(page_size=2, page_token=page.next_page_token)
    )
    assert [p.sku for p in rest.products] == ["P3"]
    assert rest.next_page_token == ""
    adjust = inventory_pb2.AdjustStockRequest(sku="P1", delta=5, idempotency_key="adj-1")
    await inventory.AdjustStock(adjust)
    product = await inventory.AdjustStock(adjust)
    assert product.available_quantity == 8
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inventory.AdjustStock(
            inventory_pb2.AdjustStockRequest(sku="P2", delta=-4, idempotency_key="adj-2")
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
