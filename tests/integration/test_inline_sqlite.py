"""SQLite on the event loop's thread (``services/common/_inline_sqlite.py``): waiting for
another process's write lock must not block the loop, and gives up after the busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select

from services.common import _inline_sqlite as inline_sqlite
from services.common.store import create_engine, create_schema, insert_ignore

if TYPE_CHECKING:
    from pathlib import Path

metadata = MetaData()
counts = Table("counts", metadata, Column("id", Integer, primary_key=True))


def _other_writer(path: Path) -> sqlite3.Connection:
    """Another connection (as another process's would be) holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def _ticks_while(work: asyncio.Task[object]) -> int:
    """How often a 5 ms ticker ran on the loop while ``work`` was pending."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.005)
        ticks += 1
    return ticks


async def test_a_transaction_waits_for_another_writer_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """The transaction begins once the other writer commits, and the loop ran meanwhile."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/service.db")
    await create_schema(engine, metadata)
    other = _other_writer(tmp_path / "service.db")
    try:

        async def write() -> None:
            async with engine.begin() as conn:
                await insert_ignore(conn, counts, {"id": 1})

        work = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        assert not work.done()  # waiting for the lock
        asyncio.get_running_loop().call_later(0.1, other.commit)
        ticks = await _ticks_while(work)
        await work
        assert ticks >= 10  # the loop kept running: 5 ms ticks over ~100 ms
        async with engine.connect() as conn:
            assert (await conn.execute(select(counts.c.id))).scalars().all() == [1]
    finally:
        other.close()
        await engine.dispose()


async def test_waiting_for_the_lock_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    """SQLite's "database is locked", as its own busy handler ends, after about the timeout."""
    path = tmp_path / "locked.db"
    sqlite3.connect(path).close()
    other = _other_writer(path)
    connection = inline_sqlite.connect(str(path), busy_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.execute("BEGIN IMMEDIATE")
        assert 0.3 <= time.monotonic() - started < 1.0
        assert not connection.in_transaction
    finally:
        other.close()
        await connection.close()


async def test_a_busy_answer_inside_a_transaction_is_an_error_at_once(tmp_path: Path) -> None:
    """A deferred transaction that read and then finds the write lock taken cannot get it by
    waiting: the error comes at once, for the caller to roll back."""
    path = tmp_path / "upgrade.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    setup.close()
    connection = inline_sqlite.connect(str(path), busy_timeout=5)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await connection.execute("BEGIN")
        await (await connection.execute("SELECT count(*) FROM t")).fetchall()
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.execute("INSERT INTO t VALUES (1)")
        assert time.monotonic() - started < 0.5
        await connection.rollback()
    finally:
        other.close()
        await connection.close()


async def test_a_closed_connection_says_so(tmp_path: Path) -> None:
    connection = inline_sqlite.connect(str(tmp_path / "closed.db"), busy_timeout=1)
    await connection.close()
    await connection.close()  # closing twice is safe
    with pytest.raises(ValueError, match="no active connection"):
        await connection.execute("SELECT 1")


def _rows_in_database_file(path: Path) -> int:
    """Rows of ``t`` in the database file itself, the write-ahead log ignored: what a
    checkpoint has copied there."""
    reader = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(reader.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.OperationalError:  # not even the table is there yet
        return 0
    finally:
        reader.close()


async def test_commits_leave_the_checkpoint_to_a_worker_thread(tmp_path: Path) -> None:
    """Committing does not copy the log into the database file (no checkpoint on the loop);
    a worker thread does, shortly after."""
    path = tmp_path / "wal.db"
    connection = inline_sqlite.connect(str(path), busy_timeout=1, checkpoint_after=0.5)
    try:
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA wal_autocheckpoint=1")  # SQLite's own: every commit
        await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        # A checkpoint SQLite ran on commit would show in the file at once: it must not.
        await connection.execute("PRAGMA wal_autocheckpoint=0")
        for i in range(50):
            await connection.execute("BEGIN IMMEDIATE")
            await connection.execute("INSERT INTO t VALUES (?)", (i,))
            await connection.commit()
        assert _rows_in_database_file(path) == 0
        await asyncio.sleep(1.0)
        assert _rows_in_database_file(path) == 50
    finally:
        await connection.close()


async def test_a_checkpoint_due_after_the_executor_shut_down_is_left_to_sqlite(
    tmp_path: Path,
) -> None:
    """An engine never disposed, its checkpoint timer due while ``asyncio.run`` shuts the
    executor down: the checkpoint is skipped quietly (no error from the loop), the rows stay."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    path = tmp_path / "late.db"
    connection = inline_sqlite.connect(str(path), busy_timeout=1, checkpoint_after=0.05)
    try:
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        await connection.execute("INSERT INTO t VALUES (1)")
        await connection.commit()
        await loop.shutdown_default_executor()
        await asyncio.sleep(0.2)
        assert errors == []
        rows = await (await connection.execute("SELECT count(*) FROM t")).fetchone()
        assert rows == (1,)
    finally:
        loop.set_exception_handler(None)
        await connection.close()
