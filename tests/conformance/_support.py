"""Small helpers shared by the conformance tests."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from broker import Event
    from broker.transport import Delivery

BLOB = bytes(range(256)) * 4  # every byte value, NUL included: bodies must be binary-safe


def ping(seq: int, **extra: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "text": f"héllo {seq} \u2603",
        "blob": BLOB,
        "nested": {"amount_minor": 2**40 + seq, "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)},
        **extra,
    }


async def eventually(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait until ``predicate()`` holds, or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


class Inbox:
    """Collects events a handler receives."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def seqs(self) -> list[int]:
        return sorted(e.data["seq"] for e in self.events)

    @property
    def ids(self) -> set[str]:
        return {e.id for e in self.events}


class DeadLetters:
    """Collects raw dead-letter deliveries (acking them, so the DLQ ends empty)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        asyncio.get_running_loop().create_task(delivery.ack())
