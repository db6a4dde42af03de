"""``shopmq demo``: place sample orders through the REST gateway and watch the saga decide.

It creates the demo products if they are missing, places orders that should confirm, one whose
payment is declined (the payments service declines :data:`DECLINE_TOKEN` deterministically, so
the saga cancels it and releases its stock) and one for more stock than exists (refused at once),
then prints each order's saga steps as they happen.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import argparse

__all__ = ["DECLINE_TOKEN", "register"]

DECLINE_TOKEN = "pm_decline"  # noqa: S105 - a documented test token, not a secret
PRODUCTS = (
    ("DEMO-MUG", "Enamel mug", 1250),
    ("DEMO-TEE", "Organic T-shirt", 2400),
    ("DEMO-CAP", "Canvas cap", 1800),
)
TERMINAL = {"ORDER_STATUS_CONFIRMED", "ORDER_STATUS_CANCELLED"}


@dataclass
class Plan:
    label: str
    lines: list[dict[str, Any]]
    token: str
    expect: str


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="place sample orders through the gateway and watch their sagas live",
        description=__doc__,
    )
    parser.add_argument(
        "--gateway",
        default=os.environ.get("SHOPMQ_GATEWAY", "http://localhost:8080"),
        help="gateway base URL (default: $SHOPMQ_GATEWAY or %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SHOPMQ_API_KEY"),
        help="API key, if the gateway requires one (default: $SHOPMQ_API_KEY)",
    )
    parser.add_argument("--orders", type=int, default=4, help="orders that should confirm (4)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per order")
    parser.set_defaults(handler=lambda args: asyncio.run(_demo(args)))


def plans(count: int) -> list[Plan]:
    sku = [p[0] for p in PRODUCTS]
    ok = [
        Plan(
            f"order {n + 1}",
            [{"sku": sku[n % 3], "quantity": 1 + n % 2}],
            "pm_card_ok",
            "ORDER_STATUS_CONFIRMED",
        )
        for n in range(count)
    ]
    declined = Plan(
        "declined card", [{"sku": sku[0], "quantity": 1}], DECLINE_TOKEN, "ORDER_STATUS_CANCELLED"
    )
    too_many = Plan("out of stock", [{"sku": sku[1], "quantity": 100000}], "pm_card_ok", "REFUSED")
    return [*ok, declined, too_many]


async def _ensure_products(client: httpx.AsyncClient) -> None:
    for sku, name, price in PRODUCTS:
        found = await client.get(f"/v1/products/{sku}")
        if found.status_code == httpx.codes.OK:
            continue
        created = await client.post(
            "/v1/products",
            json={
                "idempotencyKey": f"demo-{sku}",
                "sku": sku,
                "name": name,
                "price": {"currencyCode": "EUR", "minorUnits": str(price)},
                "initialQuantity": 500,
                "lowStockThreshold": 20,
            },
        )
        _raise_for_status(created, f"create product {sku}")
        print(f"  created product {sku} ({name}, 500 in stock)")


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    try:
        message = response.json().get("message", response.text)
    except ValueError:
        message = response.text
    raise RuntimeError(f"{what}: HTTP {response.status_code}: {message}")


async def _run_plan(client: httpx.AsyncClient, plan: Plan, timeout: float) -> bool:
    response = await client.post(
        "/v1/orders",
        json={
            "idempotencyKey": str(uuid.uuid4()),
            "customerId": "demo-customer",
            "lines": plan.lines,
            "paymentToken": plan.token,
        },
    )
    if plan.expect == "REFUSED":
        body = response.json()
        refused = response.status_code >= httpx.codes.BAD_REQUEST
        print(
            f"  {plan.label:<14} refused at once: HTTP {response.status_code} "
            f"{body.get('message', '')}"
        )
        return refused
    _raise_for_status(response, f"place {plan.label}")
    order = response.json()
    order_id = order["orderId"]
    print(f"  {plan.label:<14} {order_id} placed ({order['status']})")
    seen = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = order.get("steps", [])
        for step in steps[seen:]:
            detail = f" - {step['detail']}" if step.get("detail") else ""
            print(
                f"  {plan.label:<14} {step.get('time', '')[11:23]}  {step['name']}: "
                f"{step.get('outcome', '').removeprefix('STEP_OUTCOME_')}{detail}"
            )
        seen = len(steps)
        if order["status"] in TERMINAL:
            good = bool(order["status"] == plan.expect)
            mark = "as expected" if good else f"EXPECTED {plan.expect}"
            print(f"  {plan.label:<14} {order_id} -> {order['status']} ({mark})")
            return good
        await asyncio.sleep(0.2)
        fetched = await client.get(f"/v1/orders/{order_id}")
        _raise_for_status(fetched, f"get order {order_id}")
        order = fetched.json()
    print(f"  {plan.label:<14} {order_id} still {order['status']} after {timeout:.0f}s")
    return False


async def _demo(args: argparse.Namespace) -> int:
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    async with httpx.AsyncClient(base_url=args.gateway, headers=headers, timeout=10) as client:
        try:
            await client.get("/healthz")
        except httpx.HTTPError as exc:
            raise RuntimeError(f"no gateway at {args.gateway} ({exc}); start it: make up") from exc
        print(f"==> products at {args.gateway}")
        await _ensure_products(client)
        todo = plans(args.orders)
        print(f"==> placing {len(todo)} orders")
        results = await asyncio.gather(*(_run_plan(client, p, args.timeout) for p in todo))
    good = sum(results)
    print(f"==> {good}/{len(results)} orders ended as expected")
    return 0 if good == len(results) else 1
