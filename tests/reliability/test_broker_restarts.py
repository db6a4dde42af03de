"""Broker restarts under load, per engine: the whole shop as processes on a PRIVATE broker
(RabbitMQ node or ActiveMQ instance over STOMP), RELIABILITY_ORDERS orders (default 2,000)
through the REST gateway at 32 at a time while the broker is stopped and started twice.
Nothing is lost or done twice, and the system recovers by itself."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from tests.reliability.system import CANCELLED, CONFIRMED, Load, shop_system
from tests.support.activemq_instance import private_activemq
from tests.support.rabbitmq_node import private_rabbitmq

ORDERS = int(os.environ.get("RELIABILITY_ORDERS", "2000"))
OUTAGE = 3.0
"""Seconds the broker stays down each time, while orders keep arriving."""


@pytest.fixture
async def private_broker(request, tmp_path):
    if request.param == "rabbitmq":
        async with private_rabbitmq(tmp_path / "rabbit") as node:
            yield node
    else:
        async with private_activemq(tmp_path / "activemq") as instance:
            yield instance


async def _restart_twice(shop, broker, load, total, run):
    """Stop and start the broker at a third and two thirds of the load; per restart, the
    seconds from the broker being back until an order placed while it was down is terminal."""
    figures = []
    for cycle in (1, 2):
        while len(load.placed) < total * cycle // 3:
            await asyncio.sleep(0.1)
        before = set(load.placed.values())
        stopped = time.monotonic()
        await broker.stop()
        # One order of our own while the broker is down, in case the load is already through.
        await asyncio.gather(
            shop.place(range(total + cycle, total + cycle + 1), run, load=load),
            asyncio.sleep(OUTAGE),
        )
        placed_while_down = set(load.placed.values()) - before
        restarting = time.monotonic()
        await broker.start()
        started = time.monotonic()
        # The orders placed while the broker was down: the first of them turning terminal is
        # the system working again.
        probe = sorted(placed_while_down)
        assert probe, "no order was placed while the broker was down"
        while True:
            statuses = await asyncio.gather(*(shop.order_status(o) for o in probe[:8]))
            if any(s in {CONFIRMED, CANCELLED} for s in statuses):
                break
            assert time.monotonic() - started < 120, "no recovery within 120 s"
            await asyncio.sleep(0.1)
        figures.append(
            {
                "down_s": round(restarting - stopped, 1),
                "broker_start_s": round(started - restarting, 1),
                "recovery_s": round(time.monotonic() - started, 2),
                "placed_while_down": len(placed_while_down),
            }
        )
    return figures


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("private_broker", ["rabbitmq", "activemq"], indirect=True)
async def test_orders_survive_two_broker_restarts_under_load(private_broker, tmp_path):
    """Every order placed while the broker restarts twice ends terminal with one payment, one
    notification, each event audited once and stock conserved; recovery is automatic."""
    run = uuid.uuid4().hex[:6]
    begun = time.monotonic()
    # PostgreSQL, as on RDS: each service's writes do not queue behind one file lock.
    async with shop_system(private_broker.url, tmp_path, kind="postgresql") as shop:
        await shop.products()
        load = Load()
        placing = asyncio.create_task(shop.place(range(ORDERS), run, concurrency=32, load=load))
        try:
            figures = await _restart_twice(shop, private_broker, load, ORDERS, run)
        finally:
            if not placing.done():
                await asyncio.wait([placing], timeout=300)
        load = await placing
        assert not load.failures, load.failures[:5]
        assert len(load.placed) == ORDERS + 2  # and the two probes
        totals = await shop.check_invariants(load, run)
        print(
            f"\nRELIABILITY restart {type(private_broker).__name__} orders={ORDERS} "
            f"placing={load.seconds:.1f}s retried={load.retried} "
            f"total={time.monotonic() - begun:.1f}s "
            f"restarts={figures} totals={totals}"
        )
