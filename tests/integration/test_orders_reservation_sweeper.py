"""No stock stays reserved for an order that was never stored.

Orders and inventory run in this process over real gRPC, with a TCP proxy between them: the
proxy holds inventory's answers back (the reservation commits, orders' deadline runs out) and
then cuts the line (the release that should follow fails too). The reservation sweeper
releases that stock once the line is back; the reservation of an order that was stored is
left alone. The store's claim, which forbids storing an order whose reservation is being
released, is checked on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import select

from services.common.store import create_engine, create_schema
from services.inventory.app import BLUEPRINT as INVENTORY
from services.orders import store
from services.orders.app import BLUEPRINT as ORDERS
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.orders.v1 import orders_pb2, orders_pb2_grpc
from tests.e2e.support import in_process, isolated_broker_url
from tests.support.databases import DATABASES, fresh_database
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)

SKU = "SKU-SWEEP"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _order(key: str) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        idempotency_key=key,
        customer_id="c-1",
        lines=[common_pb2.ItemQuantity(sku=SKU, quantity=1)],
        payment_token="pm_card",
    )


async def _stock(inventory: inventory_pb2_grpc.InventoryServiceStub) -> tuple[int, int]:
    product = await inventory.GetProduct(inventory_pb2.GetProductRequest(sku=SKU))
    return product.available_quantity, product.reserved_quantity


async def _until(condition, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", DATABASES)
async def test_stock_of_an_order_never_stored_is_released(kind, tmp_path):
    """Reserve commits after orders gave up and the release fails: the sweeper returns the
    unit once inventory is reachable again; a stored order keeps its reservation."""
    broker_url, _prefix = isolated_broker_url()
    async with (
        fresh_database("sqlite", tmp_path / "inventory") as (inventory_url, _),
        in_process(INVENTORY, broker_url=broker_url, database_url=inventory_url) as inv,
        TcpProxy("127.0.0.1", inv.server.port) as proxy,
        fresh_database(kind, tmp_path / "orders") as (orders_url, _),
        in_process(
            ORDERS,
            broker_url=broker_url,
            database_url=orders_url,
            INVENTORY_ADDR=proxy.address,
            INVENTORY_DEADLINE="0.5",
            RESERVATION_SWEEP_AFTER="1",
            RESERVATION_SWEEP_INTERVAL="0.2",
        ) as orders_service,
        grpc.aio.insecure_channel(f"127.0.0.1:{inv.server.port}") as inventory_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{orders_service.server.port}") as orders_channel,
    ):
        inventory = inventory_pb2_grpc.InventoryServiceStub(inventory_channel)
        orders = orders_pb2_grpc.OrderServiceStub(orders_channel)
        await inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                idempotency_key="p-sweep",
                sku=SKU,
                name="Swept widget",
                price=common_pb2.Money(currency_code="EUR", minor_units=100),
                initial_quantity=10,
            )
        )
        stored = await orders.CreateOrder(_order("stored"))  # also opens the proxied channel
        assert await _stock(inventory) == (9, 1)

        proxy.delay = 2.0
        lost = asyncio.ensure_future(orders.CreateOrder(_order("lost")))

        async def reserved_twice() -> bool:
            return await _stock(inventory) == (8, 2)

        await _until(reserved_twice)  # inventory committed; its answer is still held back
        proxy.cut()
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await lost
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        engine = orders_service.context.engine

        async def open_reservations() -> list[str]:
            async with engine.connect() as conn:
                rows = await conn.execute(select(store.open_reservations.c.order_id))
                return [str(order_id) for (order_id,) in rows]

        assert len(await open_reservations()) == 1
        await asyncio.sleep(1.5)  # past RESERVATION_SWEEP_AFTER: the sweeper tries, and fails
        assert await _stock(inventory) == (8, 2)
        assert len(await open_reservations()) == 1

        proxy.delay = 0.0
        proxy.restore()

        async def returned() -> bool:
            return await _stock(inventory) == (9, 1) and not await open_reservations()

        await _until(returned)  # the stored order's unit is still reserved
        order = await orders.GetOrder(orders_pb2.GetOrderRequest(order_id=stored.order_id))
        assert order.order_id == stored.order_id


@pytest.mark.parametrize("kind", DATABASES)
async def test_a_claimed_reservation_cannot_be_taken_by_an_order(kind, tmp_path):
    """Once the sweeper claimed a reservation, storing its order is refused; an order
    stored first takes its reservation out of reach of the sweeper and of CreateOrder's own
    undo."""
    async with fresh_database(kind, tmp_path) as (url, _):
        engine = create_engine(url)
        try:
            await create_schema(engine, store.metadata)
            async with engine.begin() as conn:
                await store.open_reservation(conn, "old", AT)
                await store.open_reservation(conn, "stored", AT)
                await store.open_reservation(conn, "new", AT + timedelta(hours=1))
                assert await store.close_reservation(conn, "stored")
                assert not await store.claim_reservation(conn, "stored")  # the order owns it
            async with engine.begin() as conn:
                claimed = await store.claim_stale_reservations(conn, AT + timedelta(minutes=1), 10)
            assert claimed == ["old"]
            async with engine.begin() as conn:
                assert not await store.close_reservation(conn, "old")
                assert await store.close_reservation(conn, "new")
            async with engine.begin() as conn:  # a failed release is claimed again next pass
                claimed = await store.claim_stale_reservations(conn, AT + timedelta(minutes=1), 10)
            assert claimed == ["old"]
            async with engine.begin() as conn:
                await store.forget_reservation(conn, "old")
                rows = await conn.execute(select(store.open_reservations))
                assert rows.all() == []
        finally:
            await engine.dispose()
