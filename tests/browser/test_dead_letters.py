"""The operators' dead-letter view against the real system: GET /v1/admin/dlq/{group} and
POST /v1/admin/dlq/{group}:replay reach the audit service's DeadLetterService, which reads the
group's dead-letter queue on the broker."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from playwright.async_api import expect

from broker import Broker
from broker.transport import OutgoingMessage
from tests.browser.pages import no_horizontal_scroll, open_console, screenshot, sign_in

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(120)]


async def _poison(shop: Any, count: int) -> list[str]:
    """Undecodable bodies published into the payments group's topic: real dead letters."""
    ids = [f"poison-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    async with Broker(shop.cluster.broker_url, source="//tests/browser", name="poison") as b:
        for event_id in ids:
            await b.transport.publish(
                OutgoingMessage(
                    topic="shop.orders.v1.OrderPlaced",
                    body=b"not avro",
                    attributes={
                        "id": event_id,
                        "type": "shop.orders.v1.OrderPlaced",
                        "source": "//tests/browser",
                        "specversion": "1.0",
                    },
                    headers={},
                    content_type="application/avro",
                    mandatory=False,
                ),
                timeout=10,
            )
    return ids


async def test_dead_letters_listed_and_replayed_selected_then_all(shop, browser):
    """Real dead letters of the payments group show why each failed; "Replay selected" sends
    only the ticked event id, "Replay all" sends {"all": true}, and the service replays them."""
    first, second = await _poison(shop, 2)
    page = await open_console(browser, shop.base)
    await sign_in(page)
    await page.get_by_label("Consumer group").select_option("payments")
    rows = page.locator("#dlq-body tbody tr")
    for _ in range(20):  # the service dead-letters them within moments
        await page.get_by_role("button", name="Show dead letters").click()
        if await rows.count() >= 2:
            break
        await page.wait_for_timeout(500)
    await expect(page.locator("#dlq-body")).to_contain_text(first)
    await expect(page.locator("#dlq-body")).to_contain_text(second)
    await expect(page.locator("#dlq-body")).to_contain_text("DecodeError")

    await page.get_by_role("button", name="Replay selected").click()
    await expect(page.locator("#dlq-result")).to_contain_text("Select at least one")

    await page.get_by_label(f"Select event {second}").check()
    async with page.expect_request("**/v1/admin/dlq/payments:replay") as sent:
        await page.get_by_role("button", name="Replay selected").click()
    assert json.loads((await sent.value).post_data or "{}") == {"eventIds": [second]}
    await expect(page.locator("#dlq-result")).to_contain_text("Replayed 1 message to payments")
    await no_horizontal_scroll(page)
    await screenshot(page, "dead-letters")

    async with page.expect_request("**/v1/admin/dlq/payments:replay") as sent_all:
        await page.get_by_role("button", name=re.compile(r"^Replay all")).click()
    assert json.loads((await sent_all.value).post_data or "{}") == {"all": True}
    await expect(page.locator("#dlq-result")).to_contain_text("Replayed")
    assert page.errors == []  # type: ignore[attr-defined]


async def test_dead_letter_view_explains_the_real_gateway_answer(shop, browser):
    """Against the real gateway (no stand-in), the view shows the answer for the group in plain
    words: the dead letters, none, or why it cannot list them."""
    page = await open_console(browser, shop.base)
    await sign_in(page)
    await page.get_by_label("Consumer group").select_option("orders")
    async with page.expect_response("**/v1/admin/dlq/orders**") as answer:
        await page.get_by_role("button", name="Show dead letters").click()
    response = await answer.value
    body = page.locator("#dlq-body")
    if response.ok:
        await expect(body).to_contain_text("No dead letters in orders")
    else:
        status = await response.json()
        await expect(body.locator(".problem")).to_contain_text(status["message"])
    assert page.errors == []  # type: ignore[attr-defined]
