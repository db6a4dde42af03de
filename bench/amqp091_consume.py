"""Consuming with manual ack over AMQP 0-9-1: ours vs raw aio-pika vs FastStream, same run.

    .venv/bin/python bench/amqp091_consume.py [--rounds 5] [--messages 5000] [--prefetch 64]

Each round fills one classic durable queue with N events (the Avro body and CloudEvents headers
ours publishes, about 200 bytes), then lets each side drain it in turn with the same prefetch:

* ours: :meth:`broker.Broker.subscribe` with a no-op handler, no inbox, ``concurrency`` equal to
  the prefetch: decode (Avro, schema resolution, CloudEvents attributes), CONSUMER span (SDK
  tracer, discarding exporter) and metrics, then ``basic.ack`` after the handler returns.
* ours-untraced: the same Broker without tracer/meter providers (OpenTelemetry API no-ops).
* raw: aio-pika ``queue.consume`` with a callback that acks each message (``no_ack=False``).
* faststream: a ``RabbitBroker`` subscriber on the same queue, ``AckPolicy.ACK`` (ack after the
  handler), a no-op handler taking the body, channel prefetch equal.
* raw+otel: raw, instrumented by hand the way OpenTelemetry's documentation shows: the context
  extracted from the headers, a CONSUMER span (``start_as_current_span``, linked to the
  producer, the same attributes as ours, an SDK set up as ours) around the handler and the
  ack, and the same two instruments (consumed messages, process duration) recorded:
  the floor for a traced consumer on aio-pika, to tell the toolkit's own cost from the SDK's.
* faststream+otel: FastStream with its ``RabbitTelemetryMiddleware`` (span, extraction,
  process duration and message counter) on providers set up as ours: the peer doing the same
  telemetry work.

Rate = (N - 1) / time from the first to the N-th handler call; set-up is outside the timing.
Client CPU per message (``time.process_time`` over the whole side, filling included, so only
differences between sides mean anything) is printed too. The order of the sides rotates every
round; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import aio_pika
from _util import (
    Row,
    alternate,
    bench_data,
    bench_registry,
    bench_telemetry,
    client_notes,
    median,
    report,
)
from aio_pika import DeliveryMode, Message
from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind

from broker import Broker, RetryPolicy, naming
from broker.transports._amqp091_wire import to_wire

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

RABBIT = "amqp://guest:guest@127.0.0.1:5672/?queue_type=classic"
RAW = "amqp://guest:guest@127.0.0.1:5672/"


class Stamps:
    """Handler-call times; ``done`` resolves at the N-th."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.times: list[float] = []
        self.done = asyncio.get_running_loop().create_future()

    def hit(self) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) == self.count and not self.done.done():
            self.done.set_result(None)

    def rate(self) -> float:
        return (self.count - 1) / (self.times[self.count - 1] - self.times[0])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--prefetch", type=int, default=64)
    args = parser.parse_args()
    count, prefetch = args.messages, args.prefetch

    # The two traced peers get providers of their own, set up exactly as ours: on one meter
    # provider their instruments would share names with ours (``messaging.process.duration``)
    # and the SDK would warn of conflicting metric identities.
    telemetry, raw_telemetry, peer_telemetry = (
        bench_telemetry(name) for name in ("bench", "bench-raw", "bench-peer")
    )
    tmp = tempfile.TemporaryDirectory()
    registry, topic = bench_registry(Path(tmp.name))
    group = f"bench-con-{uuid.uuid4().hex[:8]}"
    queue_name = naming.rabbit_group_queue(group)

    traced = Broker(
        RABBIT,
        source="//bench",
        registry=registry,
        name="bench-ours",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    untraced = Broker(RABBIT, source="//bench", registry=registry, name="bench-bare")
    await traced.start()
    await untraced.start()
    # Declares the group's queue (classic), its DLQ and retry queues, bound to the topic.
    await (await traced.subscribe(group, [topic], lambda _e: asyncio.sleep(0))).stop()

    raw = await aio_pika.connect(RAW)
    filler = await raw.channel(publisher_confirms=True)
    exchange = await filler.get_exchange(naming.DEFAULT_EXCHANGE)
    encoded = traced.encode(traced.event(topic, bench_data(0)))
    headers = to_wire(
        encoded.attributes,
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )

    async def fill() -> None:
        message = Message(
            encoded.body,
            headers=headers,
            content_type="application/avro",
            delivery_mode=DeliveryMode.PERSISTENT,
            type=topic,
        )
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    exchange.publish(message, routing_key=topic)
                    for _ in range(min(500, count - start))
                )
            )

    cpu: dict[str, list[float]] = {}

    def timed(name: str, run: Callable[[], Awaitable[float]]) -> Callable[[], Awaitable[float]]:
        """``run`` with its CPU per message recorded (filling the queue is measured apart)."""

        async def measured() -> float:
            used = time.process_time()
            rate = await run()
            cpu.setdefault(name, []).append((time.process_time() - used) / count * 1e6)
            return rate

        return measured

    def ours(broker: Broker) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            await fill()
            stamps = Stamps(count)

            async def handler(_event: Any) -> None:
                stamps.hit()

            subscription = await broker.subscribe(
                group, [topic], handler, prefetch=prefetch, concurrency=prefetch
            )
            await asyncio.wait_for(stamps.done, 120)
            await subscription.stop()
            return stamps.rate()

        return run

    async def raw_side() -> float:
        await fill()
        stamps = Stamps(count)
        channel = await raw.channel()
        await channel.set_qos(prefetch_count=prefetch)
        consumed = await channel.get_queue(queue_name)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            stamps.hit()

        tag = await consumed.consume(on_message, no_ack=False)
        await asyncio.wait_for(stamps.done, 120)
        await consumed.cancel(tag)
        await channel.close()
        return stamps.rate()

    tracer = raw_telemetry.tracer_provider.get_tracer("bench.raw")
    meter = raw_telemetry.meter_provider.get_meter("bench.raw")
    consumed_messages = meter.create_counter("messaging.client.consumed.messages", unit="{message}")
    process_duration = meter.create_histogram("messaging.process.duration", unit="s")
    metric_attributes = {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
    }

    async def raw_traced_side() -> float:
        await fill()
        stamps = Stamps(count)
        channel = await raw.channel()
        await channel.set_qos(prefetch_count=prefetch)
        consumed = await channel.get_queue(queue_name)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            started = time.perf_counter()
            parent = propagate.extract(
                {k: v for k, v in message.headers.items() if isinstance(v, str)}
            )
            producer = trace.get_current_span(parent).get_span_context()
            attributes: dict[str, str | int] = {
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": topic,
                "messaging.consumer.group.name": group,
                "messaging.message.body.size": len(message.body),
            }
            event_id = message.headers.get("cloudEvents:id")
            if isinstance(event_id, str):
                attributes["messaging.message.id"] = event_id
            with tracer.start_as_current_span(
                f"process {topic}",
                context=parent,
                kind=SpanKind.CONSUMER,
                links=[Link(producer)] if producer.is_valid else [],
                attributes=attributes,
            ):
                stamps.hit()
                await message.ack()
            consumed_messages.add(1, metric_attributes)
            process_duration.record(time.perf_counter() - started, metric_attributes)

        tag = await consumed.consume(on_message, no_ack=False)
        await asyncio.wait_for(stamps.done, 120)
        await consumed.cancel(tag)
        await channel.close()
        return stamps.rate()

    async def fast_consume(*, traced: bool) -> float:
        await fill()
        stamps = Stamps(count)
        middlewares = (
            [
                RabbitTelemetryMiddleware(
                    tracer_provider=peer_telemetry.tracer_provider,
                    meter_provider=peer_telemetry.meter_provider,
                    include_messages_counters=True,
                )
            ]
            if traced
            else []
        )
        fast = RabbitBroker(RAW, logger=None, middlewares=middlewares)

        @fast.subscriber(
            RabbitQueue(
                queue_name, durable=True, arguments=cast("Any", {"x-queue-type": "classic"})
            ),
            channel=Channel(prefetch_count=prefetch),
            ack_policy=AckPolicy.ACK,
        )
        async def handler(body: bytes) -> None:
            del body
            stamps.hit()

        await fast.start()
        await asyncio.wait_for(stamps.done, 120)
        await fast.stop()
        return stamps.rate()

    sides = {
        "ours": timed("ours", ours(traced)),
        "ours-untraced": timed("ours-untraced", ours(untraced)),
        "raw": timed("raw", raw_side),
        "faststream": timed("faststream", partial(fast_consume, traced=False)),
        "raw+otel": timed("raw+otel", raw_traced_side),
        "faststream+otel": timed("faststream+otel", partial(fast_consume, traced=True)),
    }
    try:
        await alternate(1, sides)  # warm-up round, discarded
        results = await alternate(args.rounds, sides)
    finally:
        await traced.close()
        await untraced.close()
        retries = [naming.rabbit_retry_queue(group, d) for d in RetryPolicy().delays()]
        for name in (queue_name, naming.rabbit_dead_letter_queue(group), *retries):
            await filler.queue_delete(name)
        await raw.close()
        await telemetry.shutdown()
        await raw_telemetry.shutdown()
        await peer_telemetry.shutdown()
        tmp.cleanup()

    m = {name: median(values) for name, values in results.items()}
    report(
        "Consume with manual ack, AMQP 0-9-1 (RabbitMQ)",
        [
            Row("consume vs raw aio-pika", m["ours"], m["raw"], 0.9),
            Row("consume vs FastStream", m["ours"], m["faststream"], 1.0, theirs_name="FastStream"),
            Row("consume, no telemetry providers, vs raw", m["ours-untraced"], m["raw"], 0.9),
            Row(
                "consume, no telemetry providers, vs FastStream",
                m["ours-untraced"],
                m["faststream"],
                1.0,
                theirs_name="FastStream",
            ),
            Row(
                "consume vs raw aio-pika traced by hand",
                m["ours"],
                m["raw+otel"],
                0.9,
                theirs_name="raw+otel",
            ),
            Row(
                "consume vs FastStream with its telemetry middleware",
                m["ours"],
                m["faststream+otel"],
                1.0,
                theirs_name="FastStream+otel",
            ),
        ],
        f"{count} messages x {args.rounds} rounds, prefetch {prefetch}, "
        f"{len(encoded.body)}-byte body; medians. "
        f"FastStream vs raw aio-pika: {m['faststream'] / m['raw']:.2f}x. Client CPU per "
        "message, consuming plus filling the queue (this process, all threads): "
        + client_notes(cpu, m, 0.9),
    )


if __name__ == "__main__":
    asyncio.run(main())
