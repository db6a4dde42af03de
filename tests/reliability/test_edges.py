"""Bad input, security and load shedding at the edges of the running shop: the real gateway in
front of the real service processes on the shared RabbitMQ (isolated by prefix)."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx
import jwt
import pytest

from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2
from shop.orders.v1 import orders_pb2
from tests.e2e.support import RABBIT, status_details
from tests.reliability.system import hash_key, order_body, shop_system

pytestmark = pytest.mark.timeout(180)


async def _order_count(shop):
    reply = await shop.cluster.orders.ListOrders(orders_pb2.ListOrdersRequest(page_size=500))
    return len(reply.orders)


async def test_bad_input_is_4xx_status_and_writes_nothing(tmp_path):
    """Oversize, deeply nested, invalid UTF-8 and wrongly typed bodies get a 4xx
    google.rpc.Status (never 5xx); no order and no reservation is left behind."""
    async with shop_system(
        RABBIT, tmp_path, gateway_env={"GATEWAY_MAX_BODY_BYTES": "65536"}
    ) as shop:
        await shop.products()
        url = f"{shop.base}/v1/orders"
        json_type = {"content-type": "application/json"}
        good = order_body(1, "bad")
        nested = "[" * 100_000 + "]" * 100_000
        bodies = {
            "oversize": b'{"customerId": "' + b"x" * 200_000 + b'"}',
            "nested array": nested.encode(),
            "nested in a field": f'{{"idempotencyKey": "k", "lines": {nested}}}'.encode(),
            "invalid utf-8": b'{"idempotencyKey": "\xff\xfe", "customerId": "c"}',
            "not json": b"{not json",
            "quantity as string": (
                b'{"idempotencyKey":"k1","customerId":"c","lines":[{"sku":"R-0","quantity":"many"}]}'
            ),
            "lines as object": b'{"idempotencyKey":"k2","customerId":"c","lines":{"sku":"R-0"}}',
            "unknown field": b'{"idempotencyKey":"k3","customerId":"c","nope":1}',
            "int overflow": (
                b'{"idempotencyKey":"k4","customerId":"c",'
                b'"lines":[{"sku":"R-0","quantity":99999999999999}]}'
            ),
            "array body": b"[1,2,3]",
            "empty": b"",
            "zero quantity": (
                b'{"idempotencyKey":"k5","customerId":"c","lines":[{"sku":"R-0","quantity":0}]}'
            ),
            "no lines": b'{"idempotencyKey":"k6","customerId":"c","lines":[]}',
        }
        for name, body in bodies.items():
            response = await shop.http.post(url, content=body, headers=json_type, timeout=30)
            assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
            status = response.json()
            assert isinstance(status["code"], int), name
            assert status["code"] != 0, name
            assert status["message"], name
        # Field violations reach the REST caller as a BadRequest detail.
        response = await shop.http.post(url, content=bodies["zero quantity"], headers=json_type)
        details = response.json()["details"]
        assert any("lines[0].quantity" in str(d) for d in details), details
        # Nothing half-written: no order, no reservation, all stock still there.
        assert await _order_count(shop) == 0
        for sku in ("R-0", "R-1"):
            reply = await shop.cluster.inventory.GetProduct(
                inventory_pb2.GetProductRequest(sku=sku)
            )
            assert reply.reserved_quantity == 0
        # And the system still works for a good request.
        response = await shop.http.post(url, json=good)
        assert response.status_code == 200, response.text


async def test_huge_grpc_message_is_resource_exhausted_and_bad_fields_are_named(tmp_path):
    """A gRPC request over GRPC_MAX_MESSAGE_BYTES is RESOURCE_EXHAUSTED; invalid field values
    are INVALID_ARGUMENT with field violations; the service keeps serving."""
    async with shop_system(RABBIT, tmp_path, GRPC_MAX_MESSAGE_BYTES="1048576") as shop:
        await shop.products()
        huge = orders_pb2.CreateOrderRequest(
            idempotency_key="huge",
            customer_id="c" * (2 << 20),
            lines=[common_pb2.ItemQuantity(sku="R-0", quantity=1)],
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shop.cluster.orders.CreateOrder(huge, timeout=30)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        bad = orders_pb2.CreateOrderRequest(
            idempotency_key="x" * 500,
            customer_id="",
            lines=[common_pb2.ItemQuantity(sku="R-0", quantity=-3)],
            payment_token="t" * 500,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shop.cluster.orders.CreateOrder(bad, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        (request_errors,) = status_details(caught.value)
        assert {v.field for v in request_errors.field_violations} >= {
            "idempotency_key",
            "customer_id",
            "lines[0].quantity",
            "payment_token",
        }
        assert await _order_count(shop) == 0
        ok = await shop.cluster.orders.CreateOrder(
            orders_pb2.CreateOrderRequest(
                idempotency_key="fine",
                customer_id="c",
                lines=[common_pb2.ItemQuantity(sku="R-0", quantity=1)],
            ),
            timeout=30,
        )
        assert ok.order_id


async def test_auth_refuses_and_secrets_never_reach_any_log(tmp_path):
    """With API keys and a JWT secret set, no credentials is 401 and a wrong scope 403; a flow
    with an API key and a JWT works, and neither secret appears in any process's log."""
    api_key = f"key-{uuid.uuid4().hex}"
    reader_key = f"reader-{uuid.uuid4().hex}"
    jwt_secret = f"jwt-secret-{uuid.uuid4().hex}"
    token = jwt.encode(
        {"sub": "alice", "scope": "shop.orders.v1.*", "exp": int(time.time()) + 600},
        jwt_secret,
        algorithm="HS256",
    )
    keys = f"ops:{hash_key(api_key)}:*,reader:{hash_key(reader_key)}:shop.inventory.v1.*"
    gateway_env = {
        "GATEWAY_API_KEYS": keys,
        "GATEWAY_JWT_SECRET": jwt_secret,
        "LOG_LEVEL": "debug",
    }
    async with shop_system(RABBIT, tmp_path, gateway_env=gateway_env, LOG_LEVEL="debug") as shop:
        await shop.products()
        url = f"{shop.base}/v1/orders"
        anonymous = await shop.http.post(url, json=order_body(1, "sec"))
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
        wrong_key = await shop.http.post(
            url, json=order_body(1, "sec"), headers={"x-api-key": "no"}
        )
        assert wrong_key.status_code == 401
        bad_token = await shop.http.get(url, headers={"authorization": "Bearer not.a.jwt"})
        assert bad_token.status_code == 401
        scoped = await shop.http.post(
            url, json=order_body(1, "sec"), headers={"x-api-key": reader_key}
        )
        assert scoped.status_code == 403
        assert scoped.json()["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
        assert await _order_count(shop) == 0

        by_key = await shop.http.post(
            url, json=order_body(2, "sec"), headers={"x-api-key": api_key}
        )
        assert by_key.status_code == 200, by_key.text
        bearer = {"authorization": f"Bearer {token}"}
        by_jwt = await shop.http.post(url, json=order_body(3, "sec"), headers=bearer)
        assert by_jwt.status_code == 200, by_jwt.text
        order_id = by_jwt.json()["orderId"]
        deadline = time.monotonic() + 60
        while (await shop.http.get(f"{url}/{order_id}", headers=bearer)).json()[
            "status"
        ] != "ORDER_STATUS_CONFIRMED":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        logs = shop.all_logs()
    logs += shop.all_logs()  # and what the processes wrote while shutting down
    assert "gateway" in logs  # the logs were there to search
    for secret in (api_key, reader_key, jwt_secret, token, token.split(".")[2]):
        assert secret not in logs


async def test_gateway_sheds_a_burst_with_429_and_retry_after(tmp_path):
    """With a rate limit set, a burst of 200 concurrent calls is answered promptly: the excess
    gets 429 with Retry-After, nothing times out, no 5xx."""
    # A slow refill, so how many get through depends on the bucket, not on how fast this
    # machine happens to send the burst.
    gateway_env = {"GATEWAY_RATE_LIMIT_RPS": "2", "GATEWAY_RATE_LIMIT_BURST": "20"}
    async with shop_system(RABBIT, tmp_path, gateway_env=gateway_env) as shop:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(shop.http.get(f"{shop.base}/v1/products", timeout=10) for _ in range(200)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
        assert not [r for r in responses if isinstance(r, BaseException)]
        codes = [r.status_code for r in responses if isinstance(r, httpx.Response)]
        assert set(codes) <= {200, 429}, set(codes)
        shed = [r for r in responses if isinstance(r, httpx.Response) and r.status_code == 429]
        assert len(codes) - len(shed) <= 20 + 2 * elapsed + 1  # the burst, then the refill
        assert len(shed) >= 150
        assert all(int(r.headers["retry-after"]) >= 1 for r in shed)
        assert shed[0].json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert elapsed < 10
        print(f"\nRELIABILITY burst 200 calls: {len(shed)} shed with 429 in {elapsed:.2f}s")
