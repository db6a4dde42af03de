# ruff: noqa: N802  -- servicer methods carry the RPC names from the protos
"""Telemetry through real gRPC servers and a real OTLP/gRPC receiver: connected SERVER and
CLIENT spans, health checks left out, trace ids in log lines, the RPC histogram on /metrics."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import baggage, propagate

from services.runtime import NotFound, configure_logging, create_server, get_logger
from services.runtime.telemetry import Telemetry, setup_telemetry
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from tests.support.otlp_receiver import OtlpReceiver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from services.runtime import ServiceServer

INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Backend(inventory_pb2_grpc.InventoryServiceServicer):
    """The upstream: knows one product."""

    async def GetProduct(self, request: Any, context: Any) -> Any:
        tenant = baggage.get_baggage("tenant")
        get_logger("test.backend").info("product.lookup", sku=request.sku, tenant=tenant)
        if request.sku != "SKU-1":
            raise NotFound("product", f"products/{request.sku}")
        return inventory_pb2.Product(sku="SKU-1", name="Widget")


class Edge(inventory_pb2_grpc.InventoryServiceServicer):
    """The front: forwards GetProduct to the backend over a traced channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = inventory_pb2_grpc.InventoryServiceStub(channel)

    async def GetProduct(self, request: Any, context: Any) -> Any:
        tenant = baggage.get_baggage("tenant")
        get_logger("test.edge").info("product.forward", sku=request.sku, tenant=tenant)
        try:
            return await self._stub.GetProduct(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("telemetry-it", "info", stream=stream)
    yield stream
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "services.runtime"]:
        root.removeHandler(handler)


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    async with OtlpReceiver() as running:
        yield running


@pytest.fixture
def restore_propagator() -> Iterator[None]:
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


def _environ(receiver: OtlpReceiver, name: str) -> dict[str, str]:
    return {
        "OTEL_SERVICE_NAME": name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


async def _serve(name: str, servicer: object, telemetry: Telemetry) -> ServiceServer:
    server = await create_server(
        name,
        [(INVENTORY, servicer, inventory_pb2_grpc.add_InventoryServiceServicer_to_server)],
        address="127.0.0.1:0",
        readiness=(),
        interceptors=telemetry.server_interceptors(),
    )
    # Telemetry last: its shutdown flushes what the other hooks' spans left queued.
    server.on_shutdown("telemetry", telemetry.shutdown)
    await server.start()
    return server


@pytest.fixture
async def pair(
    receiver: OtlpReceiver, restore_propagator: None
) -> AsyncIterator[tuple[ServiceServer, ServiceServer, Telemetry]]:
    """Edge -> backend, each with its own telemetry exporting to the receiver."""
    back_telemetry = setup_telemetry(
        "backend", environ=_environ(receiver, "backend"), set_global=False
    )
    edge_telemetry = setup_telemetry(
        "edge", environ=_environ(receiver, "edge"), metrics_port=0, set_global=False
    )
    backend = await _serve("backend", Backend(), back_telemetry)
    channel = edge_telemetry.trace_channel(grpc.aio.insecure_channel(f"127.0.0.1:{backend.port}"))
    edge = await _serve("edge", Edge(channel), edge_telemetry)
    try:
        yield edge, backend, edge_telemetry
    finally:
        await edge.stop(1)
        await channel.close()
        await backend.stop(1)


async def _call(port: int | None, sku: str, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = inventory_pb2_grpc.InventoryServiceStub(channel)
        return await stub.GetProduct(
            inventory_pb2.GetProductRequest(sku=sku), metadata=metadata, timeout=5
        )


async def test_server_and_client_spans_form_one_connected_trace(pair, receiver, log_stream):
    """The caller's traceparent is continued: edge SERVER -> edge CLIENT -> backend SERVER."""
    edge, _, _ = pair
    product = await _call(edge.port, "SKU-1", (("traceparent", TRACEPARENT),))
    assert product.name == "Widget"
    method = "/shop.inventory.v1.InventoryService/GetProduct"

    spans = await receiver.wait_for(
        lambda spans: len([s for s in spans if s.trace_id == TRACE_ID]) >= 3
    )
    trace = {(s.service, s.kind): s for s in spans if s.trace_id == TRACE_ID}
    edge_server = trace["edge", "SERVER"]
    edge_client = trace["edge", "CLIENT"]
    backend_server = trace["backend", "SERVER"]
    assert edge_server.parent_span_id == "00f067aa0ba902b7"
    assert edge_client.parent_span_id == edge_server.span_id
    assert backend_server.parent_span_id == edge_client.span_id
    for span in (edge_server, edge_client, backend_server):
        assert span.name == method
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.method"] == "GetProduct"
        assert span.attributes["rpc.grpc.status_code"] == 0

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    forwarded = next(line for line in lines if line["event"] == "product.forward")
    looked_up = next(line for line in lines if line["event"] == "product.lookup")
    assert forwarded["trace_id"] == looked_up["trace_id"] == TRACE_ID
    assert forwarded["span_id"] == edge_server.span_id
    assert looked_up["span_id"] == backend_server.span_id
    assert looked_up["xray_trace_id"] == f"1-{TRACE_ID[:8]}-{TRACE_ID[8:]}"
    finished = [line for line in lines if line["event"] == "rpc.finished"]
    assert {line["trace_id"] for line in finished} == {TRACE_ID}


async def test_the_callers_baggage_reaches_the_handler_and_the_next_hop(pair, log_stream):
    """W3C baggage sent by the caller is current in the edge's handler beside its SERVER span,
    so the edge's traced channel carries it on to the backend's handler."""
    edge, _, _ = pair
    metadata = (("traceparent", TRACEPARENT), ("baggage", "tenant=acme"))
    await _call(edge.port, "SKU-1", metadata)
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    forwarded = next(line for line in lines if line["event"] == "product.forward")
    looked_up = next(line for line in lines if line["event"] == "product.lookup")
    assert forwarded["tenant"] == looked_up["tenant"] == "acme"
    assert forwarded["trace_id"] == looked_up["trace_id"] == TRACE_ID


async def test_error_status_is_recorded_on_the_spans(pair, receiver):
    """A NOT_FOUND from the backend shows on both SERVER spans' status code attribute."""
    edge, _, _ = pair
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(edge.port, "SKU-404", (("traceparent", TRACEPARENT),))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    spans = await receiver.wait_for(
        lambda spans: len([s for s in spans if s.trace_id == TRACE_ID]) >= 3
    )
    servers = [s for s in spans if s.trace_id == TRACE_ID and s.kind == "SERVER"]
    assert {s.attributes["rpc.grpc.status_code"] for s in servers} == {
        grpc.StatusCode.NOT_FOUND.value[0]
    }


async def test_health_checks_make_no_spans(pair, receiver):
    """Health probes are excluded from tracing; an application call still is traced."""
    edge, _, _ = pair
    async with grpc.aio.insecure_channel(f"127.0.0.1:{edge.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(3):
            await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    await _call(edge.port, "SKU-1")
    spans = await receiver.wait_for(lambda spans: any(s.service == "backend" for s in spans))
    assert not [s for s in spans if "Health" in s.name]
    assert all(s.name.endswith("GetProduct") for s in spans)


def _histogram_count(text: str, method: str, code: str) -> float:
    pattern = re.compile(r"^rpc_server_duration_seconds_count\{([^}]*)\} (\S+)$", re.MULTILINE)
    total = 0.0
    for labels, value in pattern.findall(text):
        if f'rpc_method="{method}"' in labels and f'rpc_grpc_status_code="{code}"' in labels:
            total += float(value)
    return total


async def test_metrics_endpoint_rpc_histogram_moves_by_the_calls_made(pair):
    """/metrics counts each GetProduct by status; health checks are not counted."""
    edge, _, telemetry = pair
    url = f"http://127.0.0.1:{telemetry.metrics_port}/metrics"
    async with httpx.AsyncClient() as http:
        before = (await http.get(url)).text
        for _ in range(3):
            await _call(edge.port, "SKU-1")
        with pytest.raises(grpc.aio.AioRpcError):
            await _call(edge.port, "SKU-404")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{edge.port}") as channel:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        response = await http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert (
        _histogram_count(after, "GetProduct", "OK") - _histogram_count(before, "GetProduct", "OK")
        == 3
    )
    assert (
        _histogram_count(after, "GetProduct", "NOT_FOUND")
        - _histogram_count(before, "GetProduct", "NOT_FOUND")
        == 1
    )
    assert "Check" not in after
    assert "# TYPE rpc_server_duration_seconds histogram" in after


async def test_shutdown_hook_flushes_spans_and_closes_the_metrics_port(
    receiver, restore_propagator
):
    """Spans still queued at shutdown reach the collector; the /metrics port is released."""
    environ = {**_environ(receiver, "flushing"), "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    telemetry = setup_telemetry("flushing", environ=environ, metrics_port=0, set_global=False)
    server = await _serve("flushing", Backend(), telemetry)
    port = telemetry.metrics_port
    await _call(server.port, "SKU-1")
    assert receiver.spans == []  # held by the batch processor for a minute
    await server.stop(1)
    assert [s.service for s in receiver.spans] == ["flushing"]
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/metrics")
