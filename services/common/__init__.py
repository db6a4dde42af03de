"""Code the five domain services share: the database engine and the process bootstrap.

- :mod:`~services.common.store`: an async SQLAlchemy engine from ``DATABASE_URL`` (SQLite with
  WAL, ``busy_timeout`` and ``BEGIN IMMEDIATE``; PostgreSQL via asyncpg) and schema creation;
- :mod:`~services.common.bootstrap`: wires settings, logging, telemetry, engine, broker,
  outbox relay, consumer group and gRPC server, and shuts them down in order;
- :mod:`~services.common.timestamps`: conversions between ``datetime`` and protobuf
  ``Timestamp`` and the one clock the services read.
"""

from services.common.bootstrap import Blueprint, Context, Dispatcher, Wiring, serve
from services.common.pages import after_position, position_token
from services.common.store import (
    create_engine,
    create_schema,
    insert_ignore,
    is_conflict,
)
from services.common.timestamps import as_utc, to_timestamp, utcnow

__all__ = [
    "Blueprint",
    "Context",
    "Dispatcher",
    "Wiring",
    "after_position",
    "as_utc",
    "create_engine",
    "create_schema",
    "insert_ignore",
    "is_conflict",
    "position_token",
    "serve",
    "to_timestamp",
    "utcnow",
]
