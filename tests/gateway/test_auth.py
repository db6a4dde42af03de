"""Auth: hashed API keys with scopes, HS256 and RS256 (JWKS) bearer tokens, 401/403 bodies."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway import ApiKey, hash_key
from tests.gateway._support import serve_asgi

if TYPE_CHECKING:
    from tests.gateway.conftest import GatewayFactory

SECRET = "test-secret-that-is-long-enough-for-hs256!"
READER = ApiKey("reader", hash_key("reader-key"), ("gwtest.v1.ThingService.Get*",))
ADMIN = ApiKey("admin", hash_key("admin-key"), ("*",))


def _token(key: Any, algorithm: str, **claims: Any) -> str:
    body = {"sub": "user-1", "exp": int(time.time()) + 60, **claims}
    headers = {"kid": "k1"} if algorithm == "RS256" else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


async def test_api_keys_and_scopes(start_gateway: GatewayFactory) -> None:
    """A valid key within scope passes; out of scope is 403; unknown or missing is 401."""
    settings = {"auth_required": True, "api_keys": (READER, ADMIN)}
    async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
        ok = await http.get("/v1/things/t1", headers={"X-API-Key": "reader-key"})
        assert ok.status_code == 200
        denied = await http.get("/v1/shelves/s:count", headers={"X-API-Key": "reader-key"})
        assert denied.status_code == 403
        assert denied.json()["code"] == 7
        assert "gwtest.v1.ThingService.CountThings" in denied.json()["message"]
        admin = await http.get("/v1/shelves/s:count", headers={"X-API-Key": "admin-key"})
        assert admin.status_code == 200
        wrong = await http.get("/v1/things/t1", headers={"X-API-Key": "guess"})
        assert wrong.status_code == 401
        assert wrong.json() == {"code": 16, "message": "the API key is not valid", "details": []}
        missing = await http.get("/v1/things/t1")
        assert missing.status_code == 401
        assert "X-API-Key" in missing.json()["message"]
        assert "Bearer" in missing.headers["www-authenticate"]


async def test_open_endpoints(start_gateway: GatewayFactory) -> None:
    """Health, readiness, docs and the OpenAPI document need no credentials."""
    settings = {"auth_required": True, "api_keys": (READER,)}
    async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
        for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
            assert (await http.get(path)).status_code == 200, path


async def test_hs256_bearer(start_gateway: GatewayFactory) -> None:
    """HS256 tokens with the shared secret pass; scopes come from the scope claim."""
    settings = {"auth_required": True, "jwt_secret": SECRET, "jwt_audience": "shop"}
    async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:

        async def call(token: str) -> httpx.Response:
            return await http.get("/v1/things/t1", headers={"Authorization": f"Bearer {token}"})

        ok = await call(_token(SECRET, "HS256", aud="shop", scope="gwtest.v1.*"))
        assert ok.status_code == 200
        assert ok.json()["labels"]["x-gateway-caller"] == "jwt:user-1"
        scoped_out = await call(_token(SECRET, "HS256", aud="shop", scope="shop.orders.*"))
        assert scoped_out.status_code == 403
        expired = await call(_token(SECRET, "HS256", aud="shop", scope="*", exp=1))
        assert expired.status_code == 401
        assert "expired" in expired.json()["message"]
        bad_sig = await call(_token("another-secret-that-is-long-enough!!", "HS256", aud="shop"))
        assert bad_sig.status_code == 401
        wrong_aud = await call(_token(SECRET, "HS256", aud="other", scope="*"))
        assert wrong_aud.status_code == 401
        garbage = await call("not.a.jwt")
        assert garbage.status_code == 401


async def test_rs256_bearer_via_jwks(start_gateway: GatewayFactory) -> None:
    """RS256 tokens verify against keys fetched from a JWKS URL, as Cognito issues them."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")

    async def jwks(_: Any) -> JSONResponse:
        return JSONResponse({"keys": [jwk]})

    jwks_app = Starlette(routes=[Route("/.well-known/jwks.json", jwks)])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        (_token(private, "RS256", iss="https://idp", scope="*"), 200),
        (_token(private, "RS256", iss="https://evil", scope="*"), 401),
        (_token(other, "RS256", iss="https://idp", scope="*"), 401),  # forged signature
        (_token(SECRET, "HS256", iss="https://idp", scope="*"), 401),  # HS256 not configured
    ]
    async with serve_asgi(jwks_app) as jwks_base:
        url = f"{jwks_base}/.well-known/jwks.json"
        settings = {"auth_required": True, "jwks_url": url, "jwt_issuer": "https://idp"}
        async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
            for token, status in cases:
                headers = {"Authorization": f"Bearer {token}"}
                response = await http.get("/v1/things/t1", headers=headers)
                assert response.status_code == status, response.text
            assert "HS256" in response.json()["message"]
