"""One short SQLite write transaction through each layer of the services' store, same run.

    .venv/bin/python bench/sqlite_transaction.py [--rounds 5] [--transactions 2000]

Each transaction is what audit does per event: ``BEGIN IMMEDIATE``, one ``INSERT ... ON
CONFLICT DO NOTHING`` into its trail table (9 columns, two indexes; the table of
``services/audit/store.py``), ``COMMIT``; WAL mode, ``synchronous=NORMAL``, a fresh database
file per side.

* sqlite3: the standard library's module, synchronous (the floor: SQLite's own work).
* aiosqlite: the same three statements through aiosqlite (a round trip to its worker thread
  each), no SQLAlchemy.
* engine: the services' engine (``services.common.store.create_engine``) and
  ``insert_ignore``, as every service runs them: SQLAlchemy's asyncio layer and its aiosqlite
  dialect over a connection that runs SQLite on the loop's thread
  (``services/common/_inline_sqlite.py``; until the seventh session, aiosqlite's own).
* engine, naive: SQLAlchemy over aiosqlite the way its documentation's recipe has it and the
  services did before the sixth session: ``BEGIN IMMEDIATE`` through ``exec_driver_sql`` in the
  ``begin`` event, the pool's rollback on every return, and the statement built with
  ``insert().values(...)`` per transaction.

CPU per transaction (``time.process_time``, every thread) is the figure that matters: the rate
is one transaction at a time, so it also counts the thread hand-offs' wake-up latency.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from _util import Row, alternate, median, report
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from services.audit.store import metadata, trail
from services.common.store import create_engine, create_schema, insert_ignore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

DDL = (
    str(CreateTable(trail).compile(dialect=sqlite.dialect())),
    *(str(CreateIndex(index).compile(dialect=sqlite.dialect())) for index in trail.indexes),
)
INSERT = "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=30000")


def row() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": uuid.uuid4().hex,
        "type": "shop.orders.v1.OrderPlaced",
        "source": "//orders",
        "subject": "order-1",
        "time": now,
        "recorded_at": now,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "data": {"order_id": "order-1", "total": 1999},
        "data_schema": "schemas/OrderPlaced/v1.avsc",
    }


def params(values: dict[str, Any]) -> tuple[Any, ...]:
    return (
        values["event_id"],
        values["type"],
        values["source"],
        values["subject"],
        values["time"].isoformat(),
        values["recorded_at"].isoformat(),
        values["trace_id"],
        '{"order_id": "order-1", "total": 1999}',
        values["data_schema"],
    )


def naive_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(
        url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=30
    )

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--transactions", type=int, default=2000)
    args = parser.parse_args()
    count = args.transactions

    tmp = tempfile.TemporaryDirectory()
    folder = Path(tmp.name)

    plain = sqlite3.connect(folder / "sqlite3.db", isolation_level=None)
    for statement in (*PRAGMAS, *DDL):
        plain.execute(statement)

    threaded = await aiosqlite.connect(folder / "aiosqlite.db", isolation_level=None)
    for statement in (*PRAGMAS, *DDL):
        await threaded.execute(statement)

    ours = create_engine(f"sqlite+aiosqlite:///{folder / 'engine.db'}")
    await create_schema(ours, metadata)
    naive = naive_engine(f"sqlite+aiosqlite:///{folder / 'naive.db'}")
    await create_schema(naive, metadata)

    async def with_sqlite3() -> None:
        plain.execute("BEGIN IMMEDIATE")
        plain.execute(INSERT, params(row()))
        plain.execute("COMMIT")

    async def with_aiosqlite() -> None:
        await threaded.execute("BEGIN IMMEDIATE")
        await threaded.execute(INSERT, params(row()))
        await threaded.commit()

    async def with_engine() -> None:
        async with ours.begin() as conn:
            await insert_ignore(conn, trail, row())

    async def with_naive() -> None:
        async with naive.begin() as conn:
            await conn.execute(sqlite.insert(trail).values(row()).on_conflict_do_nothing())

    cpu: dict[str, list[float]] = {}

    def side(name: str, transaction: Callable[[], Awaitable[None]]) -> Callable[[], Any]:
        async def run() -> float:
            used = time.process_time()
            started = time.perf_counter()
            for _ in range(count):
                await transaction()
            elapsed = time.perf_counter() - started
            cpu.setdefault(name, []).append((time.process_time() - used) / count * 1e6)
            return count / elapsed

        return run

    sides = {
        "sqlite3": side("sqlite3", with_sqlite3),
        "aiosqlite": side("aiosqlite", with_aiosqlite),
        "engine": side("engine", with_engine),
        "naive": side("naive", with_naive),
    }
    try:
        await alternate(1, sides)  # warm-up round, discarded
        cpu.clear()
        results = await alternate(args.rounds, sides)
    finally:
        plain.close()
        await threaded.close()
        await ours.dispose()
        await naive.dispose()
        tmp.cleanup()

    m = {name: median(values) for name, values in results.items()}
    c = {name: median(values) for name, values in cpu.items()}
    report(
        "One SQLite write transaction (BEGIN IMMEDIATE, INSERT, COMMIT)",
        [
            Row(
                "CPU per transaction, services' engine vs naive SQLAlchemy",
                c["engine"],
                c["naive"],
                1.0,
                unit="us",
                theirs_name="naive",
                lower_is_better=True,
            ),
        ],
        f"{count} transactions x {args.rounds} rounds, one at a time; medians. Transactions/s: "
        + ", ".join(f"{name} {m[name]:,.0f}" for name in sides)
        + ". CPU per transaction (this process, both threads): "
        + ", ".join(f"{name} {c[name]:,.0f} us" for name in sides)
        + ".",
    )


if __name__ == "__main__":
    asyncio.run(main())
