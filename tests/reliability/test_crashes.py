"""Process crashes: kill -9 a consumer service mid-batch, and the orders service while its
outbox relay still has committed events to publish; restarted, the shop ends with the same
invariants as without the crash (nothing lost, nothing done twice)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.support import RABBIT
from tests.reliability.system import Load, shop_system


async def _unpublished(database_url: str) -> int:
    """Outbox rows not yet published (the relay deletes a row once the broker confirmed it)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill_minus_nine_of_payments_and_orders_loses_nothing(tmp_path):
    """payments killed mid-batch and orders killed right after a burst (events committed, not
    yet all published) are restarted; every order ends terminal with exactly one payment,
    one notification, each event audited once and stock conserved."""
    run = uuid.uuid4().hex[:6]
    async with shop_system(RABBIT, tmp_path, kind="postgresql") as shop:
        await shop.products()
        load = Load()

        # 1. A consumer dies mid-batch: payments, while OrderPlaced events stream in.
        placing = asyncio.create_task(shop.place(range(600), run, concurrency=32, load=load))
        while len(load.placed) < 200:
            await asyncio.sleep(0.05)
        await shop.kill("payments")
        await asyncio.sleep(1.0)
        payments_back = await shop.restart("payments")
        await placing

        # 2. orders dies between commit and publish: right after a burst of CreateOrder, while
        # its relay still has outbox rows to send.
        await shop.place(range(600, 900), run, concurrency=32, load=load)
        await shop.kill("orders")
        database_url = shop.environments["orders"]["DATABASE_URL"]
        pending_at_kill = await _unpublished(database_url)
        started = time.monotonic()
        orders_back = await shop.restart("orders")
        await shop.place(range(900, 1000), run, concurrency=32, load=load)

        assert not load.failures, load.failures[:5]
        assert len(load.placed) == 1000
        totals = await shop.check_invariants(load, run)
        print(
            f"\nRELIABILITY crashes: payments restart {payments_back:.1f}s, orders restart "
            f"{orders_back:.1f}s, outbox rows at kill={pending_at_kill}, "
            f"retried={load.retried}, settled {time.monotonic() - started:.1f}s after restart, "
            f"totals={totals}"
        )
