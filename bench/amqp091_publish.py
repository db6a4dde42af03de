"""Confirmed publishing over AMQP 0-9-1: ours vs raw aio-pika vs FastStream, same run.

    .venv/bin/python bench/amqp091_publish.py [--rounds 5] [--messages 5000] [--window 64]

* ours: :meth:`broker.Broker.publish` — builds the CloudEvent, validates and Avro-encodes the
  data (single-object body, about 200 bytes), opens a PRODUCER span (SDK tracer, spans exported
  to a discarding exporter, metrics recorded), injects ``traceparent``/X-Ray headers, publishes
  mandatory + persistent and awaits the publisher confirm.
* ours-untraced: the same Broker built without tracer/meter providers (OpenTelemetry's API
  no-ops), which separates the toolkit's own cost from the OpenTelemetry SDK's.
* raw: aio-pika's ``Exchange.publish`` of the same body and the same headers (precomputed, so
  no encoding or tracing), mandatory + persistent, on a publisher-confirms channel.
* faststream: ``RabbitBroker.publish`` of the same body and headers to the same exchange
  (its default channel has publisher confirms on), ``persist=True``.
* raw+otel: raw, instrumented by hand the way OpenTelemetry's documentation shows: a PRODUCER
  span (``start_as_current_span``, the same attributes as ours, an SDK tracer and exporter set
  up as ours) with the context injected into the headers, and the same two instruments (sent
  messages, publish duration) recorded: the floor for a traced publish on aio-pika, to tell the
  toolkit's own cost from the SDK's.
* faststream+otel: FastStream with its ``RabbitTelemetryMiddleware`` (span, injection, publish
  duration and message counter) on providers set up as ours: the peer doing the same
  telemetry work.

Client CPU per message (``time.process_time``, every thread of this process, the warm-up round
left out) is printed too: it is far less disturbed by other load on the machine than the rates.

Every side keeps ``--window`` publishes in flight (that many tasks, each awaiting its own
confirm: pipelined confirms) to the same topic exchange and routing key, bound to one classic
durable queue that is purged between runs. Connection set-up is outside the timing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from aio_pika import DeliveryMode, ExchangeType, Message
from faststream.rabbit import ExchangeType as FastExchangeType
from faststream.rabbit import RabbitBroker, RabbitExchange
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry import propagate
from opentelemetry.trace import SpanKind

from broker import Broker, naming
from broker.transports._amqp091_wire import to_wire

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

RABBIT = "amqp://guest:guest@127.0.0.1:5672/"


async def pipelined(count: int, window: int, send: Callable[[int], Awaitable[Any]]) -> float:
    """Messages per second with ``window`` sends in flight, each awaited (its confirm)."""
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await send(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(window, count))))
    return count / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    count, window = args.messages, args.window

    # The two traced peers get providers of their own, set up exactly as ours: on one meter
    # provider their instruments would share names with ours (``messaging.process.duration``)
    # and the SDK would warn of conflicting metric identities.
    telemetry, raw_telemetry, peer_telemetry = (
        bench_telemetry(name) for name in ("bench", "bench-raw", "bench-peer")
    )
    tmp = tempfile.TemporaryDirectory()
    registry, topic = bench_registry(Path(tmp.name))
    exchange_name = naming.DEFAULT_EXCHANGE
    queue_name = f"bench-pub-{uuid.uuid4().hex[:8]}"

    ours = Broker(
        RABBIT,
        source="//bench",
        registry=registry,
        name="bench-ours",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    await ours.start()
    # The same without telemetry providers (the API's no-op tracer: nothing recorded, no
    # trace headers without an incoming context): the toolkit's own cost, OTel's SDK aside.
    bare = Broker(RABBIT, source="//bench", registry=registry, name="bench-bare")
    await bare.start()

    raw = await aio_pika.connect(RABBIT)
    raw_channel = await raw.channel(publisher_confirms=True, on_return_raises=True)
    raw_exchange = await raw_channel.declare_exchange(
        exchange_name, ExchangeType.TOPIC, durable=True
    )
    queue = await raw_channel.declare_queue(
        queue_name, durable=True, arguments={"x-queue-type": "classic"}
    )
    await queue.bind(raw_exchange, routing_key=topic)

    fast = RabbitBroker(RABBIT, logger=None)
    await fast.connect()
    fast_exchange = RabbitExchange(exchange_name, type=FastExchangeType.TOPIC, durable=True)
    fast_traced = RabbitBroker(
        RABBIT,
        logger=None,
        middlewares=[
            RabbitTelemetryMiddleware(
                tracer_provider=peer_telemetry.tracer_provider,
                meter_provider=peer_telemetry.meter_provider,
                include_messages_counters=True,
            )
        ],
    )
    await fast_traced.connect()

    # The bytes ours puts on the wire for one event, published as-is by raw and FastStream.
    encoded = ours.encode(ours.event(topic, bench_data(0)))
    headers = to_wire(
        encoded.attributes,
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    body = encoded.body
    print(f"body {len(body)} bytes, {len(headers)} headers, window {window}, {count} messages")

    async def ours_send(n: int) -> None:
        await ours.publish(topic, bench_data(n))

    async def bare_send(n: int) -> None:
        await bare.publish(topic, bench_data(n))

    async def raw_send(n: int) -> None:
        await raw_exchange.publish(
            Message(
                body,
                headers=headers,
                content_type="application/avro",
                delivery_mode=DeliveryMode.PERSISTENT,
                message_id=str(n),
                type=topic,
            ),
            routing_key=topic,
            mandatory=True,
        )

    tracer = raw_telemetry.tracer_provider.get_tracer("bench.raw")
    meter = raw_telemetry.meter_provider.get_meter("bench.raw")
    sent = meter.create_counter("messaging.client.sent.messages", unit="{message}")
    duration = meter.create_histogram("messaging.client.operation.duration", unit="s")
    untraced = {k: v for k, v in headers.items() if k not in ("traceparent", "tracestate")}
    metric_attributes = {"messaging.system": "rabbitmq", "messaging.destination.name": topic}

    async def raw_traced_send(n: int) -> None:
        started = time.perf_counter()
        message_id = str(n)
        with tracer.start_as_current_span(
            f"send {topic}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": message_id,
                "messaging.message.body.size": len(body),
            },
        ):
            traced = dict(untraced)
            propagate.inject(traced)
            await raw_exchange.publish(
                Message(
                    body,
                    headers=traced,
                    content_type="application/avro",
                    delivery_mode=DeliveryMode.PERSISTENT,
                    message_id=message_id,
                    type=topic,
                ),
                routing_key=topic,
                mandatory=True,
            )
        sent.add(1, metric_attributes)
        duration.record(time.perf_counter() - started, metric_attributes)

    def fast_sender(
        broker: RabbitBroker, sent_headers: dict[str, Any]
    ) -> Callable[[int], Awaitable[None]]:
        async def send(n: int) -> None:
            await broker.publish(
                body,
                exchange=fast_exchange,
                routing_key=topic,
                headers=sent_headers,
                content_type="application/avro",
                message_id=str(n),
                message_type=topic,
                persist=True,
                mandatory=True,
            )

        return send

    cpu: dict[str, list[float]] = {}

    def side(name: str, send: Callable[[int], Awaitable[Any]]) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            used = time.process_time()
            rate = await pipelined(count, window, send)
            cpu.setdefault(name, []).append((time.process_time() - used) / count * 1e6)
            await queue.purge()
            return rate

        return run

    sides = {
        "ours": side("ours", ours_send),
        "ours-untraced": side("ours-untraced", bare_send),
        "raw": side("raw", raw_send),
        "faststream": side("faststream", fast_sender(fast, headers)),
        "raw+otel": side("raw+otel", raw_traced_send),
        "faststream+otel": side("faststream+otel", fast_sender(fast_traced, untraced)),
    }
    try:
        await alternate(1, sides)  # warm-up round, discarded
        results = await alternate(args.rounds, sides)
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await ours.close()
        await bare.close()
        await fast.stop()
        await fast_traced.stop()
        await raw.close()
        await telemetry.shutdown()
        await raw_telemetry.shutdown()
        await peer_telemetry.shutdown()
        tmp.cleanup()

    m = {name: median(values) for name, values in results.items()}
    report(
        "Publish with confirms, AMQP 0-9-1 (RabbitMQ)",
        [
            Row("publish vs raw aio-pika", m["ours"], m["raw"], 0.9),
            Row("publish vs FastStream", m["ours"], m["faststream"], 1.0, theirs_name="FastStream"),
            Row("publish, no telemetry providers, vs raw", m["ours-untraced"], m["raw"], 0.9),
            Row(
                "publish, no telemetry providers, vs FastStream",
                m["ours-untraced"],
                m["faststream"],
                1.0,
                theirs_name="FastStream",
            ),
            Row(
                "publish vs raw aio-pika traced by hand",
                m["ours"],
                m["raw+otel"],
                0.9,
                theirs_name="raw+otel",
            ),
            Row(
                "publish vs FastStream with its telemetry middleware",
                m["ours"],
                m["faststream+otel"],
                1.0,
                theirs_name="FastStream+otel",
            ),
        ],
        f"{count} messages x {args.rounds} rounds, {window} in flight, {len(body)}-byte body; "
        f"medians. raw aio-pika vs FastStream: {m['faststream'] / m['raw']:.2f}x. Client CPU "
        "per message (this process, all threads): " + client_notes(cpu, m, 0.9),
    )


if __name__ == "__main__":
    asyncio.run(main())
