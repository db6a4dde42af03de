"""The whole shop as real processes for the observability tests: the e2e harness's five
services plus ``python -m gateway``, every process exporting spans to one OTLP endpoint and
serving ``/metrics`` on a port of its own.

The harness (tests/e2e/harness.py) is reused for its parts (databases per run, the Cluster
with its gRPC stubs, waiting for SERVING, stopping with SIGTERM) but the processes are started
here: ``harness.cluster`` drops ``METRICS_PORT`` from every service's environment (one value
would be shared by all five), and these tests need a ``/metrics`` port per process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e import harness
from tests.e2e.support import RABBIT, delete_rabbit_topology, isolated_broker_url
from tests.support.ports import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

__all__ = ["PROCESSES", "Shop", "shop"]

PROCESSES = (*harness.SERVICES, "gateway")
START_TIMEOUT = 60.0


@dataclass
class Shop:
    """The running shop: the services' Cluster, the gateway's base URL, /metrics ports."""

    cluster: harness.Cluster
    base: str
    gateway: asyncio.subprocess.Process
    metrics_ports: dict[str, int]
    logs: Path

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines process ``name`` wrote so far (other lines skipped)."""
        lines = []
        for raw in (self.logs / f"{name}.log").read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    lines.append(line)
        return lines


def _telemetry_env(endpoint: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.pop("METRICS_PORT", None)
    return {
        **environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }


async def _start_services(
    running: harness.Cluster,
    urls: dict[str, str],
    endpoint: str,
    metrics_ports: dict[str, int],
) -> None:
    for name in harness.SERVICES:
        env = {
            **_telemetry_env(endpoint),
            "SERVICE_NAME": name,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(running.ports[name]),
            "BROKER_URL": running.broker_url,
            "DATABASE_URL": urls[name],
            "INVENTORY_ADDR": f"127.0.0.1:{running.ports['inventory']}",
            "ORDERS_ADDR": f"127.0.0.1:{running.ports['orders']}",
            "METRICS_PORT": str(metrics_ports[name]),
            "SHUTDOWN_GRACE": "5",
        }
        with (running.logs / f"{name}.log").open("wb") as log:
            running.processes[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"services.{name}", env=env, stdout=log, stderr=log
            )


async def _start_gateway(
    running: harness.Cluster, endpoint: str, metrics_port: int
) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    upstreams = ",".join(f"{name}=127.0.0.1:{running.ports[name]}" for name in harness.SERVICES)
    env = {
        **_telemetry_env(endpoint),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_UPSTREAMS": upstreams,
        "GATEWAY_AUTH": "off",
        "GATEWAY_HEALTH_INTERVAL": "1",
        "METRICS_PORT": str(metrics_port),
    }
    for unset in ("GATEWAY_API_KEYS", "GATEWAY_JWT_SECRET", "GATEWAY_JWKS_URL"):
        env.pop(unset, None)
    with (running.logs / "gateway.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", env=env, stdout=log, stderr=log
        )
    return process, f"http://127.0.0.1:{port}"


async def _wait_gateway_ready(
    running: harness.Cluster, process: asyncio.subprocess.Process, base: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                tail = (running.logs / "gateway.log").read_text()[-2000:]
                raise RuntimeError(f"gateway exited {process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base}/readyz", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"gateway not ready after {START_TIMEOUT}s")


async def _stop_gateway(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


@asynccontextmanager
async def shop(endpoint: str, tmp_path: Path) -> AsyncIterator[Shop]:
    """Five services on SQLite and the gateway, on the shared RabbitMQ isolated by a per-run
    exchange and queue prefix, all exporting spans to ``endpoint``; stopped with SIGTERM
    (which flushes the spans still queued)."""
    broker_url, prefix = isolated_broker_url(RABBIT)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    running = harness.Cluster(
        broker_url=broker_url, ports={name: free_port() for name in harness.SERVICES}, logs=logs
    )
    metrics_ports = {name: free_port() for name in PROCESSES}
    try:
        async with harness.databases("sqlite", tmp_path) as urls:
            gateway: asyncio.subprocess.Process | None = None
            try:
                # All six start at once: the gateway is ready once every upstream is SERVING.
                await _start_services(running, urls, endpoint, metrics_ports)
                gateway, base = await _start_gateway(running, endpoint, metrics_ports["gateway"])
                await asyncio.gather(
                    *(harness._wait_serving(running, name) for name in harness.SERVICES),
                    _wait_gateway_ready(running, gateway, base),
                )
                yield Shop(
                    cluster=running,
                    base=base,
                    gateway=gateway,
                    metrics_ports=metrics_ports,
                    logs=logs,
                )
            finally:
                if gateway is not None:
                    await _stop_gateway(gateway)
                for channel in running.channels.values():
                    await channel.close()
                await harness._stop(running)
    finally:
        await delete_rabbit_topology(prefix)
