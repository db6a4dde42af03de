"""What the browser tests do on the console page, in the person's terms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.async_api import expect

from tests.browser.conftest import API_KEY, SCREENSHOTS

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.async_api import Browser, Page

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SAGA_TIMEOUT_MS = 45_000


async def open_console(browser: Browser, base: str, viewport: dict[str, int] = DESKTOP) -> Page:
    """A fresh browser context on the console, signed out, page errors collected."""
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(base + "/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    return page


async def sign_in(page: Page, key: str = API_KEY) -> None:
    await page.get_by_label("API key", exact=True).fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Products and stock")).to_be_visible()
    await expect(page.locator("#products table")).to_be_visible()


async def place_order(page: Page, sku: str, quantity: int, payment: str) -> None:
    await page.get_by_label("Product, line 1").select_option(sku)
    await page.get_by_label("Quantity, line 1").fill(str(quantity))
    await page.get_by_label("Payment method").select_option(payment)
    await page.get_by_role("button", name="Place order").click()


async def wait_final(page: Page, status: str) -> None:
    """The order shown reaches ``status`` and its audit trail and notification have arrived."""
    await expect(page.locator("#order-status")).to_have_text(status, timeout=SAGA_TIMEOUT_MS)
    final = "OrderConfirmed" if status == "Confirmed" else "OrderCancelled"
    await expect(page.locator("#audit-table")).to_contain_text(final, timeout=SAGA_TIMEOUT_MS)
    await expect(page.locator("#notifications li")).to_have_count(1, timeout=SAGA_TIMEOUT_MS)


async def no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page scrolls sideways: {widths[0]}px > {widths[1]}px"


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
