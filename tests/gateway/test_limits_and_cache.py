"""Rate limits (memory and shared through the real Redis) and the GET cache with ETags."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import httpx

from gateway import ApiKey, hash_key
from tests.gateway._support import free_socket

if TYPE_CHECKING:
    from tests.gateway._support import ThingServer
    from tests.gateway.conftest import GatewayFactory

KEYS = (ApiKey("a", hash_key("key-a"), ("*",)), ApiKey("b", hash_key("key-b"), ("*",)))


async def test_memory_rate_limit(start_gateway: GatewayFactory) -> None:
    """After the burst a caller gets 429 with Retry-After; another caller is unaffected."""
    settings = {
        "auth_required": True,
        "api_keys": KEYS,
        "rate_limit_rps": 0.5,
        "rate_limit_burst": 3,
    }
    async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
        a = {"X-API-Key": "key-a"}
        statuses = [(await http.get("/v1/things/t", headers=a)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await http.get("/v1/things/t", headers=a)
        assert limited.json()["code"] == 8
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert (await http.get("/v1/things/t", headers={"X-API-Key": "key-b"})).status_code == 200


async def test_token_bucket_refills(start_gateway: GatewayFactory) -> None:
    """Tokens come back at the configured rate."""
    async with (
        start_gateway(rate_limit_rps=2, rate_limit_burst=1) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert (await http.get("/v1/things/t")).status_code == 200
        assert (await http.get("/v1/things/t")).status_code == 429
        await asyncio.sleep(0.6)  # one token back after 0.5 s
        assert (await http.get("/v1/things/t")).status_code == 200


async def test_redis_rate_limit_shared_by_two_instances(start_gateway: GatewayFactory) -> None:
    """Two gateway instances on one Redis spend one bucket per caller."""
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    settings = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "rate_limit_rps": 0.2,
        "rate_limit_burst": 4,
        "redis_prefix": prefix,
    }
    async with (
        start_gateway(**settings) as one,
        start_gateway(**settings) as two,
        httpx.AsyncClient() as http,
    ):
        statuses = [
            (await http.get(f"{base}/v1/things/t")).status_code
            for base in (one, two, one, two, one, two)
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]
        limited = await http.get(f"{two}/v1/things/t")
        assert int(limited.headers["retry-after"]) >= 1


async def test_cache_etag_and_304(upstream: ThingServer, start_gateway: GatewayFactory) -> None:
    """A cached GET is served without an upstream call; If-None-Match gets 304."""
    ttls = (("gwtest.v1.ThingService.ListThings", 30.0),)
    async with start_gateway(cache_ttls=ttls) as base, httpx.AsyncClient(base_url=base) as http:
        first = await http.get("/v1/shelves/s/things")
        second = await http.get("/v1/shelves/s/things")
        assert first.json() == second.json()
        assert upstream.list_calls == 1
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert first.headers["etag"] == second.headers["etag"]
        assert first.headers["cache-control"] == "private, max-age=30"
        again = await http.get(
            "/v1/shelves/s/things", headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.content == b""
        other_query = await http.get("/v1/shelves/s/things", params={"pageSize": 2})
        assert other_query.json()["nextPageToken"] == "2"


async def test_etag_without_cache(client: httpx.AsyncClient) -> None:
    """Uncached GETs still carry an ETag and answer 304 when it matches."""
    rid = {"X-Request-Id": "same"}  # the test RPC echoes it, so the body depends on it
    first = await client.get("/v1/things/t1", headers=rid)
    assert first.headers["cache-control"] == "private, no-cache"
    tag = first.headers["etag"]
    again = await client.get("/v1/things/t1", headers={**rid, "If-None-Match": f"W/{tag}"})
    assert again.status_code == 304
    changed = await client.get("/v1/things/t2", headers={**rid, "If-None-Match": tag})
    assert changed.status_code == 200


async def test_cache_is_per_caller_and_skips_errors(
    upstream: ThingServer, start_gateway: GatewayFactory
) -> None:
    """Another API key never gets a cached response; errors are never cached (Redis store)."""
    settings = {
        "auth_required": True,
        "api_keys": KEYS,
        "cache_ttls": (("gwtest.v1.*", 30.0),),
        "redis_url": "redis://127.0.0.1:6379/0",
    }
    async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
        a = await http.get("/v1/shelves/s/things", headers={"X-API-Key": "key-a"})
        b = await http.get("/v1/shelves/s/things", headers={"X-API-Key": "key-b"})
        a2 = await http.get("/v1/shelves/s/things", headers={"X-API-Key": "key-a"})
        assert (a.json()["nextPageToken"], b.json()["nextPageToken"]) == ("1", "2")
        assert a2.headers["x-cache"] == "hit"
        assert upstream.list_calls == 2
        for _ in range(2):
            missing = await http.get("/v1/things/missing", headers={"X-API-Key": "key-a"})
            assert missing.status_code == 404
            assert "x-cache" not in missing.headers
        assert sum(1 for m in upstream.metadata if "x-request-id" in m) == 4


async def test_redis_outage_fails_open(
    upstream: ThingServer, start_gateway: GatewayFactory
) -> None:
    """With Redis unreachable, rate limiting and caching step aside instead of failing calls."""
    with free_socket() as sock:  # bound, never listening: connections are refused
        settings = {
            "redis_url": f"redis://127.0.0.1:{sock.getsockname()[1]}/0",
            "rate_limit_rps": 1,
            "rate_limit_burst": 1,
            "cache_ttls": (("gwtest.v1.*", 30.0),),
        }
        async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
            statuses = [(await http.get("/v1/shelves/s/things")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert upstream.list_calls == 3
