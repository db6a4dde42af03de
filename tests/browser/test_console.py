"""The web console in headless chromium against the real gateway and services: orders that
confirm and that are declined and compensated appear live, validation errors sit next to their
fields, it works from the keyboard alone, and nothing scrolls sideways on a desktop or a phone."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import API_KEY
from tests.browser.pages import (
    DESKTOP,
    PHONE,
    SAGA_TIMEOUT_MS,
    no_horizontal_scroll,
    open_console,
    place_order,
    screenshot,
    sign_in,
    wait_final,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(240)]

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


async def test_confirmed_and_declined_orders_appear_live_without_reload(shop, browser):
    """A card order goes Pending -> Confirmed and a pm_decline order Pending -> Cancelled with
    its stock released (compensated), each step timed, on the same page load; the audit trail
    (with trace ids) and the notification follow."""
    page = await open_console(browser, shop.base)
    await sign_in(page)
    await page.evaluate("window.__sameLoad = true")
    status = page.locator("#order-status")

    await place_order(page, "CON-MUG", 2, "pm_card")
    await expect(status).to_have_text("Pending")
    await expect(page.locator("#live")).to_contain_text("Live")
    await wait_final(page, "Confirmed")
    steps = page.locator("#saga-steps li")
    await expect(steps.filter(has_text="Authorize payment")).to_contain_text("Succeeded")
    await expect(steps.filter(has_text="Confirm order")).to_contain_text("Succeeded")
    assert await steps.locator("time").count() == await steps.count()
    trace_ids = await page.locator("#audit-table td[data-label='Trace id']").all_inner_texts()
    assert trace_ids
    assert all(TRACE_ID.match(t.strip()) for t in trace_ids), trace_ids
    await expect(page.locator("#notifications")).to_contain_text("confirmed")
    await screenshot(page, "order-confirmed")

    await place_order(page, "CON-TEE", 1, "pm_decline")
    await expect(status).to_have_text("Pending")
    await wait_final(page, "Cancelled")
    await expect(steps.filter(has_text="Authorize payment")).to_contain_text("Failed")
    await expect(steps.filter(has_text="Release stock")).to_contain_text("Compensated")
    await expect(page.locator("#order-summary")).to_contain_text("card declined")
    await expect(page.locator("#audit-table")).to_contain_text("StockReleased")
    await expect(page.locator("#notifications")).to_contain_text("cancelled")
    await expect(page.locator("#orders")).to_contain_text("Cancelled")
    await screenshot(page, "order-declined-compensated")

    assert await page.evaluate("window.__sameLoad") is True, "the page reloaded"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_validation_errors_are_shown_next_to_their_fields(shop, browser):
    """The server's BadRequest field violations appear under the customer and quantity inputs
    (marked invalid, focus on the first); a stock shortfall is explained in plain words."""
    page = await open_console(browser, shop.base)
    await sign_in(page)
    await page.get_by_label("Customer").fill("")
    await place_order(page, "CON-MUG", 0, "pm_card")

    customer = page.get_by_label("Customer")
    await expect(page.locator("#err-customer_id")).to_contain_text("at least 1")
    await expect(customer).to_have_attribute("aria-invalid", "true")
    await expect(customer).to_be_focused()
    quantity_error = page.locator("[id='err-lines[0].quantity']")
    await expect(quantity_error).to_contain_text("greater than or equal to 1")
    await expect(page.get_by_label("Quantity, line 1")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#place .problem")).to_contain_text("not valid")
    described = await customer.get_attribute("aria-describedby")
    assert described == "err-customer_id"
    await screenshot(page, "validation-errors")

    await customer.fill("customer-2")
    await place_order(page, "CON-CAP", 9, "pm_card")
    await expect(page.locator("#place .problem")).to_contain_text("cannot be done right now")
    await expect(page.locator("#place .problem")).to_contain_text("requested 9, available 2")
    await expect(page.locator("#err-customer_id")).to_be_hidden()
    await screenshot(page, "out-of-stock")
    assert page.errors == []  # type: ignore[attr-defined]


async def _tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has focus; each stop shows a ring."""
    for _ in range(limit):
        if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        await page.keyboard.press("Tab")
        outline = await page.evaluate(
            "() => { const e = document.activeElement;"
            " return e && e !== document.body ? getComputedStyle(e).outlineStyle : 'solid'; }"
        )
        assert outline != "none", "a focused element shows no focus ring"
    pytest.fail(f"Tab never reached {selector}")


async def test_keyboard_only_sign_in_and_order(shop, browser):
    """Sign-in, a two-line order and the live outcome using only the keyboard; every focus stop
    shows a visible focus ring."""
    page = await open_console(browser, shop.base)
    await expect(page.get_by_label("API key", exact=True)).to_be_focused()
    await page.keyboard.type(API_KEY)
    await page.keyboard.press("Enter")
    await expect(page.locator("#products table")).to_be_visible()

    await _tab_to(page, "#customer-id")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("keyboard-user")
    await _tab_to(page, "#line-0-quantity")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("1")
    await _tab_to(page, "#lines > button")
    await page.keyboard.press("Enter")  # "Add line" focuses the new line's product
    await expect(page.locator("#line-1-sku")).to_be_focused()
    await page.keyboard.press("End")  # last product in the list
    await _tab_to(page, "#payment")
    await _tab_to(page, "#place button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.locator("#order-status")).to_have_text("Confirmed", timeout=SAGA_TIMEOUT_MS)
    await expect(page.locator("#order-summary")).to_contain_text("keyboard-user")
    assert await page.locator("#saga-steps li").count() >= 4
    await screenshot(page, "keyboard-order")
    assert page.errors == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
async def test_layout_has_no_horizontal_scroll(shop, browser, name, viewport):
    """At 1280x800 and 390x844 neither the sign-in page nor the console with a finished order
    (steps, audit trail, notifications, recent orders) scrolls sideways."""
    page = await open_console(browser, shop.base, viewport)
    await no_horizontal_scroll(page)
    await screenshot(page, f"{name}-sign-in")
    await sign_in(page)
    await place_order(page, "CON-MUG", 1, "pm_decline")
    await wait_final(page, "Cancelled")
    await expect(page.locator("#orders table")).to_be_visible()
    await no_horizontal_scroll(page)
    await screenshot(page, f"{name}-console")


async def test_sign_in_refuses_a_wrong_key_and_keeps_credentials_in_the_session(shop, browser):
    """A key the gateway rejects is explained next to the key input; an accepted one is kept in
    sessionStorage only (no cookie, nothing in localStorage) and sign-out forgets it."""
    page = await open_console(browser, shop.base)
    await page.get_by_label("API key", exact=True).fill("not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#secret-error")).to_contain_text("not accepted")
    await expect(page.get_by_label("API key", exact=True)).to_have_attribute("aria-invalid", "true")
    assert await page.evaluate("sessionStorage.length") == 0

    await sign_in(page)
    stored = json.loads(await page.evaluate("sessionStorage.getItem('shop.credentials')"))
    assert stored == {"kind": "apiKey", "secret": API_KEY}
    assert await page.evaluate("localStorage.length") == 0
    assert await page.context.cookies() == []

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0
    assert page.errors == []  # type: ignore[attr-defined]
