"""aiosqlite's connection interface over a ``sqlite3`` connection used on the event loop's own
thread, for SQLAlchemy's ``sqlite+aiosqlite`` dialect (handed over through ``async_creator``).

aiosqlite runs every call in a worker thread: each statement SQLAlchemy executes is three or
four round trips there (cursor, execute, fetch, close), each a queue hand-off, a thread wake-up
and a wake-up of the loop back. For the services' short transactions those trips cost ten
times what SQLite does (``bench/sqlite_transaction.py``: ~60 us of SQLite work in a ~900 us
transaction). Here each call runs where it is awaited: the loop waits for SQLite's own work
(tens of microseconds for the services' statements, on a local file in WAL mode with
``synchronous=NORMAL``, so a commit does not wait for the disk) instead of paying the trips.

Nor does a WAL checkpoint (copying the log into the database file, with an fsync) run on the
loop: a commit schedules one for ``checkpoint_after`` seconds later, run on a connection of its
own in a worker thread. Left to SQLite, every commit that takes the log past 1,000 pages
checkpoints there and then: 5-7 ms on the loop once in ~200 one-insert transactions here. The
checkpoint is a RESTART one: writers wait while it runs (in the retry below, the loop free),
so the next writer starts the log over; after a PASSIVE one, never waited for, the log starts
over only if no commit came in while it ran, so under steady writes it would keep growing.

What must not block the loop either is waiting for *another process's* lock: the connection is
opened with no busy timeout, so SQLite answers "database is locked" at once, and the statement
is run again after an ``asyncio.sleep`` (1 ms, doubling to 50 ms) until ``busy_timeout`` has
passed. A statement that returns SQLITE_BUSY has done nothing, so running it again is safe.
Only a statement outside a transaction waits so (with every transaction begun by ``BEGIN
IMMEDIATE``, in practice the BEGIN): inside one, the answer is an error at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Sequence
    from types import TracebackType

__all__ = ["InlineConnection", "connect"]

_T = TypeVar("_T")
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


_log = logging.getLogger(__name__)


def connect(path: str, *, busy_timeout: float, checkpoint_after: float = 1.0) -> InlineConnection:
    """Open ``path`` (autocommit: transactions are begun by explicit statements)."""
    # Not bound to this thread: SQLAlchemy's pool may close a connection from a finalizer.
    raw = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    return InlineConnection(
        raw, busy_timeout=busy_timeout, path=path, checkpoint_after=checkpoint_after
    )


def _checkpoint(path: str) -> None:
    """Copy ``path``'s write-ahead log into the database (runs in a worker thread; waits up to
    a second for a transaction in progress to end)."""
    connection = sqlite3.connect(path, timeout=1.0, check_same_thread=False)
    try:
        connection.execute("PRAGMA wal_checkpoint(RESTART)")
    finally:
        connection.close()


async def _retrying(
    connection: sqlite3.Connection, call: Callable[[], _T], busy_timeout: float
) -> _T:
    """``call()``, again after a pause while another process holds the lock it needs.

    Only outside a transaction (the BEGIN, or a statement on its own): inside one, a busy
    answer means a lock it cannot get without the other side giving way, and the transaction
    has to be rolled back, not waited on."""
    deadline: float | None = None
    pause = _FIRST_PAUSE
    while True:
        idle = not connection.in_transaction
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not idle or exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + busy_timeout
            if now >= deadline:
                raise
            await asyncio.sleep(min(pause, deadline - now))
            pause = min(pause * 2, _LONGEST_PAUSE)


class InlineCursor:
    """aiosqlite's ``Cursor``: each coroutine runs the ``sqlite3`` call at once."""

    __slots__ = ("_busy_timeout", "_cursor")

    def __init__(self, cursor: sqlite3.Cursor, busy_timeout: float) -> None:
        self._cursor = cursor
        self._busy_timeout = busy_timeout

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Self:
        cursor = self._cursor
        await _retrying(
            cursor.connection, lambda: cursor.execute(sql, parameters), self._busy_timeout
        )
        return self

    async def executemany(
        self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]
    ) -> Self:
        rows = list(parameters)  # a generator could not be run twice
        cursor = self._cursor
        await _retrying(
            cursor.connection, lambda: cursor.executemany(sql, rows), self._busy_timeout
        )
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        for row in self._cursor:
            yield row

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _CursorOpening:
    """What aiosqlite's ``Connection.cursor()`` returns: awaitable, or an async context."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: InlineCursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Any:
        return self._cursor.__aenter__().__await__()

    async def __aenter__(self) -> InlineCursor:
        return self._cursor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cursor.close()


class InlineConnection:
    """aiosqlite's ``Connection``, as far as SQLAlchemy's dialect and the services use it."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        busy_timeout: float,
        path: str = ":memory:",
        checkpoint_after: float = 1.0,
    ) -> None:
        self._conn = connection
        self._busy_timeout = busy_timeout
        self._path = path
        self._checkpoint_after = checkpoint_after
        self._checkpoint_due: asyncio.TimerHandle | None = None
        self._checkpointing = False
        self._closed = False

    def cursor(self) -> _CursorOpening:
        return _CursorOpening(InlineCursor(self._live.cursor(), self._busy_timeout))

    async def execute(
        self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()
    ) -> InlineCursor:
        cursor = InlineCursor(self._live.cursor(), self._busy_timeout)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        self._live.commit()
        if self._checkpoint_due is None and self._path != ":memory:":
            loop = asyncio.get_running_loop()
            self._checkpoint_due = loop.call_later(self._checkpoint_after, self._checkpoint, loop)

    def _checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed:
            return
        if self._checkpointing:  # the last one is still running: come back later
            self._checkpoint_due = loop.call_later(self._checkpoint_after, self._checkpoint, loop)
            return
        self._checkpoint_due = None
        try:
            running = loop.run_in_executor(None, _checkpoint, self._path)
        except RuntimeError:
            # The loop's executor is shut down: ``asyncio.run`` is ending with this engine never
            # disposed. SQLite's own checkpoints (wal_autocheckpoint) and the next opening of
            # the file take over the log; nothing is lost.
            return
        self._checkpointing = True
        running.add_done_callback(self._checkpointed)

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = False
        if not done.cancelled() and done.exception() is not None:
            # SQLite checkpoints on commit anyway once the log is long (the engine's
            # wal_autocheckpoint): a failed background checkpoint delays, loses nothing.
            _log.warning("WAL checkpoint of %s failed: %s", self._path, done.exception())

    async def rollback(self) -> None:
        self._live.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's ``terminate``)."""
        if not self._closed:
            self._closed = True
            if self._checkpoint_due is not None:
                self._checkpoint_due.cancel()
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live.create_function(*args, **kwargs)

    async def set_trace_callback(self, handler: Callable[[str], object] | None) -> None:
        self._live.set_trace_callback(handler)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def _connection(self) -> sqlite3.Connection | None:
        # aiosqlite's attribute, which SQLAlchemy's dialect reads to tell an open connection.
        return None if self._closed else self._conn

    @property
    def _live(self) -> sqlite3.Connection:
        if self._closed:
            # aiosqlite's words: SQLAlchemy's dialect recognizes them as a closed connection.
            raise ValueError("no active connection")
        return self._conn
