"""Telemetry around an ASGI app (the gateway's kind): the client's traceparent or
X-Amzn-Trace-Id continued, the trace id returned in response headers, the HTTP histogram by
route template and status, probe paths untraced."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import pytest
from opentelemetry import baggage, propagate
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from services.runtime.telemetry import Telemetry, setup_telemetry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def get_order(request: Request) -> JSONResponse:
    order_id = request.path_params["order_id"]
    if order_id == "missing":
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse({"id": order_id})


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def tenant(request: Request) -> JSONResponse:
    return JSONResponse({"tenant": baggage.get_baggage("tenant")})


async def broken(request: Request) -> JSONResponse:
    raise RuntimeError("database on fire")


async def unavailable(request: Request) -> JSONResponse:
    return JSONResponse({"error": "later"}, status_code=503)


APP = Starlette(
    routes=[
        Route("/v1/orders/{order_id}", get_order),
        Route("/healthz", healthz),
        Route("/v1/tenant", tenant),
        Route("/v1/broken", broken),
        Route("/v1/unavailable", unavailable),
    ]
)


@pytest.fixture
async def telemetry() -> AsyncIterator[tuple[Telemetry, InMemorySpanExporter]]:
    before = propagate.get_global_textmap()
    exporter = InMemorySpanExporter()
    running = setup_telemetry(
        "gateway",
        environ={"OTEL_BSP_SCHEDULE_DELAY": "10"},
        span_exporter=exporter,
        metrics_port=0,
        set_global=False,
    )
    try:
        yield running, exporter
    finally:
        await running.shutdown()
        propagate.set_global_textmap(before)


def _client(telemetry: Telemetry) -> httpx.AsyncClient:
    app = telemetry.instrument_asgi(APP)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def _server_spans(telemetry: Telemetry, exporter: InMemorySpanExporter) -> list:
    telemetry.tracer_provider.force_flush()  # type: ignore[attr-defined]
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


async def test_traceparent_is_continued_and_returned(telemetry):
    """The SERVER span is a child of the client's span; the response names the trace."""
    running, exporter = telemetry
    async with _client(running) as client:
        response = await client.get(
            "/v1/orders/o-1", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
        )
    assert response.status_code == 200
    (span,) = await _server_spans(running, exporter)
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == 0x00F067AA0BA902B7
    assert span.name == "GET /v1/orders/{order_id}"
    assert span.attributes["http.route"] == "/v1/orders/{order_id}"
    assert response.headers["x-trace-id"] == TRACE_ID
    assert response.headers["traceresponse"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    assert response.headers["x-amzn-trace-id"].startswith(f"Root=1-{TRACE_ID[:8]}-{TRACE_ID[8:]};")


async def test_server_span_carries_the_http_attributes(telemetry):
    """Stable HTTP semantic conventions: method, route, status, URL parts, peer, agent."""
    running, exporter = telemetry
    async with _client(running) as client:
        await client.get("/v1/orders/missing?verbose=1", headers={"User-Agent": "probe/1.0"})
    (span,) = await _server_spans(running, exporter)
    attributes = dict(span.attributes)
    assert span.name == "GET /v1/orders/{order_id}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == "/v1/orders/{order_id}"
    assert attributes["http.response.status_code"] == 404
    assert attributes["url.path"] == "/v1/orders/missing"
    assert attributes["url.query"] == "verbose=1"
    assert attributes["url.scheme"] == "http"
    assert attributes["user_agent.original"] == "probe/1.0"
    assert attributes["network.protocol.version"] == "1.1"
    assert "client.address" in attributes
    assert span.status.status_code is StatusCode.UNSET  # a 4xx is the client's failure


async def test_5xx_and_exceptions_mark_the_span_as_failed(telemetry):
    """A 503 answer and an app that raised both end the SERVER span in ERROR; the exception
    is recorded as an event."""
    running, exporter = telemetry
    app = running.instrument_asgi(APP)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get("/v1/unavailable")).status_code == 503
        assert (await client.get("/v1/broken")).status_code == 500
    spans = {s.name: s for s in await _server_spans(running, exporter)}
    assert spans["GET /v1/unavailable"].status.status_code is StatusCode.ERROR
    failed = spans["GET /v1/broken"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["http.response.status_code"] == 500
    (event,) = failed.events
    assert event.name == "exception"
    assert event.attributes["exception.message"] == "database on fire"


async def test_the_clients_baggage_is_current_in_the_app(telemetry):
    """W3C baggage from the request is current while the app runs, beside the span."""
    running, _ = telemetry
    async with _client(running) as client:
        response = await client.get("/v1/tenant", headers={"baggage": "tenant=acme"})
    assert response.json() == {"tenant": "acme"}


async def test_xray_header_is_continued_and_echoed(telemetry):
    """A client sending only X-Amzn-Trace-Id gets its X-Ray trace continued and echoed."""
    running, exporter = telemetry
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    async with _client(running) as client:
        response = await client.get("/v1/orders/o-2", headers={"X-Amzn-Trace-Id": header})
    (span,) = await _server_spans(running, exporter)
    assert f"{span.context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert span.parent is not None
    assert span.parent.span_id == 0x53995C3F42CD8AD8
    assert response.headers["x-amzn-trace-id"].startswith(
        "Root=1-5759e988-bd862e3fe1be46a994272793;"
    )


async def test_probes_are_not_traced(telemetry):
    """/healthz makes no span and carries no trace headers."""
    running, exporter = telemetry
    async with _client(running) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert await _server_spans(running, exporter) == []
    assert "x-trace-id" not in response.headers
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{running.metrics_port}/metrics")).text
    assert _count(text, "/healthz", 200) == 1  # untraced, still counted


def _count(text: str, route: str, status: int) -> float:
    pattern = re.compile(
        r"^http_server_request_duration_seconds_count\{(.*)\} (\S+)$", re.MULTILINE
    )
    return sum(
        float(value)
        for labels, value in pattern.findall(text)
        if f'http_route="{route}"' in labels and f'http_response_status_code="{status}"' in labels
    )


async def test_http_histogram_by_route_template_and_status(telemetry):
    """Requests are counted under the route template (not the raw path) and their status."""
    running, _ = telemetry
    async with _client(running) as client:
        for order in ("a", "b", "c"):
            await client.get(f"/v1/orders/{order}")
        await client.get("/v1/orders/missing")
        await client.get("/nowhere")
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{running.metrics_port}/metrics")).text
    assert _count(text, "/v1/orders/{order_id}", 200) == 3
    assert _count(text, "/v1/orders/{order_id}", 404) == 1
    assert _count(text, "unmatched", 404) == 1
    assert "/v1/orders/a" not in text
