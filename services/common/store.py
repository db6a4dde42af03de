"""The database every service owns: an async engine from ``DATABASE_URL`` and its schema.

SQLite (the default, a file under ``var/``) is opened in WAL mode and run on the event loop's
own thread (``_inline_sqlite.py``: aiosqlite's thread hand-offs cost ten times what SQLite does
for a short transaction), waiting up to ``BUSY_TIMEOUT_MS`` for another process's write lock
without blocking the loop. Every transaction starts with ``BEGIN IMMEDIATE``: SQLite allows
one writer, and a deferred transaction that reads first and writes later fails at once with
"database is locked" when another writer got there in between (waiting cannot help a lock
*upgrade*). Taking the write lock at BEGIN makes transactions queue instead, and they queue in
the process: the engine has one connection, which SQLAlchemy's pool hands to the next waiting
transaction the moment one ends. (With a pool of several, they queued in SQLite's busy
handler, which sleeps between retries in steps of up to 100 ms, so a waiter woke late, and
under load the pool's overflow connections were opened and closed again: the saga ran ~20%
slower at ~15% more CPU per order, docs/benchmarks-history.md.) So a transaction must not open
another one while it is open: on SQLite that could never work (the second waits for the
first's lock).
PostgreSQL (asyncpg) runs at READ COMMITTED; the stores use conditional updates and unique
constraints there, so they need no stronger isolation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, make_url
from sqlalchemy.exc import IntegrityError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broker.inbox import insert_ignore
from services.common import _inline_sqlite as inline_sqlite

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from services.common._inline_sqlite import InlineConnection

__all__ = [
    "BUSY_TIMEOUT_MS",
    "PING_AFTER_IDLE_S",
    "create_engine",
    "create_schema",
    "insert_ignore",
    "is_conflict",
]

BUSY_TIMEOUT_MS = 30_000
_WAL_BACKSTOP_PAGES = 10_000
PING_AFTER_IDLE_S = 10.0
"""A pooled PostgreSQL connection unused for this long is pinged before it is handed out."""

_RETURNED_AT = "shopmq_returned_at"


def create_engine(
    url: str, *, pool_size: int = 5, ping_after_idle: float = PING_AFTER_IDLE_S
) -> AsyncEngine:
    """An engine for ``url`` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``).

    A PostgreSQL connection that sat in the pool for ``ping_after_idle`` seconds or more is
    pinged when it is handed out, and replaced (with every connection older than it) if the
    server has dropped it; one in use within that time is not. SQLAlchemy's ``pool_pre_ping``
    pings on every checkout: a round trip per transaction, ~16% of orders' event-loop time in
    the saga on PostgreSQL (docs/benchmarks-history.md). The price: a connection the server dropped
    less than ``ping_after_idle`` seconds after its last use (a database restart under load)
    fails the one transaction that gets it, and the pool then replaces every older connection,
    as it does for a connection lost mid-transaction anyway."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_after_idle(engine, ping_after_idle)
    return engine


def _ping_after_idle(engine: AsyncEngine, idle: float) -> None:
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def on_checkin(_: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _: Any) -> None:
        returned = record.info.get(_RETURNED_AT)  # none yet: a new connection
        if returned is None or time.monotonic() - returned < idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if not dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            # The pool connects anew, and retires every connection older than this one.
            raise InvalidatePoolError(f"connection dropped while idle: {exc}") from exc


def _sqlite_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.query:
        # The file is opened here (below), not by SQLAlchemy's dialect: options would be lost.
        raise ValueError(f"{url!r}: a SQLite URL takes a path only, no ?options")
    path = parsed.database or ":memory:"
    pooling: dict[str, Any] = {}  # an in-memory database keeps SQLAlchemy's static pool
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection, handed from one transaction to the next (the module's docstring).
        pooling = {"pool_size": 1, "max_overflow": 0, "pool_timeout": BUSY_TIMEOUT_MS / 1000}

    async def connect() -> InlineConnection:
        # SQLite on the loop's thread, not aiosqlite's (services/common/_inline_sqlite.py).
        return inline_sqlite.connect(path, busy_timeout=BUSY_TIMEOUT_MS / 1000)

    engine = create_async_engine(
        url,
        async_creator=connect,
        # Rolled back on return only when a transaction is still open (``on_reset``).
        pool_reset_on_return=None,
        **pooling,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _: Any) -> None:
        # Opened in autocommit mode: SQLAlchemy, not the sqlite3 module, decides when
        # transactions begin (below). No busy_timeout: the connection waits for another
        # process's lock without blocking the loop.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run in a worker thread a second after commits (_inline_sqlite.py); this
        # many pages in the log makes a commit checkpoint itself, should those fall behind.
        cursor.execute(f"PRAGMA wal_autocheckpoint={_WAL_BACKSTOP_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # BEGIN goes to the driver directly (through SQLAlchemy it would be a cursor opened,
    # executed and closed), and a connection coming back to the pool is rolled back only if
    # it is still in a transaction (one that committed or rolled back is not: the pool's
    # default would roll it back regardless).

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.connection.dbapi_connection.run_async(_begin_immediate)

    @event.listens_for(engine.sync_engine, "reset")
    def on_reset(dbapi_connection: Any, record: Any, state: Any) -> None:
        driver = record.driver_connection
        usable = state.asyncio_safe and not state.terminate_only and driver is not None
        if usable and driver.in_transaction:
            dbapi_connection.rollback()

    return engine


async def _begin_immediate(driver: Any) -> None:
    await driver.execute("BEGIN IMMEDIATE")


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create the service's tables and indexes that do not exist yet (start-up migration)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a unique-constraint conflict (a concurrent writer won)."""
    return isinstance(exc, IntegrityError)
