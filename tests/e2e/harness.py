"""The five services as real processes (``python -m services.<name>``) on free loopback
ports, each with its own database, against a real broker given by URL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shop.audit.v1 import audit_pb2_grpc
from shop.inventory.v1 import inventory_pb2_grpc
from shop.notifications.v1 import notifications_pb2_grpc
from shop.orders.v1 import orders_pb2_grpc
from shop.payments.v1 import payments_pb2_grpc
from tests.e2e.support import delete_rabbit_topology, isolated_broker_url
from tests.support.databases import POSTGRES_ADMIN_URL
from tests.support.ports import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SERVICES = ("inventory", "payments", "notifications", "audit", "orders")
CHECKOUT = Path(__file__).resolve().parents[2]
"""The checkout this harness belongs to, where its processes start (``python -m`` puts the
working directory first on their path): a copy of it, such as a ``git worktree`` for a
before/after benchmark, runs its own services, whatever directory it was started from."""
START_TIMEOUT = 60.0


@dataclass
class Cluster:
    broker_url: str
    ports: dict[str, int]
    logs: Path
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            self.channels[name] = grpc.aio.insecure_channel(f"127.0.0.1:{self.ports[name]}")
        return self.channels[name]

    @property
    def orders(self) -> Any:
        return orders_pb2_grpc.OrderServiceStub(self.channel("orders"))

    @property
    def inventory(self) -> Any:
        return inventory_pb2_grpc.InventoryServiceStub(self.channel("inventory"))

    @property
    def payments(self) -> Any:
        return payments_pb2_grpc.PaymentServiceStub(self.channel("payments"))

    @property
    def notifications(self) -> Any:
        return notifications_pb2_grpc.NotificationServiceStub(self.channel("notifications"))

    @property
    def audit(self) -> Any:
        return audit_pb2_grpc.AuditServiceStub(self.channel("audit"))

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""


@asynccontextmanager
async def databases(kind: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """One fresh database per service: SQLite files, or PostgreSQL databases dropped after."""
    if kind == "sqlite":
        yield {name: f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}" for name in SERVICES}
        return
    run = uuid.uuid4().hex[:8]
    names = {name: f"e2e_{run}_{name}" for name in SERVICES}
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        async with admin.connect() as conn:
            for database in names.values():
                await conn.execute(text(f'CREATE DATABASE "{database}"'))
        yield {name: f"{base}/{database}" for name, database in names.items()}
    finally:
        async with admin.connect() as conn:
            for database in names.values():
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


@asynccontextmanager
async def cluster(
    base_broker_url: str,
    kind: str,
    tmp_path: Path,
    *,
    ports: dict[str, int] | None = None,
    service_env: dict[str, dict[str, str]] | None = None,
    **extra_env: str,
) -> AsyncIterator[Cluster]:
    """Start the five services and wait until each is SERVING; stop them with SIGTERM.

    ``ports`` fixes each service's gRPC port (free ones by default), ``extra_env`` is added to
    every service's environment and ``service_env[name]`` to that one service's."""
    broker_url, prefix = isolated_broker_url(base_broker_url)
    ports = ports or {name: free_port() for name in SERVICES}
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    running = Cluster(broker_url=broker_url, ports=ports, logs=logs)
    try:
        async with databases(kind, tmp_path) as urls:
            try:
                for name in SERVICES:
                    env = {
                        **os.environ,
                        "SERVICE_NAME": name,
                        "GRPC_HOST": "127.0.0.1",
                        "GRPC_PORT": str(ports[name]),
                        "BROKER_URL": broker_url,
                        "DATABASE_URL": urls[name],
                        "INVENTORY_ADDR": f"127.0.0.1:{ports['inventory']}",
                        "ORDERS_ADDR": f"127.0.0.1:{ports['orders']}",
                        "LOG_LEVEL": "warning",
                        "SHUTDOWN_GRACE": "5",
                        # 200 reservations at once on 2 cores queue on a few hot rows.
                        "INVENTORY_DEADLINE": "30",
                        "PYTHONUNBUFFERED": "1",
                        **extra_env,
                        **(service_env or {}).get(name, {}),
                    }
                    env.pop("METRICS_PORT", None)
                    log = (logs / f"{name}.log").open("wb")
                    running.processes[name] = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        f"services.{name}",
                        cwd=CHECKOUT,
                        env=env,
                        stdout=log,
                        stderr=log,
                    )
                    log.close()
                await asyncio.gather(*(_wait_serving(running, name) for name in SERVICES))
                yield running
            finally:
                for channel in running.channels.values():
                    await channel.close()
                await _stop(running)
    finally:
        if base_broker_url.startswith("amqp"):
            await delete_rabbit_topology(prefix)


async def _wait_serving(running: Cluster, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    stub = health_pb2_grpc.HealthStub(running.channel(name))
    while time.monotonic() < deadline:
        process = running.processes[name]
        if process.returncode is not None:
            raise RuntimeError(
                f"{name} exited with {process.returncode}:\n{running.log_tail(name)}"
            )
        with contextlib.suppress(grpc.aio.AioRpcError):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{name} not SERVING after {START_TIMEOUT}s:\n{running.log_tail(name)}")


async def _stop(running: Cluster) -> None:
    for process in running.processes.values():
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in running.processes.values():
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
