"""In-process change notifications for WatchOrder: wake the watchers of an order after a
commit changed it (other processes' changes are caught by the watchers' polling)."""

from __future__ import annotations

import asyncio

__all__ = ["ChangeNotifier"]


class ChangeNotifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def changed(self, order_id: str) -> None:
        """Wake everyone watching ``order_id``."""
        for waiter in self._waiters.get(order_id, ()):
            waiter.set()

    async def wait(self, order_id: str, timeout: float) -> None:
        """Return when ``order_id`` changes or ``timeout`` seconds pass."""
        waiter = asyncio.Event()
        self._waiters.setdefault(order_id, set()).add(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter.wait()
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(order_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[order_id]
