"""Transactional outbox: events are written in the same database transaction as the state
change that caused them, and a relay publishes them with confirms afterwards.

So a broker outage, or a crash between commit and publish, loses nothing: the rows wait until
the relay can publish them (at-least-once; consumers deduplicate by event id through their
inbox). The trace context of the writing transaction is stored with each row, so the async hop
is a child of the request that caused it, not of the relay loop.

::

    outbox = Outbox(outbox_table(metadata), broker)
    async with engine.begin() as conn:
        await conn.execute(...)                          # the state change
        await outbox.add(conn, broker.event("shop.orders.v1.OrderPlaced", data, subject=oid))
    relay.notify()                                       # publish now rather than at next poll
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import propagate
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
)

from broker.errors import BrokerError
from broker.event import EncodedEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from broker._broker import Broker
    from broker.event import Event

__all__ = ["Outbox", "OutboxRelay", "outbox_table"]

_log = structlog.get_logger("broker.outbox")


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox table, added to the service's own ``metadata`` (created with its schema)."""
    return Table(
        name,
        metadata,
        # BigInteger on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("event_type", String(255), nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("attributes", JSON, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("trace_context", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


class Outbox:
    """Writes events into the outbox inside the caller's transaction."""

    def __init__(self, table: Table, broker: Broker) -> None:
        self.table = table
        self._broker = broker
        # One statement, the values bound at execution (SQLAlchemy finds its compiled form by
        # the statement's memoized cache key instead of building and keying one per event).
        self._insert = table.insert()

    async def add(self, conn: AsyncConnection, event: Event) -> EncodedEvent:
        """Validate, encode and insert ``event`` in ``conn``'s transaction.

        An invalid record raises :class:`~broker.errors.EncodeError` here, so the whole
        transaction fails rather than a broken event being published later."""
        encoded = self._broker.encode(event)
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        await conn.execute(
            self._insert,
            {
                "event_id": encoded.attributes["id"],
                "event_type": encoded.type,
                "body": encoded.body,
                "attributes": encoded.attributes,
                "headers": encoded.headers,
                "trace_context": carrier,
                "created_at": datetime.now(UTC),
            },
        )
        return encoded


class OutboxRelay:
    """Publishes outbox rows in insertion order, with confirms, then deletes them.

    Runs as a background task (:meth:`start` / :meth:`stop`); :meth:`notify` wakes it at once
    after a commit, and it also polls every ``poll_interval`` seconds so rows left by a crash
    or an outage are picked up. Several relays on one PostgreSQL database do not publish the
    same row twice concurrently (``FOR UPDATE SKIP LOCKED``, held while they are published). On
    SQLite, a single process's database, the rows are read and deleted in two short
    transactions with the publishing between them, so the process's other transactions do not
    wait for the broker's confirms."""

    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        table: Table,
        *,
        batch_size: int = 200,
        poll_interval: float = 0.5,
        retry_delay: float = 1.0,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._table = table
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retry_delay = retry_delay
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # Built once, the confirmed seqs bound at execution (a statement made per batch is
        # built and keyed again by SQLAlchemy each time; docs/services.md).
        self._next_rows = select(table).order_by(table.c.seq).limit(batch_size)
        self._next_rows_locked = self._next_rows.with_for_update(skip_locked=True)
        self._delete = delete(table).where(table.c.seq.in_(bindparam("b_seqs", expanding=True)))
        self.published = 0
        """Events published by this relay since it started."""

    def notify(self) -> None:
        """Ask the relay to publish now (call after committing rows)."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, *, flush: bool = True, timeout: float = 10.0) -> None:
        """Stop the loop; with ``flush``, first publish what is pending (bounded by
        ``timeout``; what is left stays in the table for the next start)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if flush:
            try:
                await asyncio.wait_for(self.flush(), timeout)
            except (TimeoutError, BrokerError, OSError) as exc:
                _log.warning("outbox not fully flushed at shutdown", error=str(exc))

    async def flush(self) -> int:
        """Publish every pending row now; return how many were published."""
        total = 0
        while True:
            count = await self._publish_batch()
            total += count
            if count < self._batch_size:
                return total

    async def backlog(self) -> tuple[int, float | None]:
        """Rows waiting, and the age in seconds of the oldest (for metrics and health)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.min(self._table.c.created_at)).select_from(
                        self._table
                    )
                )
            ).one()
        count, oldest = int(row[0]), row[1]
        if oldest is None:
            return count, None
        if oldest.tzinfo is None:  # SQLite returns naive datetimes
            oldest = oldest.replace(tzinfo=UTC)
        return count, (datetime.now(UTC) - oldest).total_seconds()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()
            try:
                await self.flush()
            except (BrokerError, OSError) as exc:
                _log.warning("outbox relay cannot publish; will retry", error=str(exc))
                await asyncio.sleep(self._retry_delay)
            except Exception:  # noqa: BLE001 - keep relaying whatever one batch hit
                _log.exception("outbox relay failed; will retry")
                await asyncio.sleep(self._retry_delay)

    async def _publish_batch(self) -> int:
        async with self._lock:
            if self._engine.dialect.name == "postgresql":
                # The rows stay locked while they are published, so another relay on the same
                # database skips them instead of publishing them too.
                async with self._engine.begin() as conn:
                    rows = (await conn.execute(self._next_rows_locked)).mappings().all()
                    done, failures = await self._publish_rows(rows)
                    if done:
                        await conn.execute(self._delete, {"b_seqs": done})
            else:
                # SQLite has one writer: holding its lock through the broker's confirms would
                # stall every other transaction of the process for that long. Its rows are
                # this process's alone (this lock keeps batches apart), so read, publish, then
                # delete in a second transaction; a crash in between publishes them again
                # (at-least-once, as any crash before the delete).
                async with self._engine.begin() as conn:
                    rows = (await conn.execute(self._next_rows)).mappings().all()
                done, failures = await self._publish_rows(rows)
                if done:
                    async with self._engine.begin() as conn:
                        await conn.execute(self._delete, {"b_seqs": done})
        if failures:
            raise failures[0]
        return len(done)

    async def _publish_rows(self, rows: Sequence[Any]) -> tuple[list[int], list[BaseException]]:
        """Publish ``rows``; the seqs of those confirmed, and the failures."""
        if not rows:
            return [], []
        started = time.perf_counter()
        # Started in seq order on one connection, so they reach the broker in that order;
        # confirms are awaited together (pipelined), not one round trip each.
        results = await asyncio.gather(
            *(self._publish_row(row) for row in rows), return_exceptions=True
        )
        done = [row["seq"] for row, result in zip(rows, results, strict=True) if result is None]
        self.published += len(done)
        failures = [r for r in results if isinstance(r, BaseException)]
        _log.debug(
            "outbox batch",
            published=len(done),
            failed=len(failures),
            seconds=round(time.perf_counter() - started, 4),
        )
        return done, failures

    async def _publish_row(self, row: Any) -> None:
        encoded = EncodedEvent(
            type=row["event_type"],
            body=bytes(row["body"]),
            attributes=dict(row["attributes"]),
            headers=dict(row["headers"]),
        )
        context = propagate.extract(row["trace_context"])
        await self._broker.publish_encoded(encoded, context=context)
