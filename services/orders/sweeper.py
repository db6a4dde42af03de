"""Releases stock reservations that no stored order owns.

CreateOrder records a reservation as open before it asks inventory, and closes it in the
transaction that stores the order. A reservation stays open when the order was never stored
and the release that should have followed did not happen: inventory was unreachable for the
release too, the reservation committed after the orders service had given up waiting for it,
or the orders process died between the two. Without this sweeper that stock would stay
reserved for good.

Every ``interval`` seconds, reservations open for longer than ``after`` seconds are claimed
(from then on their order can no longer be stored: CreateOrder answers ABORTED), released
(idempotent; inventory not knowing the order is fine) and forgotten. One whose release fails
stays claimed and is tried again on the next pass. ``after`` must exceed the longest
CreateOrder can take, so that no reservation is released under an order still being stored.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from services.common.timestamps import utcnow
from services.orders import store
from services.runtime import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.orders.inventory_client import InventoryClient

__all__ = ["SWEEP_AFTER", "SWEEP_INTERVAL", "ReservationSweeper"]

SWEEP_AFTER = 120.0
"""Seconds a reservation may stay open: well past the inventory deadline and SQLite's busy
timeout, the longest a CreateOrder can legitimately take."""
SWEEP_INTERVAL = 30.0
BATCH = 100

_log = get_logger("services.orders.sweeper")


class ReservationSweeper:
    """Releases reservations left open; :meth:`run` is the orders service's background task."""

    def __init__(
        self,
        engine: AsyncEngine,
        inventory: InventoryClient,
        *,
        after: float = SWEEP_AFTER,
        interval: float = SWEEP_INTERVAL,
    ) -> None:
        self._engine = engine
        self._inventory = inventory
        self._after = timedelta(seconds=after)
        self._interval = interval

    async def sweep(self) -> int:
        """One pass: release every reservation open for too long; how many were released."""
        released = 0
        while True:
            async with self._engine.begin() as conn:
                order_ids = await store.claim_stale_reservations(
                    conn, utcnow() - self._after, BATCH
                )
            for order_id in order_ids:
                try:
                    await self._inventory.release(order_id, "order never stored")
                except Exception:  # noqa: BLE001 -- stays claimed: the next pass tries again
                    _log.warning("orders.reservation_release_failed", order_id=order_id)
                    return released
                async with self._engine.begin() as conn:
                    await store.forget_reservation(conn, order_id)
                _log.warning("orders.reservation_swept", order_id=order_id)
                released += 1
            if len(order_ids) < BATCH:
                return released

    async def run(self) -> None:
        """Sweep every ``interval`` seconds until cancelled; a failed pass is logged."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 -- the database may be briefly unavailable
                _log.exception("orders.sweep_failed")
