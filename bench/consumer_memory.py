"""Peak RSS of a consumer that has fallen far behind: prefetch bounds what it holds.

Publishes N small events (default 100,000) into a consumer group's durable queue, then starts a
consumer process with a slow handler and samples its peak RSS (VmHWM) while it works through
the backlog; a second consumer process on an empty queue gives the baseline. Prints both.

    .venv/bin/python bench/consumer_memory.py [--events 100000] [--prefetch 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika

from broker import Broker, SchemaRegistry, naming

URL = "amqp://guest:guest@127.0.0.1:5672/?queue_type=classic"
CONSUMER = """
import asyncio, sys
from broker import Broker, SchemaRegistry

async def main(schemas, group, event_type, prefetch, seconds):
    registry = SchemaRegistry.from_directory(schemas)
    async def handler(event):
        await asyncio.sleep(0.005)  # a slow handler: the backlog stays on the broker
    async with Broker(sys.argv[6], source="//bench", registry=registry, name="rss") as broker:
        await broker.subscribe(group, [event_type], handler, prefetch=prefetch,
                               concurrency=prefetch)
        print("ready", flush=True)
        await asyncio.sleep(seconds)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
"""


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def consume(schemas: Path, group: str, event_type: str, prefetch: int, seconds: float) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CONSUMER,
        str(schemas),
        group,
        event_type,
        str(prefetch),
        str(seconds),
        URL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    await asyncio.wait_for(process.stdout.readline(), 30)
    peak = 0
    deadline = time.monotonic() + seconds - 1
    while time.monotonic() < deadline:
        peak = max(peak, peak_rss_kib(process.pid))
        await asyncio.sleep(0.5)
    await process.wait()
    return peak


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--prefetch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    schemas = Path(tempfile.mkdtemp()) / "schemas"
    (schemas / "Tick").mkdir(parents=True)
    namespace = f"rss.t{uuid.uuid4().hex[:8]}.v1"
    (schemas / "Tick" / "v1.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "Tick",
                "namespace": namespace,
                "fields": [{"name": "n", "type": "long"}, {"name": "pad", "type": "string"}],
            }
        )
    )
    registry = SchemaRegistry.from_directory(schemas)
    event_type = registry.names[0]
    group, empty = f"rss{uuid.uuid4().hex[:8]}", f"rss{uuid.uuid4().hex[:8]}"
    async with Broker(URL, source="//bench", registry=registry, name="rss-pub") as broker:
        noop = broker.subscribe
        for g in (group, empty):  # declare both queues, then leave them without consumers
            subscription = await noop(g, [event_type], lambda _e: asyncio.sleep(0))
            await subscription.stop()
        started = time.perf_counter()
        batch = 2000
        for start in range(0, args.events, batch):
            await broker.publish_many(
                broker.event(event_type, {"n": n, "pad": "x" * 150})
                for n in range(start, min(start + batch, args.events))
            )
        print(f"published {args.events} events in {time.perf_counter() - started:.1f}s")
    baseline = await consume(schemas, empty, event_type, args.prefetch, args.seconds)
    behind = await consume(schemas, group, event_type, args.prefetch, args.seconds)
    connection = await aio_pika.connect(URL.split("?", 1)[0])
    async with connection:  # leave nothing behind on the shared broker
        channel = await connection.channel()
        for g in (group, empty):
            await channel.queue_delete(naming.rabbit_group_queue(g))
            await channel.queue_delete(naming.rabbit_dead_letter_queue(g))
    print(f"peak RSS, empty queue:            {baseline / 1024:.1f} MiB")
    print(
        f"peak RSS, {args.events} queued events: {behind / 1024:.1f} MiB "
        f"(prefetch {args.prefetch}; +{(behind - baseline) / 1024:.1f} MiB)"
    )


if __name__ == "__main__":
    asyncio.run(main())
