"""REST through the gateway vs the same RPC over gRPC directly: added latency and throughput.

    .venv/bin/python bench/gateway_rest.py [--rounds 5] [--requests 2000] [--seconds 5]

One upstream, a bare ``grpc.aio`` server with ``InventoryService.GetProduct`` (its own
process, ``bench/grpc_runtime.py --serve bare``), and the gateway as it ships (``python -m
gateway`` on uvicorn in its own process: auth off, no cache, no rate limit, tracing on without
an exporter, one JSON log line per request) in front of it. ``GET /v1/products/SKU-1`` is
transcoded to that RPC.

* latency: sequential calls (one at a time) from this process, REST over a raw asyncio
  HTTP/1.1 keep-alive connection (a few microseconds of client cost) vs ``grpc.aio`` straight to
  the upstream; p50 and p99 per round, medians over rounds; "added" = REST p50 - gRPC p50.
* throughput: REST with ``wrk -t1 -c16`` (C, keep-alive: the client costs little of the
  2 cores) vs gRPC with 16 concurrent ``grpc.aio`` callers in this process, ``--seconds`` each;
  the REST figure from 16 raw asyncio HTTP connections in this process is printed too.

Rounds alternate the order; medians are reported. Needs ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from _util import Row, median, report

from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

HERE = Path(__file__).resolve().parent
PATH = "/v1/products/SKU-1"
CONCURRENCY = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpClient:
    """HTTP/1.1 GETs on one keep-alive connection; the least client work there is."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> HttpClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)content-length: *(\d+)", head)
        if match:
            await self.reader.readexactly(int(match.group(1)))
        return status

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def start_upstream() -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "grpc_runtime.py"),
        "--serve",
        "bare",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    return process, int(await asyncio.wait_for(process.stderr.readline(), 30))


async def start_gateway(upstream: int) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_UPSTREAMS": f"inventory=127.0.0.1:{upstream}",
        "GATEWAY_AUTH": "off",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            client = await HttpClient.open(port)
            status = await client.get(PATH)
            await client.close()
            if status == 200:
                return process, port
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not answer 200 within 30 s")
        await asyncio.sleep(0.3)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def rest_latencies(port: int, requests: int) -> list[float]:
    client = await HttpClient.open(port)
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        status = await client.get(PATH)
        latencies.append(time.perf_counter() - started)
        assert status == 200, status
    await client.close()
    return latencies


async def grpc_latencies(
    stub: inventory_pb2_grpc.InventoryServiceStub, requests: int
) -> list[float]:
    request = inventory_pb2.GetProductRequest(sku="SKU-1")
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        await stub.GetProduct(request)
        latencies.append(time.perf_counter() - started)
    return latencies


async def wrk(port: int, seconds: float) -> float:
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{CONCURRENCY}",
        f"-d{seconds:g}s",
        f"http://127.0.0.1:{port}{PATH}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    text = out.decode()
    if "Non-2xx" in text:
        raise RuntimeError(f"wrk saw errors:\n{text}")
    match = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if not match:
        raise RuntimeError(text)
    return float(match.group(1))


async def rest_python(port: int, seconds: float) -> float:
    clients = [await HttpClient.open(port) for _ in range(CONCURRENCY)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller(client: HttpClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await client.get(PATH)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in clients))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.close()
    return done / elapsed


async def grpc_rate(stub: inventory_pb2_grpc.InventoryServiceStub, seconds: float) -> float:
    request = inventory_pb2.GetProductRequest(sku="SKU-1")
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await stub.GetProduct(request)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    upstream, upstream_port = await start_upstream()
    gateway, gateway_port = await start_gateway(upstream_port)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{upstream_port}")
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    p50: dict[str, list[float]] = {"rest": [], "grpc": []}
    p99: dict[str, list[float]] = {"rest": [], "grpc": []}
    rates: dict[str, list[float]] = {"rest wrk": [], "rest python": [], "grpc": []}
    gateway_cpu: list[float] = []
    try:
        await rest_latencies(gateway_port, 200)  # warm-up
        await grpc_latencies(stub, 200)
        for index in range(args.rounds):
            latency_sides: list[tuple[str, Callable[[], Awaitable[list[float]]]]] = [
                ("rest", lambda: rest_latencies(gateway_port, args.requests)),
                ("grpc", lambda: grpc_latencies(stub, args.requests)),
            ]
            rate_sides: list[tuple[str, Callable[[], Awaitable[float]]]] = [
                ("rest wrk", lambda: wrk(gateway_port, args.seconds)),
                ("rest python", lambda: rest_python(gateway_port, args.seconds)),
                ("grpc", lambda: grpc_rate(stub, args.seconds)),
            ]
            if index % 2:
                latency_sides.reverse()
                rate_sides.reverse()
            for name, run in latency_sides:
                values = await run()
                p50[name].append(percentile(values, 0.5) * 1000)
                p99[name].append(percentile(values, 0.99) * 1000)
            for name, measure in rate_sides:
                before = cpu_seconds(gateway.pid)
                rate = await measure()
                rates[name].append(rate)
                if name == "rest wrk":
                    used = cpu_seconds(gateway.pid) - before
                    gateway_cpu.append(used / (rate * args.seconds) * 1e6)
            print(
                f"round {index + 1}: p50 rest {p50['rest'][-1]:.2f} ms grpc {p50['grpc'][-1]:.2f}"
                f" ms; rest(wrk) {rates['rest wrk'][-1]:,.0f}/s rest(python) "
                f"{rates['rest python'][-1]:,.0f}/s grpc {rates['grpc'][-1]:,.0f}/s",
                flush=True,
            )
    finally:
        await channel.close(None)
        gateway.terminate()
        await gateway.wait()
        assert upstream.stdin is not None
        upstream.stdin.close()
        await upstream.wait()

    m = {name: median(values) for name, values in rates.items()}
    rest50, grpc50 = statistics.median(p50["rest"]), statistics.median(p50["grpc"])
    rest99, grpc99 = statistics.median(p99["rest"]), statistics.median(p99["grpc"])
    report(
        "REST via the gateway vs gRPC directly",
        [
            Row("throughput, REST by wrk", m["rest wrk"], m["grpc"], 0.6, "req/s", "gRPC"),
            Row("throughput, REST by Python", m["rest python"], m["grpc"], 0.6, "req/s", "gRPC"),
        ],
        f"{args.requests} sequential calls per latency round, {args.seconds:g} s per rate "
        f"side, {CONCURRENCY} concurrent, x {args.rounds} rounds; medians.\n\n"
        f"latency, one call at a time: REST p50 {rest50:.2f} ms / p99 {rest99:.2f} ms; gRPC "
        f"p50 {grpc50:.2f} ms / p99 {grpc99:.2f} ms; **p50 added by the gateway "
        f"{rest50 - grpc50:.2f} ms** (target <= 1 ms: "
        f"{'met' if rest50 - grpc50 <= 1 else 'NOT met'}). Gateway CPU per request under wrk: "
        f"{statistics.median(gateway_cpu):.0f} us",
    )


if __name__ == "__main__":
    asyncio.run(main())
