"""Payments' store on both databases: an order's cancellation mark, once set, stays set
whichever event comes first, and a payment is refunded once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from services.common.store import create_engine, create_schema
from services.payments.store import (
    AUTHORIZED,
    REFUNDED,
    Payment,
    PaymentStore,
    insert_payment,
    mark_order,
    mark_refunded,
    metadata,
    payment_of_order,
)
from tests.support.databases import DATABASES, fresh_database

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("kind", DATABASES)
async def test_a_cancellation_mark_stays_whichever_event_comes_first(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as (url, _):
        engine = create_engine(url)
        await create_schema(engine, metadata)
        try:
            async with engine.begin() as conn:
                assert await mark_order(conn, "placed-first", cancelled=False) is False
                assert await mark_order(conn, "placed-first", cancelled=True) is True
                assert await mark_order(conn, "placed-first", cancelled=False) is True
                assert await mark_order(conn, "cancelled-first", cancelled=True) is True
                assert await mark_order(conn, "cancelled-first", cancelled=False) is True
                assert await mark_order(conn, "never-cancelled", cancelled=False) is False
                assert await mark_order(conn, "never-cancelled", cancelled=False) is False
        finally:
            await engine.dispose()


@pytest.mark.parametrize("kind", DATABASES)
async def test_a_payment_is_stored_found_and_refunded_once(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as (url, _):
        engine = create_engine(url)
        await create_schema(engine, metadata)
        at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
        payment = Payment("pay-1", "order-1", "c-1", 1999, "EUR", AUTHORIZED, "", at, at)
        try:
            async with engine.begin() as conn:
                assert await payment_of_order(conn, "order-1") is None
                await insert_payment(conn, payment, "pm_card")
                assert await payment_of_order(conn, "order-1") == payment
            later = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
            async with engine.begin() as conn:
                assert await mark_refunded(conn, "pay-1", later) is True
                assert await mark_refunded(conn, "pay-1", later) is False
            stored = await PaymentStore(engine).get("pay-1")
            assert (stored.status, stored.updated_at, stored.created_at) == (REFUNDED, later, at)
        finally:
            await engine.dispose()
