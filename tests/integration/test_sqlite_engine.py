"""The services' SQLite engine (``services.common.store.create_engine``): the statements SQLite
sees for a transaction, and a connection given back to the pool in a transaction."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from services.common.store import create_engine, create_schema, insert_ignore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(50), nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/service.db")
    await create_schema(engine, metadata)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _traced(engine: AsyncEngine) -> list[str]:
    """The statements SQLite runs on the engine's one connection from now on."""
    seen: list[str] = []
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        await raw.driver_connection.set_trace_callback(seen.append)
        await conn.rollback()
    seen.clear()
    return seen


async def test_a_transaction_is_begin_immediate_its_statements_and_commit(
    engine: AsyncEngine,
) -> None:
    """The write lock is taken at BEGIN; an insert that finds its key taken is an answer,
    not an error, and the transaction commits."""
    seen = await _traced(engine)
    async with engine.begin() as conn:
        assert await insert_ignore(conn, notes, {"id": 1, "text": "one"})
        assert not await insert_ignore(conn, notes, {"id": 1, "text": "again"})
    assert seen[0] == "BEGIN IMMEDIATE"
    assert [s.split()[0] for s in seen[1:]] == ["INSERT", "INSERT", "COMMIT"]


async def test_a_failed_transaction_is_rolled_back_once(engine: AsyncEngine) -> None:
    seen = await _traced(engine)

    async def failing() -> None:
        async with engine.begin() as conn:
            await insert_ignore(conn, notes, {"id": 2, "text": "two"})
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await failing()
    assert [s.split()[0] for s in seen] == ["BEGIN", "INSERT", "ROLLBACK"]
    async with engine.connect() as conn:
        assert (await conn.execute(select(notes))).all() == []


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(
    engine: AsyncEngine,
) -> None:
    """A transaction begun behind SQLAlchemy's back (on the driver) and left open when the
    connection goes back to the pool is rolled back there: the next transaction can begin,
    and the abandoned write is gone."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await conn.commit()
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO notes (id, text) VALUES (3, 'abandoned')")
        assert driver.in_transaction
    async with asyncio.timeout(5), engine.begin() as conn:
        await insert_ignore(conn, notes, {"id": 4, "text": "four"})
    async with engine.connect() as conn:
        rows = (await conn.execute(select(notes.c.id))).scalars().all()
    assert rows == [4]


def test_a_sqlite_url_with_options_is_refused(tmp_path: Path) -> None:
    """The engine opens the file itself, so ``?options`` would be dropped silently: refused."""
    with pytest.raises(ValueError, match="a SQLite URL takes a path only"):
        create_engine(f"sqlite+aiosqlite:///{tmp_path}/service.db?mode=ro")
