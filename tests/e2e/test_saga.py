"""The order saga end to end: five service processes, a real broker, SQLite or PostgreSQL.

200 concurrent orders with mixed outcomes all end terminal with stock conserved, one payment
outcome per order, every event audited once and one notification per terminal order — also
when every event is delivered twice. Bad arguments, unknown ids and repeated idempotency keys
get the documented answers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import grpc
import pytest

from broker import Broker
from shop.audit.v1 import audit_pb2
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2
from shop.notifications.v1 import notifications_pb2
from shop.orders.v1 import orders_pb2
from shop.payments.v1 import payments_pb2
from tests.e2e.harness import cluster
from tests.e2e.support import RABBIT, status_details
from tests.support.databases import DATABASES

BROKERS = ["rabbitmq", "activemq"]
"""RabbitMQ: the shared node, isolated per run by exchange and queue prefix. ActiveMQ (STOMP):
a private instance per run, since virtual topic names come from the event types alone."""


STOCK = {"IN-0": 80, "IN-1": 80, "IN-2": 80, "IN-3": 80, "SCARCE": 10}
ORDERS = 200
CONFIRMED = orders_pb2.ORDER_STATUS_CONFIRMED
CANCELLED = orders_pb2.ORDER_STATUS_CANCELLED


async def _products(shop):
    for sku, quantity in STOCK.items():
        await shop.inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(
                idempotency_key=f"p-{sku}",
                sku=sku,
                name=sku,
                price=common_pb2.Money(currency_code="EUR", minor_units=1500),
                initial_quantity=quantity,
                low_stock_threshold=5,
            )
        )


def _request(i):
    sku, quantity = ("SCARCE", 1) if i % 5 == 0 else (f"IN-{i % 4}", 1 + i % 2)
    return orders_pb2.CreateOrderRequest(
        idempotency_key=f"order-{i}",
        customer_id=f"c-{i % 10}",
        lines=[common_pb2.ItemQuantity(sku=sku, quantity=quantity)],
        payment_token="pm_decline" if i % 7 == 0 else "pm_card",
    )


async def _all_pages(call, request, field):
    items, token = [], ""
    while True:
        request.page_token = token
        reply = await call(request)
        items += list(getattr(reply, field))
        token = reply.next_page_token
        if not token:
            return items


async def _until(check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


class _Duplicator:
    """A consumer group of its own on shop.# that publishes each event once more, same id,
    and counts the copies that come back (then the broker has routed them to every queue)."""

    def __init__(self, broker_url):
        self.broker = Broker(broker_url, source="/test/duplicator")
        self.sent: set[str] = set()
        self.returned: set[str] = set()

    async def start(self):
        await self.broker.start()
        await self.broker.subscribe("duplicator", ["shop.#"], self._again, concurrency=16)

    async def _again(self, event):
        if event.id in self.sent:
            self.returned.add(event.id)
        else:
            self.sent.add(event.id)
            await self.broker.publish_event(event)


def _expected_events(statuses):
    expected = Counter()
    for order_id, status in statuses.items():
        kinds = ["StockReserved", "OrderPlaced"]
        if status == CONFIRMED:
            kinds += ["PaymentAuthorized", "OrderConfirmed"]
        else:
            kinds += ["PaymentDeclined", "StockReleased", "OrderCancelled"]
        for kind in kinds:
            expected[kind, order_id] += 1
    return expected


async def _place_orders(shop):
    """ORDERS concurrent orders; returns {i: reply} of those placed."""
    await _products(shop)
    outcomes = await asyncio.gather(
        *(shop.orders.CreateOrder(_request(i), timeout=60) for i in range(ORDERS)),
        return_exceptions=True,
    )
    placed = {i: o for i, o in enumerate(outcomes) if not isinstance(o, BaseException)}
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(
        isinstance(e, grpc.aio.AioRpcError) and e.code() == grpc.StatusCode.FAILED_PRECONDITION
        for e in refused
    ), [e for e in refused if e.code() != grpc.StatusCode.FAILED_PRECONDITION][:3]
    # Only SCARCE runs out; declined SCARCE orders put their unit back for a later one.
    assert {i % 5 for i, o in enumerate(outcomes) if isinstance(o, BaseException)} == {0}
    assert 0 < len(refused) <= ORDERS // 5 - STOCK["SCARCE"]
    return placed


async def _terminal_statuses(shop, placed):
    ids = {o.order_id for o in placed.values()}

    async def terminal():
        orders = await _all_pages(
            shop.orders.ListOrders, orders_pb2.ListOrdersRequest(page_size=500), "orders"
        )
        assert {o.order_id for o in orders} == ids  # no order left by a refusal
        assert all(o.status in {CONFIRMED, CANCELLED} for o in orders)
        return {o.order_id: o.status for o in orders}

    statuses = await _until(terminal, 90)
    for i, order in placed.items():
        declined = _request(i).payment_token == "pm_decline"
        assert statuses[order.order_id] == (CANCELLED if declined else CONFIRMED)
    return statuses


async def _check_totals(shop, placed, statuses, timeout):
    """Stock, payments, audit and notifications add up exactly; returns the audited events."""
    ids = set(statuses)
    # Stock conserved: initial = available + units of confirmed orders (still reserved).
    confirmed_units = Counter()
    for i, order in placed.items():
        if statuses[order.order_id] == CONFIRMED:
            line = _request(i).lines[0]
            confirmed_units[line.sku] += line.quantity
    for sku, initial in STOCK.items():
        product = await shop.inventory.GetProduct(inventory_pb2.GetProductRequest(sku=sku))
        assert product.available_quantity + confirmed_units[sku] == initial, sku
        assert product.reserved_quantity == confirmed_units[sku], sku

    # Exactly one payment outcome per placed order.
    payments = await _all_pages(
        shop.payments.ListPayments, payments_pb2.ListPaymentsRequest(page_size=500), "payments"
    )
    assert sorted(p.order_id for p in payments) == sorted(ids)

    # Audit: every event exactly once; the expected events per order.
    expected = _expected_events(statuses)

    async def audited():
        events = await _all_pages(
            shop.audit.QueryAudit, audit_pb2.QueryAuditRequest(page_size=1000), "events"
        )
        assert len({e.event_id for e in events}) == len(events)
        found = Counter((e.type.rsplit(".", 1)[1], e.subject) for e in events if e.subject in ids)
        assert found == expected
        return events

    events = await _until(audited, timeout)
    assert any(e.type.endswith("StockLow") for e in events)
    assert all(len(e.trace_id) == 32 for e in events)

    async def notified():
        sent = await _all_pages(
            shop.notifications.ListNotifications,
            notifications_pb2.ListNotificationsRequest(page_size=500),
            "notifications",
        )
        per_order = Counter(n.order_id for n in sent)
        assert set(per_order) == ids
        assert set(per_order.values()) == {1}

    await _until(notified, timeout)
    return events


async def _run_saga(shop, *, duplicate):
    duplicator = _Duplicator(shop.broker_url) if duplicate else None
    if duplicator is not None:
        await duplicator.start()
    try:
        placed = await _place_orders(shop)
        statuses = await _terminal_statuses(shop, placed)
        events = await _check_totals(shop, placed, statuses, timeout=60)
        if duplicator is None:
            return
        every_id = {e.event_id for e in events}

        async def copied():
            assert every_id <= duplicator.returned, len(every_id - duplicator.returned)

        # Every event went out twice and both copies reached the broker's queues; the
        # services consume as fast as the duplicator, so give them a moment, then the
        # totals must be what they were: no second payment, refund, notification, audit
        # row or stock movement.
        await _until(copied, 60)
        await asyncio.sleep(2)
        await _check_totals(shop, placed, statuses, timeout=0)
    finally:
        if duplicator is not None:
            await duplicator.broker.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("broker_url", BROKERS, indirect=True)
@pytest.mark.parametrize("kind", DATABASES)
async def test_two_hundred_orders_reach_terminal_states_with_stock_conserved(
    kind, broker_url, tmp_path
):
    """200 concurrent orders (in stock, out of stock, declined) end CONFIRMED or CANCELLED as
    their inputs say; stock, payments, audit and notifications all add up exactly."""
    async with cluster(broker_url, kind, tmp_path) as shop:
        await _run_saga(shop, duplicate=False)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("broker_url", BROKERS, indirect=True)
@pytest.mark.parametrize("kind", DATABASES)
async def test_every_event_delivered_twice_has_no_second_effect(kind, broker_url, tmp_path):
    """With every event re-published under its own id, the same totals hold: no double
    payment, refund, notification, audit row or stock movement."""
    async with cluster(broker_url, kind, tmp_path) as shop:
        await _run_saga(shop, duplicate=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", DATABASES)
async def test_contract_errors_and_idempotency(kind, tmp_path):
    """Invalid arguments are INVALID_ARGUMENT with field violations, unknown ids NOT_FOUND, a
    repeated idempotency key returns the first order, and GetOrder shows the saga's steps."""
    async with cluster(RABBIT, kind, tmp_path) as shop:
        await _products(shop)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shop.orders.CreateOrder(
                orders_pb2.CreateOrderRequest(
                    customer_id="",
                    lines=[common_pb2.ItemQuantity(sku="IN-0", quantity=0)],
                )
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        (bad,) = status_details(caught.value)
        assert {v.field for v in bad.field_violations} >= {
            "idempotency_key",
            "customer_id",
            "lines[0].quantity",
        }
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shop.orders.GetOrder(orders_pb2.GetOrderRequest(order_id=str(uuid.uuid4())))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

        request = _request(1)
        first = await shop.orders.CreateOrder(request)
        again = await shop.orders.CreateOrder(request)
        assert again.order_id == first.order_id
        product = await shop.inventory.GetProduct(inventory_pb2.GetProductRequest(sku="IN-1"))
        assert product.available_quantity == STOCK["IN-1"] - request.lines[0].quantity

        statuses = [
            o.status
            async for o in shop.orders.WatchOrder(
                orders_pb2.WatchOrderRequest(order_id=first.order_id), timeout=30
            )
        ]
        assert statuses[-1] == CONFIRMED
        order = await shop.orders.GetOrder(orders_pb2.GetOrderRequest(order_id=first.order_id))
        assert [s.name for s in order.steps] == [
            "reserve_stock",
            "place_order",
            "authorize_payment",
            "confirm_order",
        ]
        cancelled = await shop.orders.CancelOrder(
            orders_pb2.CancelOrderRequest(order_id=first.order_id, reason="changed my mind")
        )
        assert cancelled.status == CANCELLED
        product = await shop.inventory.GetProduct(inventory_pb2.GetProductRequest(sku="IN-1"))
        assert product.available_quantity == STOCK["IN-1"]

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shop.orders.CreateOrder(
                orders_pb2.CreateOrderRequest(
                    idempotency_key="too-many",
                    customer_id="c",
                    lines=[common_pb2.ItemQuantity(sku="SCARCE", quantity=11)],
                )
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        (failure,) = status_details(caught.value)
        assert [v.subject for v in failure.violations] == ["products/SCARCE"]
