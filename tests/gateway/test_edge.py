"""Deadlines, request ids, trace headers, CORS, upstream health and access logs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import httpx
from grpc_health.v1 import health_pb2
from structlog.testing import capture_logs

from gateway import GatewaySettings
from tests.gateway._support import (
    SERVICE,
    Messages,
    ThingServer,
    free_socket,
    serve_gateway,
)

if TYPE_CHECKING:
    from tests.gateway.conftest import GatewayFactory

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


async def test_request_timeout_becomes_deadline(start_gateway: GatewayFactory) -> None:
    """A slow upstream past the request timeout answers 504 DEADLINE_EXCEEDED, on time."""
    async with start_gateway(request_timeout=0.2) as base, httpx.AsyncClient(base_url=base) as http:
        started = time.perf_counter()
        response = await http.get("/v1/slow", params={"delayMs": 2000})
        assert time.perf_counter() - started < 1.5
        assert response.status_code == 504
        assert response.json()["code"] == 4
        assert (await http.get("/v1/slow", params={"delayMs": 10})).status_code == 200


async def test_grpc_timeout_header_within_maximum(start_gateway: GatewayFactory) -> None:
    """grpc-timeout shortens the deadline, is capped at the maximum, and must be well-formed."""
    settings = {"request_timeout": 5.0, "max_timeout": 0.3}
    async with start_gateway(**settings) as base, httpx.AsyncClient(base_url=base) as http:
        short = await http.get(
            "/v1/slow", params={"delayMs": 500}, headers={"grpc-timeout": "100m"}
        )
        assert short.status_code == 504
        capped = await http.get(
            "/v1/slow", params={"delayMs": 1000}, headers={"grpc-timeout": "10S"}
        )
        assert capped.status_code == 504  # 10 s asked, 0.3 s allowed
        enough = await http.get("/v1/slow", params={"delayMs": 10}, headers={"grpc-timeout": "1S"})
        assert enough.status_code == 200
        bad = await http.get("/v1/slow", headers={"grpc-timeout": "soon"})
        assert bad.status_code == 400
        assert "grpc-timeout" in bad.json()["message"]


async def test_request_id_generated_or_echoed(
    upstream: ThingServer, client: httpx.AsyncClient
) -> None:
    """X-Request-Id is echoed (or generated) and reaches the upstream as metadata."""
    given = await client.get("/v1/things/t", headers={"X-Request-Id": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    assert given.json()["labels"]["x-request-id"] == "req-123"
    generated = await client.get("/v1/things/t")
    assert uuid.UUID(generated.headers["x-request-id"])
    hostile = await client.get("/v1/things/t", headers={"X-Request-Id": "a b\tc"})
    assert hostile.headers["x-request-id"] != "a b\tc"
    not_found = await client.get("/nowhere", headers={"X-Request-Id": "req-404"})
    assert not_found.headers["x-request-id"] == "req-404"


async def test_trace_headers_passed_and_returned(client: httpx.AsyncClient) -> None:
    """traceparent and X-Amzn-Trace-Id go to the upstream as metadata and come back."""
    response = await client.get(
        "/v1/things/t", headers={"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": XRAY}
    )
    assert response.headers["traceparent"] == TRACEPARENT
    assert response.headers["x-amzn-trace-id"] == XRAY
    labels = response.json()["labels"]
    assert labels["traceparent"] == TRACEPARENT
    assert labels["x-amzn-trace-id"] == XRAY


async def test_cors(start_gateway: GatewayFactory) -> None:
    """Allowed origins get CORS headers and preflights; others do not."""
    origins = ("https://app.example",)
    async with (
        start_gateway(cors_origins=origins) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        preflight = await http.options(
            "/v1/things/t",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        simple = await http.get("/v1/things/t", headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        other = await http.get("/v1/things/t", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_not_serving_upstream_is_503(
    upstream: ThingServer, start_gateway: GatewayFactory
) -> None:
    """An upstream whose health says NOT_SERVING gets 503 at once, and readiness shows it."""
    async with (
        start_gateway(health_interval=0.05) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        assert (await http.get("/readyz")).status_code == 200
        await upstream.health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        async with asyncio.timeout(5):
            while (await http.get("/readyz")).status_code != 503:
                await asyncio.sleep(0.05)
        response = await http.get("/v1/things/t")
        assert response.status_code == 503
        assert response.json()["code"] == 14
        assert (await http.get("/healthz")).status_code == 200  # liveness is the gateway's own


async def test_unreachable_upstream_is_503(descriptors: bytes) -> None:
    """An upstream nobody listens on answers 503 UNAVAILABLE, not 500."""
    with free_socket() as sock:  # bound but never listening: connections are refused
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        settings = GatewaySettings(request_timeout=2)
        async with (
            serve_gateway(settings, descriptors, {"gwtest": address}) as base,
            httpx.AsyncClient(base_url=base) as http,
        ):
            response = await http.get("/v1/things/t")
    assert response.status_code == 503
    assert response.json()["code"] == 14


async def test_late_upstream_becomes_ready_within_a_second(
    descriptors: bytes, messages: Messages
) -> None:
    """Not ready while the upstream is unreachable; once it listens (after seconds of refused
    connections, which grow gRPC's default reconnect backoff), ready and answering promptly."""
    with free_socket() as sock:
        port = sock.getsockname()[1]
    settings = GatewaySettings(request_timeout=2, health_interval=0.1)
    async with (
        serve_gateway(settings, descriptors, {"gwtest": f"127.0.0.1:{port}"}) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        readiness = await http.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["upstreams"] == {SERVICE: False}
        await asyncio.sleep(3)  # refused all along: the channel's backoff has grown
        async with ThingServer(messages, port=port):
            started = time.monotonic()
            async with asyncio.timeout(10):
                while (await http.get("/v1/things/t")).status_code != 200:
                    await asyncio.sleep(0.05)
                took = time.monotonic() - started
                while (await http.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.05)
    assert took < 1.5, f"upstream answered only after {took:.1f}s"


async def test_access_log(client: httpx.AsyncClient) -> None:
    """One structlog http.request line per request with status, RPC, caller and request id."""
    with capture_logs() as logs:
        await client.get("/v1/things/t", headers={"X-Request-Id": "log-1"})
    lines = [line for line in logs if line["event"] == "http.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["status"] == 200
    assert line["rpc"] == "gwtest.v1.ThingService.GetThing"
    assert line["caller"] == "anon:127.0.0.1"
    assert line["path"] == "/v1/things/t"
    assert line["duration_ms"] >= 0
