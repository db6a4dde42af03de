"""The services' PostgreSQL engine pings a pooled connection only after it sat idle
(``services.common.store.create_engine``): a dropped idle connection is replaced unseen; a
connection in use within the idle time is not pinged."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.common.store import create_engine
from tests.support.databases import fresh_database

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine


async def _backend(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(admin: AsyncEngine, pid: int) -> None:
    """Drop a session from the server's side, as a restart or a proxy's idle timeout does."""
    async with admin.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await conn.commit()


def _count_pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


async def test_an_idle_connection_the_server_dropped_is_replaced_at_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_database("postgresql", tmp_path) as (url, admin):
        engine = create_engine(url, pool_size=1, ping_after_idle=0.2)
        pings = _count_pings(engine, monkeypatch)
        try:
            first = await _backend(engine)
            assert pings == []  # a new connection is not pinged
            await _terminate(admin, first)
            await asyncio.sleep(0.3)
            second = await _backend(engine)  # pinged, found dropped, replaced: no error
            assert second != first
            assert len(pings) == 1
        finally:
            await engine.dispose()


async def test_a_connection_in_use_is_not_pinged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the idle time no ping is sent; if the server dropped the connection meanwhile,
    the one transaction that gets it fails and the next gets a new connection."""
    async with fresh_database("postgresql", tmp_path) as (url, admin):
        engine = create_engine(url, pool_size=1, ping_after_idle=60)
        pings = _count_pings(engine, monkeypatch)
        try:
            first = await _backend(engine)
            assert await _backend(engine) == first
            await _terminate(admin, first)
            with pytest.raises(DBAPIError) as failed:
                await _backend(engine)
            assert failed.value.connection_invalidated
            assert await _backend(engine) != first
            assert pings == []
        finally:
            await engine.dispose()
