"""gRPC unary through the full service runtime vs a bare grpc.aio server, same handler, same run.

    .venv/bin/python bench/grpc_runtime.py [--rounds 5] [--calls 4000] [--concurrency 16]
        [--before <git revision>]

* runtime: :func:`services.runtime.create_server` — error mapping, request logging (JSON, one
  line per RPC, as the services configure it; ``LOG_LEVEL=warning`` to see the cost without it),
  protovalidate
  request validation, health and reflection services, plus the telemetry interceptors (SERVER
  span through the SDK tracer with a discarding exporter, RPC duration histogram).
* bare: ``grpc.aio.server()`` with only the servicer.
* bare+otel: the bare server traced the stock way, with opentelemetry-instrumentation-grpc's
  ``aio_server_interceptor`` on the same SDK set-up (SERVER span, discarding exporter): no
  metrics, log line or validation, so the gap to it is the runtime's own cost on top of
  tracing.
* with ``--before REV``, also the runtime as it was at that revision (from a temporary
  ``git worktree``), to measure a change to the runtime side by side with what it replaces.

Each server runs in its own process (so the server's cost is not diluted by the load
generator's); the load generator is a plain ``grpc.aio`` channel in this process with
``--concurrency`` callers issuing ``InventoryService.GetProduct`` back to back. Rate = calls /
elapsed; the order alternates per round; medians are reported. Each server's CPU time per call
(user + system, from ``/proc/<pid>/stat`` around each round) is reported too: on a shared
2-core machine where the load generator competes with the server, it moves far less than rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from _util import (
    Row,
    alternate,
    bench_telemetry,
    median,
    report,
    sampling_note,
    tracing_budget,
    worktree,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc

INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]


class Inventory(inventory_pb2_grpc.InventoryServiceServicer):  # type: ignore[misc]
    async def GetProduct(self, request: Any, context: Any) -> Any:  # noqa: N802, ARG002
        return inventory_pb2.Product(sku=request.sku, name="Widget", available_quantity=7)


async def serve(kind: str) -> None:
    """Run one server until stdin closes; print its port."""
    if kind == "runtime":
        from services.runtime import create_server  # noqa: PLC0415
        from services.runtime.logging import configure_logging  # noqa: PLC0415

        # As every service configures it: JSON lines on stdout, one per RPC at info level.
        configure_logging("bench", os.environ.get("LOG_LEVEL", "info"))
        telemetry = bench_telemetry("bench", set_global=True)
        server = await create_server(
            "bench",
            [(INVENTORY, Inventory(), inventory_pb2_grpc.add_InventoryServiceServicer_to_server)],
            address="127.0.0.1:0",
            readiness=(),
            interceptors=telemetry.server_interceptors(),
        )
        await server.start()
        port = server.port
    else:
        interceptors = []
        if kind == "bare+otel":
            from opentelemetry.instrumentation.grpc import aio_server_interceptor  # noqa: PLC0415

            telemetry = bench_telemetry("bench", set_global=True)
            interceptors.append(aio_server_interceptor(tracer_provider=telemetry.tracer_provider))
        bare = grpc.aio.server(interceptors=interceptors)
        inventory_pb2_grpc.add_InventoryServiceServicer_to_server(Inventory(), bare)
        # A health service (off the measured path) so the gateway bench can use it upstream.
        health = HealthServicer()
        for name in ("", INVENTORY.full_name):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health, bare)
        port = bare.add_insecure_port("127.0.0.1:0")
        await bare.start()
    print(port, file=sys.stderr, flush=True)  # stdout carries the service's logs
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def start(kind: str, root: Path | None = None) -> tuple[asyncio.subprocess.Process, int]:
    """Start a ``kind`` server, importing the toolkit from ``root`` (a worktree) if given."""
    env = {**os.environ, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO")}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        kind,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stderr.readline(), 30)
    return process, int(line)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, calls: int, concurrency: int) -> float:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = inventory_pb2_grpc.InventoryServiceStub(channel)
        request = inventory_pb2.GetProductRequest(sku="SKU-1")
        await stub.GetProduct(request)  # connect outside the timing
        per_caller = calls // concurrency

        async def caller() -> None:
            for _ in range(per_caller):
                await stub.GetProduct(request)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return per_caller * concurrency / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--before", metavar="REV", help="also run the runtime as of REV")
    parser.add_argument("--serve", choices=("runtime", "bare", "bare+otel"))
    args = parser.parse_args()
    if args.serve:
        await serve(args.serve)
        return
    if args.before:
        with worktree(args.before) as root:
            await compare(args, {"before": await start("runtime", root)})
    else:
        await compare(args, {})


async def compare(
    args: argparse.Namespace, extra: dict[str, tuple[asyncio.subprocess.Process, int]]
) -> None:
    servers = {kind: await start(kind) for kind in ("runtime", "bare", "bare+otel")} | extra
    cpu: dict[str, list[float]] = {kind: [] for kind in servers}

    async def measured(kind: str) -> float:
        process, port = servers[kind]
        before = cpu_seconds(process.pid)
        rate = await load(port, args.calls, args.concurrency)
        cpu[kind].append((cpu_seconds(process.pid) - before) / args.calls * 1e6)
        return rate

    try:
        sides = {kind: (lambda kind=kind: measured(kind)) for kind in servers}
        await alternate(1, sides)  # warm-up round, discarded
        for values in cpu.values():
            values.clear()
        results = await alternate(args.rounds, sides)
    finally:
        for process, _port in servers.values():
            assert process.stdin is not None
            process.stdin.close()
            await process.wait()
    m = {kind: median(values) for kind, values in results.items()}
    rows = [
        Row("GetProduct", m["runtime"], m["bare"], 0.8, "calls/s", "bare grpc.aio"),
        Row(
            "GetProduct vs bare with the stock OTel interceptor",
            m["runtime"],
            m["bare+otel"],
            0.8,
            "calls/s",
            "bare+otel",
        ),
    ]
    if "before" in m:
        rows.append(
            Row(
                "GetProduct, runtime now vs at --before",
                m["runtime"],
                m["before"],
                1.0,
                "calls/s",
                f"runtime at {args.before}",
            )
        )
    report(
        "gRPC unary: full service runtime vs bare grpc.aio",
        rows,
        f"{args.calls} calls x {args.rounds} rounds, {args.concurrency} concurrent callers; "
        "server in its own process; medians. Server CPU per call: "
        + ", ".join(f"{kind} {median(values):.0f} us" for kind, values in cpu.items())
        + f" (bare/runtime {median(cpu['bare']) / median(cpu['runtime']):.2f}x"
        + (
            f", runtime now/before {median(cpu['runtime']) / median(cpu['before']):.2f}x"
            if "before" in cpu
            else ""
        )
        + "). "
        + tracing_budget(
            median(cpu["bare"]),
            median(cpu["bare+otel"]),
            0.8,
            m["bare+otel"] / m["bare"],
            per="call",
            raw="the bare server",
        )
        + " "
        + sampling_note(),
    )


if __name__ == "__main__":
    asyncio.run(main())
