"""``/metrics`` of every process after real traffic: the counters moved by exactly what was done.

The five services and the gateway run as real processes, each serving Prometheus text on its
own ``METRICS_PORT``. The test scrapes all six, places orders through the REST gateway (three
paid, one declined) plus a lookup of an unknown order, waits until the sagas have run, scrapes
again and checks the differences: HTTP requests by route and status at the gateway, RPCs by
method and status, events published by type and consumed by type and group, nothing retried
or dead-lettered, and every outbox backlog back to 0."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e._system import PROCESSES, Shop, shop
from tests.support.otlp_receiver import OtlpReceiver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.timeout(120)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

PAID, DECLINED = 3, 1
ORDERS = PAID + DECLINED
SENT = {
    "inventory": {"StockReserved": ORDERS, "StockReleased": DECLINED},
    "orders": {"OrderPlaced": ORDERS, "OrderConfirmed": PAID, "OrderCancelled": DECLINED},
    "payments": {"PaymentAuthorized": PAID, "PaymentDeclined": DECLINED},
    "notifications": {},
    "audit": {},
}
"""Events each service publishes for three paid orders and one declined."""
CONSUMED = {
    "payments": {"OrderPlaced": ORDERS, "OrderCancelled": DECLINED},
    "orders": {"PaymentAuthorized": PAID, "PaymentDeclined": DECLINED},
    "notifications": {"OrderConfirmed": PAID, "OrderCancelled": DECLINED},
    "audit": {kind: n for sent in SENT.values() for kind, n in sent.items()},
    "inventory": {},
}
"""Events each service's consumer group processes: the types it subscribes to."""
PACKAGES = {
    "StockReserved": "inventory",
    "StockReleased": "inventory",
    "OrderPlaced": "orders",
    "OrderConfirmed": "orders",
    "OrderCancelled": "orders",
    "PaymentAuthorized": "payments",
    "PaymentDeclined": "payments",
}


def _type(kind: str) -> str:
    return f"shop.{PACKAGES[kind]}.v1.{kind}"


@pytest.fixture
async def system(tmp_path) -> AsyncIterator[Shop]:
    async with OtlpReceiver() as receiver, shop(receiver.endpoint, tmp_path) as running:
        yield running


async def _scrape(http: httpx.AsyncClient, running: Shop) -> dict[str, Samples]:
    scraped = {}
    for name in PROCESSES:
        response = await http.get(running.metrics_url(name))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[sample.name, frozenset(sample.labels.items())] = sample.value
        scraped[name] = samples
    return scraped


def _delta(
    before: Samples, after: Samples, name: str, **labels: str
) -> dict[frozenset[tuple[str, str]], float]:
    """Per label set: how much sample ``name`` moved among series matching ``labels``."""
    moved = {}
    for (sample, series), value in after.items():
        if sample != name or not set(labels.items()) <= series:
            continue
        change = value - before.get((sample, series), 0.0)
        if change:
            moved[series] = change
    return moved


def _by(moved: dict[frozenset[tuple[str, str]], float], *keys: str) -> Counter[tuple[str, ...]]:
    totals: Counter[tuple[str, ...]] = Counter()
    for series, value in moved.items():
        labels = dict(series)
        totals[tuple(labels[key] for key in keys)] += int(value)
    return totals


def _order(sku: str, i: int) -> dict[str, object]:
    return {
        "idempotencyKey": f"m-{sku}-{i}",
        "customerId": f"c-{i}",
        "lines": [{"sku": sku, "quantity": 1}],
        "paymentToken": "pm_decline" if i < DECLINED else "pm_card",
    }


async def test_counters_move_by_exactly_the_traffic_sent(system):
    """Every process's /metrics moves by what a readiness probe, one product, four orders (one
    declined) and one unknown-order lookup cause, and the outbox backlogs return to 0."""
    running = system
    sent_http: Counter[tuple[str, ...]] = Counter()
    async with httpx.AsyncClient(timeout=30) as http:
        before = await _scrape(http, running)

        async def call(method: str, route: str, path: str, **kwargs: object) -> httpx.Response:
            response = await http.request(method, f"{running.base}{path}", **kwargs)
            sent_http[method, route, str(response.status_code)] += 1
            return response

        # A probe is counted under its own path (not as an unmatched route).
        assert (await call("GET", "/readyz", "/readyz")).status_code == 200
        sku = f"M-{uuid.uuid4().hex[:6]}"
        product = {
            "idempotencyKey": f"p-{sku}",
            "sku": sku,
            "name": "Metered widget",
            "price": {"currencyCode": "EUR", "minorUnits": "900"},
            "initialQuantity": 100,
            "lowStockThreshold": 1,
        }
        assert (await call("POST", "/v1/products", "/v1/products", json=product)).is_success
        order_ids = []
        for i in range(ORDERS):
            placed = await call("POST", "/v1/orders", "/v1/orders", json=_order(sku, i))
            assert placed.status_code == 200, placed.text
            order_ids.append(placed.json()["orderId"])
        unknown = f"/v1/orders/{uuid.uuid4()}"
        missing = await call("GET", "/v1/orders/{order_id}", unknown)
        assert missing.status_code == 404

        # Until every order is terminal, read through the gateway (those reads count too).
        deadline = time.monotonic() + 30
        pending = set(order_ids)
        while pending:
            assert time.monotonic() < deadline, f"orders not terminal: {pending}"
            for order_id in sorted(pending):
                path = f"/v1/orders/{order_id}"
                order = (await call("GET", "/v1/orders/{order_id}", path)).json()
                if order["status"] in {"ORDER_STATUS_CONFIRMED", "ORDER_STATUS_CANCELLED"}:
                    pending.discard(order_id)
            await asyncio.sleep(0.2)

        # Then until the last consumers (notifications, audit) have processed every event.
        deadline = time.monotonic() + 30
        while True:
            after = await _scrape(http, running)
            consumed = {
                name: _by(
                    _delta(before[name], after[name], "messaging_client_consumed_messages_total"),
                    "messaging_destination_name",
                )
                for name in PROCESSES
            }
            expected = {
                name: Counter({(_type(k),): n for k, n in CONSUMED.get(name, {}).items()})
                for name in PROCESSES
            }
            if consumed == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert consumed == expected

        # Outbox gauges are refreshed every 5 s: wait for a refresh after the last publish.
        deadline = time.monotonic() + 15
        while True:
            backlogs = {
                name: after[name].get(("shopmq_outbox_backlog", frozenset({("outbox", "outbox")})))
                for name in running.cluster.processes
            }
            if set(backlogs.values()) == {0.0} or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
            after = await _scrape(http, running)
        assert backlogs == dict.fromkeys(running.cluster.processes, 0.0)
        for name in running.cluster.processes:
            age = after[name][
                ("shopmq_outbox_oldest_age_seconds", frozenset({("outbox", "outbox")}))
            ]
            assert age == 0.0

    # Gateway: one histogram count per HTTP request, by route template and status.
    gateway = _by(
        _delta(before["gateway"], after["gateway"], "http_server_request_duration_seconds_count"),
        "http_request_method",
        "http_route",
        "http_response_status_code",
    )
    assert gateway == sent_http

    # Services: RPCs by method and status code.
    def rpcs(name: str) -> Counter[tuple[str, ...]]:
        moved = _delta(before[name], after[name], "rpc_server_duration_seconds_count")
        return _by(moved, "rpc_method", "rpc_grpc_status_code")

    assert rpcs("inventory") == {
        ("CreateProduct", "OK"): 1,
        ("ReserveStock", "OK"): ORDERS,
        ("ReleaseStock", "OK"): DECLINED,
    }
    orders_rpcs = rpcs("orders")
    assert orders_rpcs["CreateOrder", "OK"] == ORDERS
    assert orders_rpcs["GetOrder", "NOT_FOUND"] == 1
    # Gateway reads, plus notifications reading each order it notifies about.
    gateway_reads = sent_http["GET", "/v1/orders/{order_id}", "200"]
    assert orders_rpcs["GetOrder", "OK"] >= gateway_reads
    assert set(orders_rpcs) == {
        ("CreateOrder", "OK"),
        ("GetOrder", "NOT_FOUND"),
        ("GetOrder", "OK"),
    }
    for name in ("payments", "notifications", "audit"):
        assert rpcs(name) == {}

    # Events: published by type, processed by type and group, with handler durations.
    for name in running.cluster.processes:
        published = _by(
            _delta(before[name], after[name], "messaging_client_sent_messages_total"),
            "messaging_destination_name",
        )
        assert published == {(_type(k),): n for k, n in SENT[name].items()}, name
        processed = _delta(before[name], after[name], "messaging_client_consumed_messages_total")
        assert {dict(s)["messaging_consumer_group_name"] for s in processed} <= {name}
        assert {dict(s)["outcome"] for s in processed} <= {"ack"}
        timed = _by(
            _delta(before[name], after[name], "messaging_process_duration_seconds_count"),
            "messaging_destination_name",
        )
        assert timed == consumed[name]
        for counter in ("shopmq_messages_retried_total", "shopmq_messages_dead_lettered_total"):
            assert _delta(before[name], after[name], counter) == {}, (name, counter)
