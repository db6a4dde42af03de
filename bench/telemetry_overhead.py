"""Tracing overhead: RPC and publish throughput with telemetry on vs off, same run.

    .venv/bin/python bench/telemetry_overhead.py [--rounds 5] [--rpcs 2000] [--publishes 1000]

"on" = the runtime's server and client interceptors (SERVER/CLIENT spans, RPC histogram) and
the broker's PRODUCER spans and counters, exported through the real BatchSpanProcessor to an
exporter that discards (so the collector's speed is not measured); "off" = no interceptors and
the broker without providers. Rounds alternate on/off so drift (CPU heat, broker state) hits
both alike; medians are reported. Publishing goes to the local RabbitMQ (127.0.0.1:5672).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from broker import Broker, SchemaRegistry
from services.runtime import create_server
from services.runtime.telemetry import Telemetry, setup_telemetry
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc

INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
RABBIT = "amqp://guest:guest@127.0.0.1:5672/"
CONCURRENCY = 16


class Discard(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:  # noqa: ARG002
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class Inventory(inventory_pb2_grpc.InventoryServiceServicer):
    async def GetProduct(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return inventory_pb2.Product(sku=request.sku, name="Widget")


async def rpc_round(telemetry: Telemetry | None, calls: int) -> float:
    server = await create_server(
        "bench",
        [(INVENTORY, Inventory(), inventory_pb2_grpc.add_InventoryServiceServicer_to_server)],
        address="127.0.0.1:0",
        readiness=(),
        interceptors=telemetry.server_interceptors() if telemetry else (),
    )
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    if telemetry is not None:
        channel = telemetry.trace_channel(channel)
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    request = inventory_pb2.GetProductRequest(sku="SKU-1")
    await stub.GetProduct(request)  # connect outside the timing

    async def worker(n: int) -> None:
        for _ in range(n):
            await stub.GetProduct(request)

    started = time.perf_counter()
    await asyncio.gather(*(worker(calls // CONCURRENCY) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    await channel.close()
    await server.stop(1)
    return (calls // CONCURRENCY * CONCURRENCY) / elapsed


async def publish_round(telemetry: Telemetry | None, registry: Any, topic: str, n: int) -> float:
    broker = Broker(
        RABBIT,
        source="//bench",
        registry=registry,
        tracer_provider=telemetry.tracer_provider if telemetry else None,
        meter_provider=telemetry.meter_provider if telemetry else None,
    )
    await broker.start()
    payload = {"seq": 1, "text": "x" * 64}
    await broker.publish(topic, payload)
    started = time.perf_counter()
    for start in range(0, n, 50):  # batches of 50 confirms in flight
        await asyncio.gather(*(broker.publish(topic, payload) for _ in range(min(50, n - start))))
    elapsed = time.perf_counter() - started
    await broker.close()
    return n / elapsed


async def _drop(event: Any) -> None:
    del event


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rpcs", type=int, default=2000)
    parser.add_argument("--publishes", type=int, default=1000)
    args = parser.parse_args()

    # No global providers: "off" must really be off.
    telemetry = setup_telemetry(
        "bench", environ={}, span_exporter=Discard(), metrics_port=0, set_global=False
    )
    with tempfile.TemporaryDirectory() as tmp:
        namespace = f"bench.t{uuid.uuid4().hex[:10]}.v1"
        schema = {
            "type": "record",
            "name": "Ping",
            "namespace": namespace,
            "fields": [{"name": "seq", "type": "int"}, {"name": "text", "type": "string"}],
        }
        (Path(tmp) / "Ping").mkdir()
        (Path(tmp) / "Ping" / "v1.avsc").write_text(json.dumps(schema))
        registry = SchemaRegistry.from_directory(Path(tmp))
        topic = f"{namespace}.Ping"
        # A consumer keeps a queue bound (publishes are mandatory) and drains it; it has no
        # telemetry, so only the publishing side differs between on and off.
        sink = Broker(RABBIT, source="//bench", registry=registry)
        await sink.start()
        await sink.subscribe(f"bench{uuid.uuid4().hex[:8]}", [topic], _drop)
        results: dict[str, list[float]] = {
            k: [] for k in ("rpc on", "rpc off", "pub on", "pub off")
        }
        for i in range(args.rounds):
            order = [True, False] if i % 2 == 0 else [False, True]
            for on in order:
                results["rpc on" if on else "rpc off"].append(
                    await rpc_round(telemetry if on else None, args.rpcs)
                )
            for on in order:
                results["pub on" if on else "pub off"].append(
                    await publish_round(telemetry if on else None, registry, topic, args.publishes)
                )
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in results.items()))
        await sink.close()
    await telemetry.shutdown()
    medians = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nmedians over {args.rounds} alternating rounds (higher is better):")
    for kind in ("rpc", "pub"):
        on, off = medians[f"{kind} on"], medians[f"{kind} off"]
        label = (
            "RPC (unary, 16 concurrent)" if kind == "rpc" else "publish (confirmed, 50 in flight)"
        )
        print(f"  {label}: on {on:.0f}/s, off {off:.0f}/s, overhead {100 * (1 - on / off):.1f}%")


if __name__ == "__main__":
    asyncio.run(main())
