"""Poison and failing messages in the running shop, per engine: undecodable events and a
handler that keeps failing end in the consumer group's dead-letter queue with their error
recorded, the consumers keep serving, and `shopmq dlq replay` brings the fixed one back for
exactly one effect."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from broker import Broker
from broker.transport import OutgoingMessage
from shop.notifications.v1 import notifications_pb2
from tests.e2e.harness import SERVICES
from tests.reliability.system import CONFIRMED, System, all_pages, shop_system, until
from tests.support.ports import free_port
from tests.support.tcp_proxy import TcpProxy

CONFIRMED_TYPE = "shop.orders.v1.OrderConfirmed"
ATTEMPTS = 4
"""notifications' retry limit in this test (CONSUMER_RETRY_ATTEMPTS)."""
POISON = {
    "not Avro at all": b"definitely not avro",
    "an unknown schema fingerprint": b"\xc3\x01" + b"\x00" * 8 + b"\x02",
}


def _shopmq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )


async def _dead_letters(group: str, broker_url: str) -> list[dict]:
    command = ("dlq", "list", group, "--json", "--broker", broker_url)
    listed = await asyncio.to_thread(_shopmq, *command)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


async def _publish_poison(broker_url: str) -> None:
    async with Broker(broker_url, source="//tests/poison", name="poison") as broker:
        for body in POISON.values():
            attributes = {
                "id": f"poison-{uuid.uuid4()}",
                "type": CONFIRMED_TYPE,
                "source": "//tests/poison",
                "specversion": "1.0",
                "time": datetime.now(UTC).isoformat(),
            }
            message = OutgoingMessage(
                topic=CONFIRMED_TYPE,
                body=body,
                attributes=attributes,
                headers={},
                content_type="application/avro",
            )
            await broker.transport.publish(message, timeout=10)


async def _notifications_of(shop: System, order_id: str) -> int:
    sent = await all_pages(
        shop.cluster.notifications.ListNotifications,
        notifications_pb2.ListNotificationsRequest(page_size=500),
        "notifications",
    )
    return Counter(n.order_id for n in sent)[order_id]


async def _confirmed(shop: System, order_id: str) -> None:
    assert await shop.order_status(order_id) == CONFIRMED


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker_url", ["rabbitmq", "activemq"], indirect=True)
async def test_poison_and_failing_events_dead_letter_and_a_fixed_one_replays_once(
    broker_url, tmp_path
):
    run = uuid.uuid4().hex[:6]
    ports = {name: free_port() for name in SERVICES}
    # notifications looks each order up in orders; its line to orders goes through a proxy
    # the test can cut, so its handler fails while the rest of the saga goes on.
    async with (
        TcpProxy("127.0.0.1", ports["orders"]) as to_orders,
        shop_system(
            broker_url,
            tmp_path,
            ports=ports,
            per_service_env={
                "notifications": {
                    "ORDERS_ADDR": to_orders.address,
                    # The service's own policy (8 attempts, up to 5 s apart) takes ~16 s.
                    "CONSUMER_RETRY_ATTEMPTS": str(ATTEMPTS),
                    "CONSUMER_RETRY_DELAY": "0.2",
                    "CONSUMER_RETRY_MAX_DELAY": "1",
                }
            },
        ) as shop,
    ):
        url = shop.cluster.broker_url
        await shop.products()

        # 1. Undecodable events: straight to the DLQ of every group that receives them.
        await _publish_poison(url)

        # 2. A handler that fails on every attempt: notifications cannot reach orders.
        to_orders.cut()
        cut_at = time.monotonic()
        (failing,) = (await shop.place(range(1, 2), run)).placed.values()
        await until(lambda: _confirmed(shop, failing), 60)

        async def dead_lettered() -> list[dict]:
            letters = await _dead_letters("notifications", url)
            assert len(letters) == 3, letters
            return letters

        # ATTEMPTS attempts, 0.2 s back-off doubling up to 1 s between them.
        letters = await until(dead_lettered, 90, pause=2.0)
        failed_for = time.monotonic() - cut_at
        poison = [letter for letter in letters if letter["subject"] is None]
        poison_ids = {p["id"] for p in poison}
        assert {p["dead_letter"]["x-error-type"] for p in poison} == {"DecodeError"}
        assert all(p["dead_letter"]["x-attempts"] == "1" for p in poison)
        assert any("fingerprint" in p["dead_letter"]["x-error-message"] for p in poison)
        (handler_failure,) = [letter for letter in letters if letter["subject"] == failing]
        assert handler_failure["type"] == CONFIRMED_TYPE
        assert handler_failure["dead_letter"]["x-error-type"] == "AioRpcError"
        assert handler_failure["dead_letter"]["x-attempts"] == str(ATTEMPTS)
        assert handler_failure["dead_letter"]["x-consumer-group"] == "notifications"
        assert await _notifications_of(shop, failing) == 0
        # audit takes every event: the poison is in its DLQ too, the real one audited once.
        audit_letters = await _dead_letters("audit", url)
        assert {letter["id"] for letter in audit_letters} == poison_ids

        # 3. The consumers kept running: with the line back, a new order is notified.
        to_orders.restore()
        (later,) = (await shop.place(range(2, 3), run)).placed.values()

        async def notified_later() -> None:
            assert await _notifications_of(shop, later) == 1

        await until(notified_later, 60)

        # 4. The cause fixed, the failed event is replayed by id: one notification, once.
        replay = ("dlq", "replay", "notifications", "--id", handler_failure["id"], "--broker", url)
        replayed = await asyncio.to_thread(_shopmq, *replay)
        assert "replayed 1 of 3" in replayed.stdout, replayed.stdout + replayed.stderr

        async def notified_once() -> None:
            assert await _notifications_of(shop, failing) == 1

        await until(notified_once, 60)
        again = await asyncio.to_thread(_shopmq, *replay)
        assert "replayed 0 of 2" in again.stdout, again.stdout + again.stderr
        await asyncio.sleep(2)
        assert await _notifications_of(shop, failing) == 1
        remaining = await _dead_letters("notifications", url)
        assert {letter["id"] for letter in remaining} == poison_ids
    print(
        f"\nRELIABILITY poison: 2 undecodable events dead-lettered at once; the failing "
        f"notification dead-lettered after {ATTEMPTS} attempts within {failed_for:.1f}s of the "
        "cut; replayed by id -> 1 notification; replayed again -> nothing"
    )
