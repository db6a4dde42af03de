"""The operators' dead-letter view. The gateway routes GET /v1/admin/dlq/{group} and
POST /v1/admin/dlq/{group}:replay (DeadLetterService in audit.proto), but the audit process does
not serve DeadLetterService yet (UNIMPLEMENTED), so these two routes are answered in the browser
(Playwright's page.route) with the proto's JSON shapes; sign-in and everything else is real."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from playwright.async_api import expect

from tests.browser.pages import no_horizontal_scroll, open_console, screenshot, sign_in

if TYPE_CHECKING:
    from playwright.async_api import Route

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(120)]


def _letter(event_id: str, error: str) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "type": "shop.orders.v1.OrderPlaced",
        "subject": "6a1f3c4e-0000-4000-8000-000000000001",
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "errorType": "ValueError",
        "errorMessage": error,
        "attempts": 5,
        "failedTime": "2026-11-28T12:00:00Z",
    }


async def test_dead_letters_listed_and_replayed_selected_then_all(shop, browser):
    """The payments group's dead letters show why each failed; "Replay selected" sends only the
    ticked event ids, "Replay all" sends {"all": true}, and the list and counts follow."""
    letters = [_letter("ev-1", "processor exploded"), _letter("ev-2", "bad amount")]
    replays: list[dict[str, Any]] = []

    async def admin(route: Route) -> None:
        request = route.request
        assert request.headers.get("x-api-key"), "credentials not sent"
        assert "/v1/admin/dlq/payments" in request.url
        if request.method == "POST":
            body = json.loads(request.post_data or "{}")
            replays.append(body)
            chosen = [d for d in letters if body.get("all") or d["eventId"] in body["eventIds"]]
            for letter in chosen:
                letters.remove(letter)
            answer = {"replayed": len(chosen), "remaining": len(letters)}
        else:
            answer = {"deadLetters": letters, "nextPageToken": ""}
        await route.fulfill(json=answer)

    page = await open_console(browser, shop.base)
    await sign_in(page)
    await page.route("**/v1/admin/dlq/**", admin)
    await page.get_by_label("Consumer group").select_option("payments")
    await page.get_by_role("button", name="Show dead letters").click()
    rows = page.locator("#dlq-body tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("processor exploded")
    await expect(rows.first).to_contain_text("ValueError")

    await page.get_by_role("button", name="Replay selected").click()
    await expect(page.locator("#dlq-result")).to_contain_text("Select at least one")
    assert replays == []

    await page.get_by_label("Select event ev-2").check()
    await page.get_by_role("button", name="Replay selected").click()
    await expect(page.locator("#dlq-result")).to_contain_text("Replayed 1 message to payments")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("ev-1")
    await no_horizontal_scroll(page)
    await screenshot(page, "dead-letters")

    await page.get_by_role("button", name="Replay all (1)").click()
    await expect(page.locator("#dlq-body")).to_contain_text("No dead letters in payments")
    assert replays == [{"eventIds": ["ev-2"]}, {"all": True}]
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
