"""Payments' event handlers: each runs in one transaction with its inbox record, so a
redelivered event has no second effect."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

from services.common.timestamps import utcnow
from services.payments.domain import (
    ProcessorRules,
    ProcessorUnavailableError,
    decide,
    payment_id_for,
)
from services.payments.store import (
    AUTHORIZED,
    DECLINED,
    Payment,
    insert_payment,
    mark_order,
    mark_refunded,
    payment_of_order,
)
from services.runtime import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from broker import Broker
    from broker.event import Event
    from broker.outbox import Outbox

__all__ = ["PaymentHandlers"]

_log = get_logger("services.payments.handlers")


class PaymentHandlers:
    """``order_placed`` and ``order_cancelled``, each ``(event, conn)`` for :func:`idempotent`."""

    def __init__(self, broker: Broker, outbox: Outbox, rules: ProcessorRules) -> None:
        self._broker = broker
        self._outbox = outbox
        self._rules = rules
        self._attempts: Counter[str] = Counter()

    async def order_placed(self, event: Event, conn: AsyncConnection) -> None:
        data = event.data
        order_id = str(data["order_id"])
        cancelled = await mark_order(conn, order_id, cancelled=False)
        if await payment_of_order(conn, order_id) is not None:
            return  # the same order placed again under another event id: already decided
        await self._call_processor(order_id)
        decision = decide(
            self._rules,
            payment_method_id=str(data["payment_method_id"]),
            amount_minor=int(data["total_minor"]),
            cancelled=cancelled,
        )
        now = utcnow()
        payment = Payment(
            payment_id=payment_id_for(order_id),
            order_id=order_id,
            customer_id=str(data["customer_id"]),
            amount_minor=int(data["total_minor"]),
            currency=str(data["currency"]),
            status=AUTHORIZED if decision.authorized else DECLINED,
            decline_reason=decision.reason,
            created_at=now,
            updated_at=now,
        )
        await insert_payment(conn, payment, str(data["payment_method_id"]))
        outcome: dict[str, Any] = {
            "payment_id": payment.payment_id,
            "order_id": order_id,
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
        }
        if decision.authorized:
            kind, outcome["authorized_at"] = "PaymentAuthorized", now
        else:
            kind, outcome["reason"], outcome["declined_at"] = (
                "PaymentDeclined",
                decision.reason,
                now,
            )
        await self._outbox.add(
            conn, self._broker.event(f"shop.payments.v1.{kind}", outcome, subject=order_id)
        )
        _log.info("payment.decided", order_id=order_id, outcome=kind, reason=decision.reason)

    async def order_cancelled(self, event: Event, conn: AsyncConnection) -> None:
        order_id = str(event.data["order_id"])
        await mark_order(conn, order_id, cancelled=True)
        payment = await payment_of_order(conn, order_id)
        if payment is None or not await mark_refunded(conn, payment.payment_id, utcnow()):
            return  # nothing was charged (declined, or not decided yet: it will decline)
        await self._outbox.add(
            conn,
            self._broker.event(
                "shop.payments.v1.PaymentRefunded",
                {
                    "payment_id": payment.payment_id,
                    "order_id": order_id,
                    "amount_minor": payment.amount_minor,
                    "currency": payment.currency,
                    "refunded_at": utcnow(),
                },
                subject=order_id,
            ),
        )
        _log.info("payment.refunded", order_id=order_id, payment_id=payment.payment_id)

    async def _call_processor(self, order_id: str) -> None:
        if self._rules.latency:
            await asyncio.sleep(self._rules.latency)
        if self._attempts[order_id] < self._rules.transient_failures:
            self._attempts[order_id] += 1
            raise ProcessorUnavailableError(f"processor unreachable (order {order_id})")
