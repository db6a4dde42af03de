"""Transport-level sides shared by the STOMP and AMQP 1.0 benchmarks: our transport publishing
and consuming the same ~200-byte message that the raw client library sends."""

from __future__ import annotations

import asyncio
import time
import uuid

from broker.transport import Delivery, OutgoingMessage, SubscriptionSpec, Transport

__all__ = ["BODY", "TRACEPARENT", "ours_consume", "ours_publish", "outgoing"]

BODY = b"\xc3\x01" + bytes(range(8)) + b"x" * 190
"""A ~200-byte Avro single-object body (marker, fingerprint, payload)."""
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def outgoing(topic: str, n: int) -> OutgoingMessage:
    """Message ``n`` of a run: CloudEvents attributes, a traceparent, the bench body."""
    return OutgoingMessage(
        topic=topic,
        body=BODY,
        attributes={
            "id": f"{n:08d}-{uuid.uuid4().hex}",
            "type": topic,
            "source": "//bench",
            "specversion": "1.0",
            "time": "2026-01-01T00:00:00+00:00",
        },
        headers={"traceparent": TRACEPARENT},
        content_type="application/avro",
    )


async def ours_publish(transport: Transport, topic: str, count: int, window: int) -> float:
    """Publish ``count`` messages, ``window`` awaiting their confirmation at once; msg/s."""
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await transport.publish(outgoing(topic, n), timeout=30)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(window, count))))
    return count / (time.perf_counter() - started)


async def ours_consume(transport: Transport, spec: SubscriptionSpec, count: int) -> float:
    """Consume and ack ``count`` messages; msg/s from the first delivery to the last."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    stamps: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    def on_delivery(delivery: Delivery) -> None:
        stamps.append(time.perf_counter())
        task = loop.create_task(delivery.ack())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if len(stamps) == count and not done.done():
            done.set_result(None)

    consumer = await transport.subscribe(spec, on_delivery)
    await asyncio.wait_for(done, 120)
    await asyncio.gather(*tasks)
    await consumer.cancel()
    return (count - 1) / (stamps[-1] - stamps[0])
