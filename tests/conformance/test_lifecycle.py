"""Graceful shutdown and flow control."""

from __future__ import annotations

import asyncio

from tests.conformance._support import Inbox, eventually, ping


async def test_close_finishes_in_flight_handlers_and_acks_them(make_broker, namespace, uid):
    """close() waits for running handlers; their messages are acked, not redelivered."""
    broker = make_broker()
    await broker.start()
    started, finished = asyncio.Event(), []

    async def slow(event):
        started.set()
        await asyncio.sleep(0.5)
        finished.append(event.id)

    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], slow, prefetch=1, concurrency=1)
    sent = await broker.publish(f"{namespace}.Ping", ping(1))
    await asyncio.wait_for(started.wait(), 10)
    await broker.close(timeout=5)
    assert finished == [sent.id]

    again = make_broker()
    await again.start()
    inbox = Inbox()
    await again.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox)
    await again.publish(f"{namespace}.Ping", ping(2))
    await eventually(lambda: len(inbox.events) >= 1)
    await asyncio.sleep(0.5)
    assert inbox.seqs == [2], "the handled message came back after shutdown"


async def test_concurrency_limit_bounds_parallel_handlers(make_broker, namespace, uid):
    """No more than `concurrency` handlers run at once, however many messages are queued."""
    broker = make_broker()
    await broker.start()
    running, peak, done = 0, 0, []

    async def handler(event):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        done.append(event.id)

    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], handler, prefetch=10, concurrency=3)
    await broker.publish_many(broker.event(f"{namespace}.Ping", ping(n)) for n in range(40))
    await eventually(lambda: len(done) == 40, timeout=30)
    assert 1 < peak <= 3


async def test_close_is_idempotent(make_broker):
    """Closing twice is safe."""
    broker = make_broker()
    await broker.start()
    await broker.close()
    await broker.close()
