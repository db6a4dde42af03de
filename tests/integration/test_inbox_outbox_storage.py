"""Outbox and inbox tables on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Column, MetaData, String, Table, func, select

from broker import Broker, EncodeError, Event, SchemaRegistry
from broker.inbox import Inbox, idempotent, inbox_table
from broker.outbox import Outbox, outbox_table
from tests.support.databases import DATABASES, fresh_database

ORDER_PLACED = "shop.orders.v1.OrderPlaced"


@pytest.fixture(params=DATABASES)
async def db(request, tmp_path):
    async with fresh_database(request.param, tmp_path) as (_url, engine):
        yield engine


def _tables():
    metadata = MetaData()
    state = Table("state", metadata, Column("id", String(50), primary_key=True))
    return metadata, state, outbox_table(metadata), inbox_table(metadata)


async def test_inbox_records_each_event_once_per_consumer(db):
    """The first record of an id is new; the same id again is a duplicate; another consumer
    records it independently."""
    metadata, _state, _outbox, table = _tables()
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    payments, audit = Inbox(table, "payments"), Inbox(table, "audit")
    async with db.begin() as conn:
        assert await payments.record(conn, "e-1") is True
    async with db.begin() as conn:
        assert await payments.record(conn, "e-1") is False
        assert await audit.record(conn, "e-1") is True


async def test_idempotent_handler_rolls_back_inbox_with_a_failed_effect(db):
    """A handler failure rolls back its inbox row too, so the retry runs the effect; a
    duplicate after success has no second effect."""
    metadata, state, _outbox, table = _tables()
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    inbox = Inbox(table, "payments")
    calls = {"n": 0}

    async def effect(event, conn):
        calls["n"] += 1
        await conn.execute(state.insert().values(id=event.id))
        if calls["n"] == 1:
            raise RuntimeError("crash after the effect, before commit")

    handler = idempotent(db, inbox, effect)
    event = Event(type=ORDER_PLACED, data={}, source="//t", id="e-42")
    with pytest.raises(RuntimeError):
        await handler(event)
    await handler(event)
    await handler(event)
    async with db.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(state))).scalar_one()
    assert calls["n"] == 2
    assert rows == 1


async def test_concurrent_duplicates_apply_once(db):
    """Two deliveries of one event handled at the same time produce one effect."""
    metadata, state, _outbox, table = _tables()
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    inbox = Inbox(table, "payments")

    async def effect(event, conn):
        await conn.execute(state.insert().values(id=f"{event.id}-{id(conn)}"))

    handler = idempotent(db, inbox, effect)
    event = Event(type=ORDER_PLACED, data={}, source="//t", id="e-7")
    results = await asyncio.gather(handler(event), handler(event), return_exceptions=True)
    async with db.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(state))).scalar_one()
    assert rows == 1, results


async def test_outbox_add_stores_encoded_event_and_trace_context(db, tmp_path):
    """outbox.add validates and encodes in the caller's transaction, keeping the current
    trace context; an invalid record fails the transaction and stores nothing."""
    metadata, state, table, _inbox = _tables()
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    broker = Broker("amqp://127.0.0.1:5672/", source="//orders", registry=_registry(tmp_path))
    outbox = Outbox(table, broker)
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("CreateOrder") as span:
        async with db.begin() as conn:
            await conn.execute(state.insert().values(id="o-1"))
            await outbox.add(conn, broker.event(ORDER_PLACED, {"order_id": "o-1"}, subject="o-1"))

    async def write_invalid() -> None:
        async with db.begin() as conn:
            await conn.execute(state.insert().values(id="o-2"))
            await outbox.add(conn, broker.event(ORDER_PLACED, {"order_id": 2}))

    with pytest.raises(EncodeError, match="order_id"):
        await write_invalid()
    async with db.connect() as conn:
        rows = (await conn.execute(select(table))).mappings().all()
        states = (await conn.execute(select(state.c.id))).scalars().all()
    assert states == ["o-1"]
    assert len(rows) == 1
    row = rows[0]
    assert row["event_type"] == ORDER_PLACED
    assert bytes(row["body"])[:2] == b"\xc3\x01"
    assert row["attributes"]["subject"] == "o-1"
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert row["trace_context"]["traceparent"].split("-")[1] == trace_id


def _registry(tmp_path):
    folder = tmp_path / "schemas" / "orders" / "OrderPlaced"
    folder.mkdir(parents=True)
    (folder / "v1.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "OrderPlaced",
                "namespace": "shop.orders.v1",
                "fields": [{"name": "order_id", "type": "string"}],
            }
        )
    )
    return SchemaRegistry.from_directory(tmp_path / "schemas")
