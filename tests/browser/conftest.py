"""The web console against the real system: the five services and the gateway as processes
(the reliability tier's harness, on the shared RabbitMQ isolated by prefix), the gateway serving
web/ at ``/``, and Debian's chromium driven by Playwright (never ``playwright install``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest_asyncio
from playwright.async_api import async_playwright

from tests.e2e.support import RABBIT
from tests.reliability.system import hash_key, shop_system

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from playwright.async_api import Browser

    from tests.reliability.system import System

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
API_KEY = f"console-{uuid.uuid4().hex}"
"""The key the person types; the gateway is configured with its SHA-256 only."""
PRODUCTS = {"CON-MUG": 40, "CON-TEE": 40, "CON-CAP": 2}
PAYMENT_LATENCY_MS = "1500"
"""Each payment decision takes 1.5 s, so the page visibly sits at Pending before the outcome
arrives over the stream: the test sees the saga move, not only its end state."""


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shop(tmp_path_factory: object) -> AsyncIterator[System]:
    """Services + gateway with API-key auth and the web console; a few products in stock."""
    tmp_path = tmp_path_factory.mktemp("shop")  # type: ignore[attr-defined]
    gateway_env = {
        "GATEWAY_STATIC_DIR": str(WEB),
        "GATEWAY_API_KEYS": f"console:{hash_key(API_KEY)}:*",
    }
    async with shop_system(
        RABBIT, tmp_path, gateway_env=gateway_env, PAYMENTS_LATENCY_MS=PAYMENT_LATENCY_MS
    ) as system:
        await system.products(PRODUCTS)
        yield system


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian chromium; Playwright gives every launch a fresh temporary profile
    (user-data dir), deleted on close."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()
