"""Payments and audit in-process on a real broker and both databases: OrderPlaced decides a
payment once (even when delivered twice), OrderCancelled refunds, audit keeps each event once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import grpc
import pytest

from broker import Broker
from services.audit.app import BLUEPRINT as AUDIT
from services.payments.app import BLUEPRINT as PAYMENTS
from shop.audit.v1 import audit_pb2, audit_pb2_grpc
from shop.payments.v1 import payments_pb2, payments_pb2_grpc
from tests.e2e.support import delete_rabbit_topology, in_process, isolated_broker_url
from tests.support.databases import DATABASES, fresh_database

pytestmark = pytest.mark.timeout(120)


def _placed(order_id, method, total=1000):
    return {
        "order_id": order_id,
        "customer_id": "c-1",
        "lines": [{"sku": "S", "quantity": 1, "unit_price_minor": total}],
        "total_minor": total,
        "currency": "EUR",
        "payment_method_id": method,
        "placed_at": datetime.now(UTC),
        "channel": "API",
        "promo_code": None,
    }


async def _eventually(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("kind", DATABASES)
async def test_payments_decide_once_refund_and_audit_everything(kind, tmp_path):
    """Each OrderPlaced (sent twice under one id) yields one payment; a cancellation refunds
    the authorized one; audit holds every event exactly once with its subject."""
    url, prefix = isolated_broker_url()
    try:
        async with (
            fresh_database(kind, tmp_path) as (payments_db, _e1),
            fresh_database(kind, tmp_path) as (audit_db, _e2),
            in_process(PAYMENTS, broker_url=url, database_url=payments_db) as payments,
            in_process(AUDIT, broker_url=url, database_url=audit_db) as audit,
            Broker(url, source="/test") as broker,
            grpc.aio.insecure_channel(f"127.0.0.1:{payments.server.port}") as pay_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{audit.server.port}") as audit_channel,
        ):
            pay = payments_pb2_grpc.PaymentServiceStub(pay_channel)
            trail = audit_pb2_grpc.AuditServiceStub(audit_channel)
            ok, bad = str(uuid.uuid4()), str(uuid.uuid4())
            for order_id, method in ((ok, "pm_card"), (bad, "pm_decline")):
                event = broker.event(
                    "shop.orders.v1.OrderPlaced", _placed(order_id, method), subject=order_id
                )
                await broker.publish_event(event)
                await broker.publish_event(event)

            async def decided():
                page = await pay.ListPayments(payments_pb2.ListPaymentsRequest())
                assert len(page.payments) == 2
                return {p.order_id: p for p in page.payments}

            found = await _eventually(decided)
            assert found[ok].status == payments_pb2.PAYMENT_STATUS_AUTHORIZED
            assert found[bad].status == payments_pb2.PAYMENT_STATUS_DECLINED
            assert found[bad].decline_reason == "card declined"

            await broker.publish(
                "shop.orders.v1.OrderCancelled",
                {
                    "order_id": ok,
                    "reason": "customer",
                    "compensated": True,
                    "cancelled_at": datetime.now(UTC),
                },
                subject=ok,
            )

            async def refunded():
                payment = await pay.GetPayment(
                    payments_pb2.GetPaymentRequest(payment_id=found[ok].payment_id)
                )
                assert payment.status == payments_pb2.PAYMENT_STATUS_REFUNDED

            await _eventually(refunded)

            async def audited():
                events = (await trail.QueryAudit(audit_pb2.QueryAuditRequest(subject=ok))).events
                types = sorted(e.type for e in events)
                assert types == [
                    "shop.orders.v1.OrderCancelled",
                    "shop.orders.v1.OrderPlaced",
                    "shop.payments.v1.PaymentAuthorized",
                    "shop.payments.v1.PaymentRefunded",
                ]
                return events

            events = await _eventually(audited)
            placed = next(e for e in events if e.type.endswith("OrderPlaced"))
            assert placed.data["customer_id"] == "c-1"

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await pay.GetPayment(payments_pb2.GetPaymentRequest(payment_id=str(uuid.uuid4())))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await delete_rabbit_topology(prefix)
