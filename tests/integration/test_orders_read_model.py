"""The orders read model is a projection: rebuilt from the event store, it is identical."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.common.store import create_engine, create_schema
from services.orders import store
from services.orders.domain import Line, Order, authorize, cancel, place
from tests.support.databases import DATABASES, fresh_database

AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("kind", DATABASES)
async def test_rebuilt_read_model_equals_the_projected_one(kind, tmp_path):
    """Summaries projected while appending equal those rebuilt from order_events alone."""
    async with fresh_database(kind, tmp_path) as (url, _engine):
        engine = create_engine(url)
        try:
            await create_schema(engine, store.metadata)
            async with engine.begin() as conn:
                for n in range(6):
                    events = place(
                        customer_id=f"c{n % 2}",
                        lines=[Line("A", n + 1, 100)],
                        currency="EUR",
                        payment_method_id="pm",
                        at=AT,
                    )
                    order = await store.append(conn, Order(f"o{n}"), events)
                    if n % 3 == 1:
                        order = await store.append(conn, order, authorize(order, "p", AT))
                    if n % 3 == 2:
                        await store.append(conn, order, cancel(order, "bye", AT))

            async def summaries():
                async with engine.connect() as conn:
                    query = select(store.order_summaries).order_by("order_id")
                    return [dict(r) for r in (await conn.execute(query)).mappings()]

            projected = await summaries()
            assert await store.rebuild_read_model(engine) == 6
            assert await summaries() == projected
            assert {r["status"] for r in projected} == {"PENDING", "CONFIRMED", "CANCELLED"}
        finally:
            await engine.dispose()
