"""The whole shop as real processes for the reliability tier: the e2e harness's five services
(reused as is, from tests/e2e/harness.py) plus ``python -m gateway`` in front of them, with
what the fault tests need on top: kill -9 and restart one service with the exact environment it
ran with, REST load with bounded concurrency, and the end-state invariants."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shop.audit.v1 import audit_pb2
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2
from shop.notifications.v1 import notifications_pb2
from shop.orders.v1 import orders_pb2
from shop.payments.v1 import payments_pb2
from tests.e2e.harness import CHECKOUT, Cluster, cluster
from tests.support.ports import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = [
    "STOCK",
    "Load",
    "System",
    "order_body",
    "shop_system",
    "until",
]

STOCK = {"R-0": 100_000, "R-1": 100_000, "R-2": 100_000, "R-3": 100_000}
"""Plenty of stock: every order is placed, so each one must reach a payment outcome."""
CONFIRMED = orders_pb2.ORDER_STATUS_CONFIRMED
CANCELLED = orders_pb2.ORDER_STATUS_CANCELLED
SERVICE_SHORT = ("orders", "inventory", "payments", "notifications", "audit")


def order_body(i: int, run: str) -> dict[str, Any]:
    """The i-th order of a run as the REST client sends it: one line, every 7th declined."""
    return {
        "idempotencyKey": f"{run}-{i}",
        "customerId": f"c-{i % 13}",
        "lines": [{"sku": f"R-{i % 4}", "quantity": 1 + i % 3}],
        "paymentToken": "pm_decline" if i % 7 == 0 else "pm_card",
    }


async def until(check: Callable[[], Awaitable[Any]], timeout: float, pause: float = 0.5) -> Any:
    """``check()``'s value once it stops raising AssertionError, or its last error at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(pause)


async def all_pages(call: Any, request: Any, name: str) -> list[Any]:
    items: list[Any] = []
    token = ""
    while True:
        request.page_token = token
        reply = await call(request, timeout=30)
        items += list(getattr(reply, name))
        token = reply.next_page_token
        if not token:
            return items


@dataclass
class Load:
    """What a REST load run did: placed orders by index, refusals, timings."""

    placed: dict[int, str] = field(default_factory=dict)
    """order index -> order id of every 200 answer."""
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    """(index, HTTP status, body) of every answer that was not 200, after retries."""
    retried: int = 0
    """5xx answers (e.g. 503 while a service restarts) that the client retried."""
    seconds: float = 0.0


@dataclass
class System:
    """A running shop: services (``cluster``), the gateway's base URL and its process."""

    cluster: Cluster
    base: str
    gateway: asyncio.subprocess.Process
    logs: Path
    http: httpx.AsyncClient
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    async def products(self, stock: dict[str, int] = STOCK) -> None:
        for sku, quantity in stock.items():
            await self.cluster.inventory.CreateProduct(
                inventory_pb2.CreateProductRequest(
                    idempotency_key=f"p-{sku}",
                    sku=sku,
                    name=sku,
                    price=common_pb2.Money(currency_code="EUR", minor_units=1500),
                    initial_quantity=quantity,
                    low_stock_threshold=5,
                ),
                timeout=30,
            )

    async def place(
        self, indices: range, run: str, *, concurrency: int = 32, load: Load | None = None
    ) -> Load:
        """POST each order through the gateway, ``concurrency`` at a time. A 5xx or a dropped
        connection is retried with the same idempotency key (what a real client does), so a
        retry can never create a second order."""
        load = load or Load()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in indices:
            queue.put_nowait(i)
        started = time.monotonic()

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                for _ in range(60):
                    try:
                        response = await self.http.post(
                            f"{self.base}/v1/orders", json=order_body(i, run), timeout=60
                        )
                    except httpx.TransportError:
                        load.retried += 1
                        await asyncio.sleep(0.5)
                        continue
                    if response.status_code >= 500:
                        load.retried += 1
                        await asyncio.sleep(0.5)
                        continue
                    if response.status_code == 200:
                        load.placed[i] = response.json()["orderId"]
                    else:
                        load.failures.append((i, response.status_code, response.text[:300]))
                    break
                else:
                    load.failures.append((i, 0, "gave up after 60 attempts"))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        load.seconds += time.monotonic() - started
        return load

    async def order_status(self, order_id: str) -> int:
        reply = await self.cluster.orders.GetOrder(
            orders_pb2.GetOrderRequest(order_id=order_id), timeout=10
        )
        return int(reply.status)

    def pid(self, name: str) -> int:
        return int(self.cluster.processes[name].pid)

    async def kill(self, name: str) -> None:
        """SIGKILL one service (no shutdown hooks run), remembering how it was started."""
        process = self.cluster.processes[name]
        raw = Path(f"/proc/{process.pid}/environ").read_bytes()
        self.environments[name] = dict(
            item.split("=", 1) for item in raw.decode().split("\0") if "=" in item
        )
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def restart(self, name: str) -> float:
        """Start a killed service again with the same environment; seconds until SERVING."""
        started = time.monotonic()
        log = (self.logs / f"{name}.log").open("ab")
        self.cluster.processes[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"services.{name}",
            cwd=CHECKOUT,
            env=self.environments[name],
            stdout=log,
            stderr=log,
        )
        log.close()
        await _wait_serving(self.cluster, name)
        return time.monotonic() - started

    def all_logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs.glob("*.log"))

    async def check_invariants(self, load: Load, run: str, timeout: float = 240) -> dict[str, Any]:
        """Every placed order terminal as its payment token says; exactly one payment per
        order; stock conserved; one notification per order; audit has every event once."""
        ids = set(load.placed.values())
        expected_status = {
            load.placed[i]: CANCELLED
            if order_body(i, run)["paymentToken"] == "pm_decline"
            else CONFIRMED
            for i in load.placed
        }

        async def terminal() -> dict[str, int]:
            orders = await all_pages(
                self.cluster.orders.ListOrders,
                orders_pb2.ListOrdersRequest(page_size=500),
                "orders",
            )
            mine = {o.order_id: o.status for o in orders if o.order_id in ids}
            assert set(mine) == ids, f"{len(ids - set(mine))} orders missing"
            pending = [o for o, s in mine.items() if s not in {CONFIRMED, CANCELLED}]
            assert not pending, f"{len(pending)} orders not terminal"
            return mine

        statuses = await until(terminal, timeout, pause=1.0)
        assert statuses == expected_status

        confirmed_units: Counter[str] = Counter()
        for i, order_id in load.placed.items():
            if statuses[order_id] == CONFIRMED:
                line = order_body(i, run)["lines"][0]
                confirmed_units[line["sku"]] += line["quantity"]

        async def conserved() -> None:
            # Stock of a declined order comes back when inventory handles OrderCancelled.
            for sku, initial in STOCK.items():
                product = await self.cluster.inventory.GetProduct(
                    inventory_pb2.GetProductRequest(sku=sku), timeout=10
                )
                seen = (product.available_quantity, product.reserved_quantity)
                want = (initial - confirmed_units[sku], confirmed_units[sku])
                assert seen == want, f"{sku}: (available, reserved) {seen} != {want}"

        await until(conserved, timeout, pause=1.0)

        payments = await all_pages(
            self.cluster.payments.ListPayments,
            payments_pb2.ListPaymentsRequest(page_size=500),
            "payments",
        )
        per_order = Counter(p.order_id for p in payments if p.order_id in ids)
        assert set(per_order) == ids
        assert set(per_order.values()) == {1}, "an order with two payments"

        expected: Counter[tuple[str, str]] = Counter()
        for order_id, status in statuses.items():
            kinds = ["StockReserved", "OrderPlaced"]
            kinds += (
                ["PaymentAuthorized", "OrderConfirmed"]
                if status == CONFIRMED
                else ["PaymentDeclined", "StockReleased", "OrderCancelled"]
            )
            expected.update((kind, order_id) for kind in kinds)

        async def audited() -> int:
            events = await all_pages(
                self.cluster.audit.QueryAudit,
                audit_pb2.QueryAuditRequest(page_size=1000),
                "events",
            )
            assert len({e.event_id for e in events}) == len(events), "an event audited twice"
            found = Counter(
                (e.type.rsplit(".", 1)[1], e.subject) for e in events if e.subject in ids
            )
            assert found == expected, f"audit differs: {len(found)} vs {len(expected)} kinds"
            return len(events)

        audited_count = await until(audited, timeout, pause=1.0)

        async def notified() -> None:
            sent = await all_pages(
                self.cluster.notifications.ListNotifications,
                notifications_pb2.ListNotificationsRequest(page_size=500),
                "notifications",
            )
            per = Counter(n.order_id for n in sent if n.order_id in ids)
            assert set(per) == ids, f"{len(ids - set(per))} orders without notification"
            assert set(per.values()) == {1}, "an order notified twice"

        await until(notified, timeout, pause=1.0)
        return {
            "orders": len(ids),
            "confirmed": sum(1 for s in statuses.values() if s == CONFIRMED),
            "cancelled": sum(1 for s in statuses.values() if s == CANCELLED),
            "audited_events": audited_count,
        }


async def _wait_serving(running: Cluster, name: str, timeout: float = 60) -> None:
    stub = health_pb2_grpc.HealthStub(running.channel(name))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = running.processes[name]
        if process.returncode is not None:
            raise RuntimeError(f"{name} exited {process.returncode}:\n{running.log_tail(name)}")
        with contextlib.suppress(grpc.aio.AioRpcError):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{name} not SERVING after {timeout}s:\n{running.log_tail(name)}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def _start_gateway(
    ports: dict[str, int], logs: Path, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    upstreams = ",".join(f"{name}=127.0.0.1:{ports[name]}" for name in SERVICE_SHORT)
    environment = {
        **os.environ,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_UPSTREAMS": upstreams,
        "GATEWAY_HEALTH_INTERVAL": "1",
        "OTEL_SDK_DISABLED": "true",
        "LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    log = (logs / "gateway.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", cwd=CHECKOUT, env=environment, stdout=log, stderr=log
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.returncode is not None:
                text = (logs / "gateway.log").read_text()[-2000:]
                raise RuntimeError(f"gateway exited {process.returncode}:\n{text}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base}/readyz", timeout=1)).status_code == 200:
                    return process, base
            await asyncio.sleep(0.2)
    process.kill()
    raise TimeoutError("gateway not ready after 60s")


@asynccontextmanager
async def shop_system(
    broker_url: str,
    tmp_path: Path,
    *,
    kind: str = "sqlite",
    gateway_env: dict[str, str] | None = None,
    ports: dict[str, int] | None = None,
    per_service_env: dict[str, dict[str, str]] | None = None,
    **service_env: str,
) -> AsyncIterator[System]:
    """The five services (e2e harness) and the gateway in front of them, all processes."""
    async with cluster(
        broker_url, kind, tmp_path, ports=ports, service_env=per_service_env, **service_env
    ) as running:
        gateway, base = await _start_gateway(running.ports, running.logs, gateway_env or {})
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        try:
            async with httpx.AsyncClient(limits=limits) as http:
                yield System(
                    cluster=running, base=base, gateway=gateway, logs=running.logs, http=http
                )
        finally:
            if gateway.returncode is None:
                gateway.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(gateway.wait(), 20)
                except TimeoutError:
                    gateway.kill()
                    await gateway.wait()
