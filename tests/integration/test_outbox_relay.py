"""The outbox relay publishes committed rows through a real broker: after a crash between commit
and publish, in insertion order, and as a child of the writing request's trace."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import MetaData, func, select

from broker import Broker, PublishError, SchemaRegistry
from broker.outbox import Outbox, OutboxRelay, outbox_table
from services.common.store import create_engine
from tests.support.databases import DATABASES, fresh_database
from tests.support.names import unique_hex

RABBIT = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(params=DATABASES)
async def db(request, tmp_path):
    async with fresh_database(request.param, tmp_path) as (_url, engine):
        yield engine


@pytest.fixture
def registry(tmp_path):
    namespace = f"relay.t{uuid.uuid4().hex[:10]}.v1"
    folder = tmp_path / "schemas" / "Step"
    folder.mkdir(parents=True)
    (folder / "v1.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "Step",
                "namespace": namespace,
                "fields": [{"name": "n", "type": "int"}],
            }
        )
    )
    return SchemaRegistry.from_directory(tmp_path / "schemas")


async def _count(db, table):
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_rows_written_while_relay_is_down_are_published_in_order(db, registry):
    """Rows committed with no relay running (a crash after commit) are published once a relay
    starts, in insertion order, and removed from the table."""
    event_type = registry.names[0]
    metadata = MetaData()
    table = outbox_table(metadata)
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    group = f"relay{unique_hex()}"
    received: list[int] = []

    async def handler(event):
        received.append(event.data["n"])

    async with Broker(
        RABBIT, source="//orders", registry=registry, name="relay-test", tracer_provider=provider
    ) as broker:
        await broker.subscribe(group, [event_type], handler, prefetch=1, concurrency=1)
        outbox = Outbox(table, broker)
        with tracer.start_as_current_span("CreateOrder") as request:
            for n in range(50):
                async with db.begin() as conn:
                    await outbox.add(conn, broker.event(event_type, {"n": n}))
        assert await _count(db, table) == 50

        relay = OutboxRelay(db, broker, table, batch_size=20, poll_interval=0.05)
        await relay.start()
        for _ in range(200):
            if len(received) == 50:
                break
            await asyncio.sleep(0.05)
        await relay.stop()
        assert received == list(range(50))
        assert await _count(db, table) == 0
        assert relay.published == 50
        assert await relay.backlog() == (0, None)

    producers = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert len(producers) == 50
    request_ctx = request.get_span_context()
    assert {s.context.trace_id for s in producers} == {request_ctx.trace_id}
    assert {s.parent.span_id for s in producers} == {request_ctx.span_id}


async def test_relay_keeps_rows_while_the_broker_is_unreachable(db, registry):
    """With the broker gone, publishing fails and the rows stay for a later attempt."""
    event_type = registry.names[0]
    metadata = MetaData()
    table = outbox_table(metadata)
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    broker = Broker(
        RABBIT, source="//orders", registry=registry, name="relay-down", publish_timeout=1.0
    )
    await broker.start()
    outbox = Outbox(table, broker)
    async with db.begin() as conn:
        await outbox.add(conn, broker.event(event_type, {"n": 1}))
    await broker.close()
    relay = OutboxRelay(db, broker, table)
    with pytest.raises(PublishError, match="not running"):
        await relay.flush()
    count, age = await relay.backlog()
    assert count == 1
    assert age is not None
    assert age >= 0


@pytest.fixture(params=DATABASES)
async def service_db(request, tmp_path):
    """An engine as the services make it (on SQLite: one connection, BEGIN IMMEDIATE)."""
    async with fresh_database(request.param, tmp_path) as (url, _engine):
        engine = create_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()


async def test_the_database_is_free_while_a_batch_awaits_its_confirms(service_db, registry):
    """While the relay waits for the broker, the service's own transactions go on: on SQLite
    the rows are read and deleted in two short transactions, on PostgreSQL only the batch's
    rows stay locked. A row written meanwhile is published by the next batch."""
    db = service_db
    event_type = registry.names[0]
    metadata = MetaData()
    table = outbox_table(metadata)
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with Broker(RABBIT, source="//orders", registry=registry, name="relay-gate") as broker:

        async def ignore(event):
            pass

        await broker.subscribe(f"relay{unique_hex()}", [event_type], ignore)
        outbox = Outbox(table, broker)
        for n in range(3):
            async with db.begin() as conn:
                await outbox.add(conn, broker.event(event_type, {"n": n}))
        publishing, release = asyncio.Event(), asyncio.Event()
        publish = broker.publish_encoded

        async def gated(*args, **kwargs):
            publishing.set()
            await release.wait()  # the broker is slow to confirm
            await publish(*args, **kwargs)

        broker.publish_encoded = gated  # type: ignore[method-assign]
        relay = OutboxRelay(db, broker, table)
        flushing = asyncio.create_task(relay.flush())
        await asyncio.wait_for(publishing.wait(), 5)

        async def write_meanwhile() -> None:
            async with db.begin() as conn:
                await outbox.add(conn, broker.event(event_type, {"n": 3}))

        await asyncio.wait_for(write_meanwhile(), 3)
        release.set()
        assert await asyncio.wait_for(flushing, 10) == 3
        assert await _count(db, table) == 1
        assert await relay.flush() == 1
        assert await _count(db, table) == 0
