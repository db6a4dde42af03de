"""One order's saga as ONE connected trace across every process, sync and async hops.

The five services and the gateway run as real processes on the shared RabbitMQ (per-run
exchange and queue prefix), each exporting spans over OTLP/gRPC to a real receiver started
here. One order is placed through the REST gateway with a client-supplied trace context
(``traceparent``, or only ``X-Amzn-Trace-Id``); the test then reads the trace back from the
receiver: every span of the saga in that trace, the tree connected from the client's span
through gRPC (gateway -> orders -> inventory) and the broker (outbox publish -> payments ->
orders -> notifications and audit), the right span kinds and ``messaging.*`` attributes, and
the trace id in the JSON log lines of every process."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shop.orders.v1 import orders_pb2
from tests.e2e._system import PROCESSES, Shop, shop
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.timeout(120)

CREATE = "/shop.orders.v1.OrderService/CreateOrder"
RESERVE = "/shop.inventory.v1.InventoryService/ReserveStock"
PLACED = "shop.orders.v1.OrderPlaced"
RESERVED = "shop.inventory.v1.StockReserved"
AUTHORIZED = "shop.payments.v1.PaymentAuthorized"
CONFIRMED = "shop.orders.v1.OrderConfirmed"

SAGA = {
    ("gateway", "SERVER", "POST /v1/orders"),
    ("gateway", "CLIENT", CREATE),
    ("orders", "SERVER", CREATE),
    ("orders", "CLIENT", RESERVE),
    ("inventory", "SERVER", RESERVE),
    ("inventory", "PRODUCER", f"send {RESERVED}"),
    ("orders", "PRODUCER", f"send {PLACED}"),
    ("payments", "CONSUMER", f"process {PLACED}"),
    ("payments", "PRODUCER", f"send {AUTHORIZED}"),
    ("orders", "CONSUMER", f"process {AUTHORIZED}"),
    ("orders", "PRODUCER", f"send {CONFIRMED}"),
    ("notifications", "CONSUMER", f"process {CONFIRMED}"),
    *(("audit", "CONSUMER", f"process {event}") for event in (RESERVED, PLACED, AUTHORIZED)),
    ("audit", "CONSUMER", f"process {CONFIRMED}"),
}
"""(service, kind, name) of the spans the saga of one confirmed order must have made."""


@pytest.fixture
async def system(tmp_path) -> AsyncIterator[tuple[Shop, OtlpReceiver]]:
    async with OtlpReceiver() as receiver, shop(receiver.endpoint, tmp_path) as running:
        yield running, receiver


def _client_context(kind: str) -> tuple[str, str, dict[str, str]]:
    """(trace id, client span id, headers) the client sends, in W3C or X-Ray form."""
    trace_id = uuid.uuid4().hex
    span_id = uuid.uuid4().hex[:16]
    if kind == "traceparent":
        return trace_id, span_id, {"traceparent": f"00-{trace_id}-{span_id}-01"}
    # X-Ray: the first 8 hex digits are the epoch seconds of the trace's start.
    trace_id = f"{int(time.time()):08x}{trace_id[8:]}"
    root = f"1-{trace_id[:8]}-{trace_id[8:]}"
    return trace_id, span_id, {"X-Amzn-Trace-Id": f"Root={root};Parent={span_id};Sampled=1"}


async def _place_one_order(running: Shop, headers: dict[str, str]) -> httpx.Response:
    """A product (its own trace), then one order with the client's trace headers; wait until
    the order is CONFIRMED."""
    sku = f"T-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        product = await http.post(
            "/v1/products",
            json={
                "idempotencyKey": f"p-{sku}",
                "sku": sku,
                "name": "Traced widget",
                "price": {"currencyCode": "EUR", "minorUnits": "1500"},
                "initialQuantity": 100,
                "lowStockThreshold": 1,
            },
        )
        assert product.status_code == 200, product.text
        placed = await http.post(
            "/v1/orders",
            headers=headers,
            json={
                "idempotencyKey": f"o-{sku}",
                "customerId": "c-trace",
                "lines": [{"sku": sku, "quantity": 2}],
                "paymentToken": "pm_card",
            },
        )
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    deadline = time.monotonic() + 30
    while True:
        order = await running.cluster.orders.GetOrder(
            orders_pb2.GetOrderRequest(order_id=order_id), timeout=10
        )
        if order.status == orders_pb2.ORDER_STATUS_CONFIRMED:
            return placed
        assert time.monotonic() < deadline, f"order still {order.status} after 30 s"
        await asyncio.sleep(0.1)


def _one(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> ReceivedSpan:
    found = [s for s in spans if (s.service, s.kind, s.name) == (service, kind, name)]
    assert len(found) == 1, f"{len(found)} spans {service} {kind} {name}"
    return found[0]


def _assert_child(child: ReceivedSpan, parent: ReceivedSpan) -> None:
    assert child.parent_span_id == parent.span_id, (
        f"{child.service} {child.kind} {child.name} is not a child of "
        f"{parent.service} {parent.kind} {parent.name}"
    )


def _assert_messaging(producer: ReceivedSpan, consumer: ReceivedSpan, group: str) -> None:
    """A PRODUCER/CONSUMER pair of one event: attributes per the messaging conventions, the
    consumer a child of the producer and linked to it."""
    event_type = producer.name.removeprefix("send ")
    sent, got = producer.attributes, consumer.attributes
    assert sent["messaging.system"] == got["messaging.system"] == "rabbitmq"
    assert sent["messaging.operation.type"] == "send"
    assert got["messaging.operation.type"] == "process"
    assert sent["messaging.destination.name"] == got["messaging.destination.name"] == event_type
    assert sent["messaging.message.id"]
    assert got["messaging.message.id"] == sent["messaging.message.id"]
    assert got["messaging.consumer.group.name"] == group
    assert "messaging.consumer.group.name" not in sent
    _assert_child(consumer, producer)
    assert (producer.trace_id, producer.span_id) in consumer.links


def _assert_saga_tree(spans: list[ReceivedSpan], trace_id: str, client_span: str) -> ReceivedSpan:
    """The saga's tree is complete and connected; returns the gateway's SERVER span."""
    trace = [s for s in spans if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in trace}
    # Connected: every span's parent is in the trace, or is the client's own span.
    for span in trace:
        assert span.parent_span_id in {*by_id, client_span}, (
            f"{span.service} {span.kind} {span.name} has a parent outside the trace"
        )
    assert {s.service for s in trace} == set(PROCESSES)
    assert {s.service for s in trace} == {s.resource["service.name"] for s in trace}

    gateway_server = _one(trace, "gateway", "SERVER", "POST /v1/orders")
    gateway_client = _one(trace, "gateway", "CLIENT", CREATE)
    orders_server = _one(trace, "orders", "SERVER", CREATE)
    orders_client = _one(trace, "orders", "CLIENT", RESERVE)
    inventory_server = _one(trace, "inventory", "SERVER", RESERVE)
    assert gateway_server.parent_span_id == client_span
    assert gateway_server.attributes["http.route"] == "/v1/orders"
    _assert_child(gateway_client, gateway_server)
    _assert_child(orders_server, gateway_client)
    _assert_child(orders_client, orders_server)
    _assert_child(inventory_server, orders_client)
    for span in (gateway_client, orders_server, orders_client, inventory_server):
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.grpc.status_code"] == 0

    # The outbox relay publishes in the context of the request that wrote the row.
    reserved = _one(trace, "inventory", "PRODUCER", f"send {RESERVED}")
    placed = _one(trace, "orders", "PRODUCER", f"send {PLACED}")
    _assert_child(reserved, inventory_server)
    _assert_child(placed, orders_server)

    payments_consumer = _one(trace, "payments", "CONSUMER", f"process {PLACED}")
    authorized = _one(trace, "payments", "PRODUCER", f"send {AUTHORIZED}")
    orders_consumer = _one(trace, "orders", "CONSUMER", f"process {AUTHORIZED}")
    confirmed = _one(trace, "orders", "PRODUCER", f"send {CONFIRMED}")
    notifications_consumer = _one(trace, "notifications", "CONSUMER", f"process {CONFIRMED}")
    _assert_messaging(placed, payments_consumer, "payments")
    _assert_child(authorized, payments_consumer)
    _assert_messaging(authorized, orders_consumer, "orders")
    _assert_child(confirmed, orders_consumer)
    _assert_messaging(confirmed, notifications_consumer, "notifications")
    # Audit consumes every event of the saga, each a child of its publish.
    for producer in (reserved, placed, authorized, confirmed):
        event = producer.name.removeprefix("send ")
        _assert_messaging(producer, _one(trace, "audit", "CONSUMER", f"process {event}"), "audit")

    # No span of the saga's events went to another trace (no hop started a new one).
    event_ids = {s.attributes["messaging.message.id"] for s in trace if s.kind == "PRODUCER"}
    strays = [
        s
        for s in spans
        if s.attributes.get("messaging.message.id") in event_ids and s.trace_id != trace_id
    ]
    assert not strays, f"saga spans in other traces: {strays}"
    return gateway_server


def _assert_logs_correlated(running: Shop, trace_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every process wrote JSON log lines carrying the trace id, in both forms."""
    xray = f"1-{trace_id[:8]}-{trace_id[8:]}"
    correlated = {}
    for name in PROCESSES:
        lines = [line for line in running.log_lines(name) if line.get("trace_id") == trace_id]
        assert lines, f"no log line of {name} carries trace {trace_id}"
        assert {line["xray_trace_id"] for line in lines} == {xray}
        assert all(len(line["span_id"]) == 16 for line in lines)
        assert {line["service"] for line in lines} == {name}
        correlated[name] = lines
    return correlated


@pytest.mark.parametrize("header", ["traceparent", "x-amzn-trace-id"])
async def test_one_order_is_one_connected_trace_across_every_process(system, header):
    """The client's trace is continued by the gateway and carried over every gRPC and broker
    hop: one tree from the client's span to notifications and audit, logs correlated."""
    running, receiver = system
    trace_id, client_span, headers = _client_context(header)

    response = await _place_one_order(running, headers)

    def complete(spans: list[ReceivedSpan]) -> bool:
        return SAGA.issubset((s.service, s.kind, s.name) for s in spans if s.trace_id == trace_id)

    spans = await receiver.wait_for(complete, timeout=20)
    gateway_server = _assert_saga_tree(spans, trace_id, client_span)

    # The gateway tells the client its trace, with its own SERVER span as the parent to name.
    server_span = gateway_server.span_id
    assert response.headers["x-trace-id"] == trace_id
    assert response.headers["traceresponse"] == f"00-{trace_id}-{server_span}-01"
    xray = f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={server_span};Sampled=1"
    assert response.headers.get_list("x-amzn-trace-id") == [xray]  # one trace, not two

    deadline = time.monotonic() + 10
    while True:
        try:
            lines = _assert_logs_correlated(running, trace_id)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    # The lines name what they were about: the RPC, or the event the consumer processed.
    assert any(line.get("rpc.method") == "ReserveStock" for line in lines["inventory"])
    confirmed_id = next(
        s.attributes["messaging.message.id"]
        for s in spans
        if s.trace_id == trace_id and s.name == f"send {CONFIRMED}"
    )
    assert any(
        line["event"] == "message.processed" and line.get("event_id") == confirmed_id
        for line in lines["audit"]
    )
