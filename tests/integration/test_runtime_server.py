# ruff: noqa: N802  -- servicer methods carry the RPC names from the protos
"""The shared runtime's gRPC server: health, reflection, error mapping, logging, graceful
shutdown — a real grpc.aio server on a loopback port and a real client."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import structlog
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from services.runtime import (
    ConfigError,
    FailedPrecondition,
    NotFound,
    PreconditionViolation,
    ServiceServer,
    State,
    configure_logging,
    create_server,
    get_logger,
)
from services.runtime.interceptors import RpcCall, RpcInterceptor
from shop.common.v1 import common_pb2
from shop.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from shop.orders.v1 import orders_pb2, orders_pb2_grpc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
ORDERS = orders_pb2.DESCRIPTOR.services_by_name["OrderService"]
ORDER_ID = "5f0c6f3e-2f64-4a55-9d3a-6f1f1c3c2b10"


class Inventory(inventory_pb2_grpc.InventoryServiceServicer):
    """A test double of the inventory service, each RPC exercising one runtime path."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished: list[str] = []

    async def GetProduct(self, request: Any, context: Any) -> Any:
        get_logger("test.inventory").info("product.lookup", sku=request.sku)
        raise NotFound("product", f"products/{request.sku}")

    async def ReserveStock(self, request: Any, context: Any) -> Any:
        raise FailedPrecondition(
            [PreconditionViolation("STOCK", "products/SKU-1", "only 2 left, 5 requested")]
        )

    async def ListProducts(self, request: Any, context: Any) -> Any:
        password = "s3cret-db-password"  # must never reach the client
        raise RuntimeError(f"database said no, password={password}")

    async def AdjustStock(self, request: Any, context: Any) -> Any:
        # Calls an upstream that is not there (port 1 on loopback refuses connections).
        async with grpc.aio.insecure_channel("127.0.0.1:1") as upstream:
            stub = inventory_pb2_grpc.InventoryServiceStub(upstream)
            return await stub.GetProduct(inventory_pb2.GetProductRequest(sku="X"), timeout=0.5)

    async def CreateProduct(self, request: Any, context: Any) -> Any:
        # Slow on purpose: held until the test releases it, to observe draining.
        self.started.set()
        await self.release.wait()
        self.finished.append(request.sku)
        return inventory_pb2.Product(sku=request.sku, name=request.name)


class Orders(orders_pb2_grpc.OrderServiceServicer):
    async def WatchOrder(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for status in (orders_pb2.ORDER_STATUS_PENDING, orders_pb2.ORDER_STATUS_CONFIRMED):
            yield orders_pb2.Order(order_id=request.order_id, status=status)


@pytest.fixture
async def inventory() -> Inventory:
    return Inventory()


@pytest.fixture
async def server(inventory: Inventory) -> AsyncIterator[ServiceServer]:
    srv = await create_server(
        "test-runtime",
        [
            (INVENTORY, inventory, inventory_pb2_grpc.add_InventoryServiceServicer_to_server),
            (ORDERS, Orders(), orders_pb2_grpc.add_OrderServiceServicer_to_server),
        ],
        address="127.0.0.1:0",
        shutdown_grace=5.0,
    )
    await srv.start()
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def channel(server: ServiceServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Runtime logging into a buffer; the process-wide setup is undone afterwards."""
    out = io.StringIO()
    configure_logging("test-runtime", "info", stream=out)
    yield out
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "services.runtime"]:
        root.removeHandler(handler)
    structlog.reset_defaults()


def _product_request(sku: str = "SKU-1") -> Any:
    return inventory_pb2.CreateProductRequest(
        idempotency_key="k-1",
        sku=sku,
        name="Widget",
        price=common_pb2.Money(currency_code="EUR", minor_units=100),
    )


async def _health(channel: grpc.aio.Channel, service: str = "") -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=2
    )
    return int(reply.status)


async def test_health_goes_serving_only_when_dependencies_are_ready(server, channel):
    """Health is NOT_SERVING after start, stays so until both database and broker are
    reported ready, then SERVING for the server and each service."""
    assert await _health(channel) == NOT_SERVING
    await server.mark_ready("database")
    assert await _health(channel) == NOT_SERVING
    await server.mark_ready("broker")
    assert await _health(channel) == SERVING
    assert await _health(channel, INVENTORY.full_name) == SERVING


async def test_health_reports_a_lost_dependency(server, channel):
    """A dependency reported lost turns health back to NOT_SERVING until it recovers."""
    await server.mark_ready("database")
    await server.mark_ready("broker")
    await server.mark_not_ready("broker")
    assert await _health(channel) == NOT_SERVING
    await server.mark_ready("broker")
    assert await _health(channel) == SERVING


async def test_health_turns_not_serving_when_shutdown_begins(server, channel):
    """A health watcher sees SERVING, then NOT_SERVING as soon as shutdown starts."""
    await server.mark_ready("database")
    await server.mark_ready("broker")
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    seen = [(await watch.read()).status]
    stopping = asyncio.create_task(server.stop(grace=1))
    seen.append((await asyncio.wait_for(watch.read(), 5)).status)
    await stopping
    assert seen == [SERVING, NOT_SERVING]
    assert server.state is State.STOPPED


async def test_reflection_lists_every_service(channel):
    """Server reflection lists the application services, health and reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    reply = await asyncio.wait_for(responses.read(), 5)
    names = {s.name for s in reply.list_services_response.service}
    assert names == {
        "shop.inventory.v1.InventoryService",
        "shop.orders.v1.OrderService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_reflection_serves_file_descriptors(channel):
    """Reflection returns the proto file defining a service, so clients need no protos."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=ORDERS.full_name)])
    )
    reply = await asyncio.wait_for(responses.read(), 5)
    assert reply.file_descriptor_response.file_descriptor_proto


async def test_invalid_request_returns_field_violations(channel):
    """A request breaking the contract's rules gets INVALID_ARGUMENT with one BadRequest
    field violation per bad field, before the handler runs."""
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    bad = inventory_pb2.CreateProductRequest(idempotency_key="", sku="bad sku!", name="x")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateProduct(bad, timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    fields = {v.field: v.reason for v in bad_request.field_violations}
    assert fields == {
        "idempotency_key": "string.min_len",
        "sku": "string.pattern",
        "price": "required",
    }
    assert all(v.description for v in bad_request.field_violations)


async def test_not_found_carries_resource_info(channel):
    """NotFound maps to NOT_FOUND with a ResourceInfo detail naming the resource."""
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetProduct(inventory_pb2.GetProductRequest(sku="SKU-9"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ResourceInfo()
    assert status.details[0].Unpack(info)
    assert (info.resource_type, info.resource_name) == ("product", "products/SKU-9")


async def test_failed_precondition_carries_violations(channel):
    """FailedPrecondition maps to FAILED_PRECONDITION with PreconditionFailure violations."""
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    request = inventory_pb2.ReserveStockRequest(
        order_id=ORDER_ID, lines=[common_pb2.ItemQuantity(sku="SKU-1", quantity=5)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReserveStock(request, timeout=5)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    failure = error_details_pb2.PreconditionFailure()
    assert rpc_status.from_call(caught.value).details[0].Unpack(failure)
    assert [(v.type, v.subject) for v in failure.violations] == [("STOCK", "products/SKU-1")]


async def test_unexpected_error_is_internal_without_details(channel):
    """An unexpected exception becomes INTERNAL with a generic message: nothing leaks."""
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListProducts(inventory_pb2.ListProductsRequest(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"
    assert "s3cret" not in str(caught.value.trailing_metadata())


async def test_failed_upstream_call_is_unavailable(channel):
    """A handler whose upstream gRPC call is unavailable or times out answers UNAVAILABLE."""
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    request = inventory_pb2.AdjustStockRequest(sku="SKU-1", delta=3, idempotency_key="k")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AdjustStock(request, timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "upstream unavailable"


async def test_server_streaming_passes_through_interceptors(channel):
    """A server-streaming RPC delivers every message through the interceptor chain."""
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    replies = [
        r.status async for r in stub.WatchOrder(orders_pb2.WatchOrderRequest(order_id=ORDER_ID))
    ]
    assert replies == [orders_pb2.ORDER_STATUS_PENDING, orders_pb2.ORDER_STATUS_CONFIRMED]


async def test_streaming_request_is_validated(channel):
    """Streaming RPCs validate their request too (WatchOrder needs a UUID)."""
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.WatchOrder(orders_pb2.WatchOrderRequest(order_id="nope")):
            pass
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_shutdown_drains_in_flight_rpc_then_runs_hooks_in_order(server, inventory, channel):
    """stop() lets an in-flight RPC finish, refuses new ones, then runs hooks in order."""
    order: list[str] = []

    async def hook(name: str) -> None:
        order.append(f"{name}:{len(inventory.finished)}")

    for name in ("consumers", "outbox", "broker", "database"):
        server.on_shutdown(name, lambda name=name: hook(name))
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    in_flight = asyncio.ensure_future(stub.CreateProduct(_product_request(), timeout=10))
    await asyncio.wait_for(inventory.started.wait(), 5)
    stopping = asyncio.create_task(server.stop(grace=5))
    await asyncio.sleep(0.2)
    assert not stopping.done(), "stop() must wait for the in-flight RPC"
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetProduct(inventory_pb2.GetProductRequest(sku="X"), timeout=2)
    inventory.release.set()
    reply = await asyncio.wait_for(in_flight, 5)
    await asyncio.wait_for(stopping, 5)
    assert reply.sku == "SKU-1"
    # Every hook ran after the RPC had finished (the count of finished RPCs is 1 in each).
    assert order == ["consumers:1", "outbox:1", "broker:1", "database:1"]


async def test_shutdown_cancels_rpcs_that_outlive_the_grace(server, inventory, channel):
    """An RPC still running when the grace period ends is cancelled; stop() returns."""
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    in_flight = asyncio.ensure_future(stub.CreateProduct(_product_request(), timeout=10))
    await asyncio.wait_for(inventory.started.wait(), 5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(server.stop(grace=0.3), 5)
    assert loop.time() - began < 3
    with pytest.raises(grpc.aio.AioRpcError):
        await asyncio.wait_for(in_flight, 5)
    assert inventory.finished == []


async def test_failing_hook_does_not_skip_later_hooks(server):
    """A hook that raises or hangs is logged and skipped; the next hooks still run."""
    ran: list[str] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    async def hangs() -> None:
        await asyncio.sleep(60)

    async def fine() -> None:
        ran.append("fine")

    server.on_shutdown("broken", broken)
    server.on_shutdown("hangs", hangs)
    server.on_shutdown("fine", fine)
    await asyncio.wait_for(server.stop(grace=0.2), 5)
    assert ran == ["fine"]


async def test_stop_twice_is_safe(server):
    """stop() is idempotent; lifecycle methods refuse to run out of order."""
    await server.stop(grace=0)
    await server.stop(grace=0)
    assert server.state is State.STOPPED
    with pytest.raises(RuntimeError, match="cannot start while stopped"):
        await server.start()


async def test_a_second_server_on_a_taken_port_refuses_to_start(server):
    """gRPC's default SO_REUSEPORT would let a second server share the port and take half of
    its connections; ours refuses to bind instead."""
    with pytest.raises(ConfigError, match=f"cannot bind 127.0.0.1:{server.port}: in use"):
        await create_server("second", address=f"127.0.0.1:{server.port}")


async def _log_lines_once(out: io.StringIO, event: str) -> list[dict[str, Any]]:
    """The JSON lines in ``out`` once one ``event`` line is there: an aborted RPC's status
    reaches the client before the server's interceptors unwind and log it (grpc.aio's
    ``abort`` sends the status, then raises), so the client can be first."""
    for _ in range(100):
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        if any(line["event"] == event for line in lines):
            return lines
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {event!r} line logged within 2 s")


async def test_log_lines_are_json_with_the_rpc_bound(channel, json_logs):
    """Each RPC logs one JSON line with code, duration and peer, and lines logged inside the
    handler carry rpc.service and rpc.method."""
    out = json_logs
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetProduct(inventory_pb2.GetProductRequest(sku="SKU-7"), timeout=5)
    lines = await _log_lines_once(out, "rpc.finished")
    inside = next(line for line in lines if line["event"] == "product.lookup")
    finished = next(line for line in lines if line["event"] == "rpc.finished")
    for line in (inside, finished):
        assert line["rpc.service"] == "shop.inventory.v1.InventoryService"
        assert line["rpc.method"] == "GetProduct"
        assert line["service"] == "test-runtime"
        assert "timestamp" in line
    assert finished["code"] == "NOT_FOUND"
    assert finished["duration_ms"] >= 0
    assert "127.0.0.1" in finished["peer"]


async def test_unexpected_error_is_logged_with_traceback(channel, json_logs):
    """The INTERNAL case logs the exception with its traceback (server side only)."""
    out = json_logs
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ListProducts(inventory_pb2.ListProductsRequest(), timeout=5)
    lines = await _log_lines_once(out, "rpc.finished")
    error = next(line for line in lines if line["event"] == "rpc.unexpected_error")
    assert error["exception"][0]["exc_type"] == "RuntimeError"
    assert error["rpc.method"] == "ListProducts"
    assert next(line for line in lines if line["event"] == "rpc.finished")["code"] == "INTERNAL"


class _Recording(RpcInterceptor):
    """Records the order in which it runs and what it saw of the call."""

    def __init__(self, name: str, seen: list[str]) -> None:
        self._name, self._seen = name, seen

    async def around(self, call: RpcCall, proceed: Any) -> Any:
        self._seen.append(f"{self._name}:{call.rpc.name}:{'probe' if call.rpc.probe else 'app'}")
        return await proceed()


class _PlainGrpc(grpc.aio.ServerInterceptor):
    """A grpc.aio interceptor that is not one of ours: it runs outside the chain."""

    def __init__(self, seen: list[str]) -> None:
        self._seen = seen

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        self._seen.append(f"plain:{details.method.rsplit('/', 1)[-1]}")
        return await continuation(details)


async def test_extra_interceptors_run_in_order_around_every_call(inventory):
    """Extra RpcInterceptors run in the chain in the order given, on every call (the chain
    reuses each method's wrapped handler); a plain grpc.aio interceptor runs too, outside."""
    seen: list[str] = []
    srv = await create_server(
        "test-extras",
        [(INVENTORY, inventory, inventory_pb2_grpc.add_InventoryServiceServicer_to_server)],
        address="127.0.0.1:0",
        readiness=(),
        interceptors=[_Recording("a", seen), _PlainGrpc(seen), _Recording("b", seen)],
    )
    await srv.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = inventory_pb2_grpc.InventoryServiceStub(ch)
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.GetProduct(inventory_pb2.GetProductRequest(sku="SKU-1"))
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
    finally:
        await srv.stop(grace=0)
    assert seen == [
        *["plain:GetProduct", "a:GetProduct:app", "b:GetProduct:app"] * 2,
        "plain:Check",
        "a:Check:probe",
        "b:Check:probe",
    ]


async def test_an_interceptor_installed_alone_on_a_plain_server(inventory):
    """Each RpcInterceptor is a grpc.aio interceptor by itself too (a chain of one)."""
    seen: list[str] = []
    plain = grpc.aio.server(interceptors=[_Recording("alone", seen)])
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(inventory, plain)
    port = plain.add_insecure_port("127.0.0.1:0")
    await plain.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = inventory_pb2_grpc.InventoryServiceStub(ch)
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError):
                    await stub.GetProduct(inventory_pb2.GetProductRequest(sku="SKU-1"))
    finally:
        await plain.stop(0)
    assert seen == ["alone:GetProduct:app"] * 2
