"""Inspecting and replaying a consumer group's dead-letter queue, on any transport.

Used by ``shopmq dlq`` and by the operators' DeadLetterService. Reading a queue means consuming
it: :func:`collect` takes up to ``spec.prefetch`` messages, stops consuming, and leaves the
caller to settle each one — ``release()`` keeps it in the queue, :func:`replay` sends it back to
the group's live queue, ``ack()`` drops it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from broker._subscription import ATTEMPT_HEADER, ERROR_HEADERS

if TYPE_CHECKING:
    from broker.transport import Delivery, SubscriptionSpec, Transport

__all__ = ["collect", "replay"]


async def collect(
    transport: Transport, spec: SubscriptionSpec, *, idle: float = 1.0
) -> list[Delivery]:
    """The group's dead letters, received until none arrives for ``idle`` seconds (at most
    ``spec.prefetch``). The caller settles every one."""
    received: list[Delivery] = []
    arrived = asyncio.Event()

    def on_delivery(delivery: Delivery) -> None:
        received.append(delivery)
        arrived.set()

    consumer = await transport.consume_dead_letters(spec, on_delivery)
    while len(received) < spec.prefetch:
        arrived.clear()
        try:
            await asyncio.wait_for(arrived.wait(), idle)
        except TimeoutError:
            break
    await consumer.cancel()
    return received


async def replay(letter: Delivery) -> None:
    """Send a dead letter back to its group's live queue as a fresh first attempt (the error
    headers dropped, ``x-replayed`` added) and remove it from the dead-letter queue."""
    headers = {
        k: v for k, v in letter.headers.items() if k not in ERROR_HEADERS and k != ATTEMPT_HEADER
    }
    headers["x-replayed"] = "1"
    await letter.retry(0, headers)
