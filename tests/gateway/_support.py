"""Test support: the test-only proto compiled at test time, its gRPC server, a live gateway."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import grpc
import uvicorn
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_status import rpc_status

from gateway import GatewaySettings, build_app
from gateway._http import HttpProtocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ROOT = Path(__file__).resolve().parents[2]
PROTOS = Path(__file__).resolve().parent / "protos"
SERVICE = "gwtest.v1.ThingService"


def compile_descriptors(out_dir: Path) -> bytes:
    """Compile tests/gateway/protos with grpc_tools.protoc into a FileDescriptorSet."""
    out = out_dir / "gwtest.binpb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{ROOT / 'protos'}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            "--include_source_info",
            "gwtest/v1/things.proto",
        ],
        check=True,
        cwd=PROTOS,
    )
    return out.read_bytes()


class Messages:
    """Dynamic message classes for the test proto (the server side of the tests)."""

    def __init__(self, data: bytes) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
            self.pool.Add(file)

    def __getattr__(self, name: str) -> Any:
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(f"gwtest.v1.{name}"))


class ThingServer:
    """A real grpc.aio server for gwtest.v1.ThingService on a free port."""

    def __init__(self, messages: Messages, port: int = 0) -> None:
        self.m = messages
        self.list_calls = 0
        self.metadata: list[dict[str, str]] = []
        self.server = grpc.aio.server()
        self.health = HealthServicer()
        self.port = port

    def _record(self, context: grpc.aio.ServicerContext) -> dict[str, str]:
        meta = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.metadata.append(meta)
        return meta

    async def create(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record(context)
        thing = self.m.Thing()
        thing.CopyFrom(request.thing)
        thing.id = thing.id or "t1"
        thing.name = f"shelves/{request.shelf}/things/{thing.id}"
        thing.labels["request_id"] = request.request_id
        thing.create_time.seconds, thing.create_time.nanos = 1_700_000_000, 5000
        return thing

    async def get(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        meta = self._record(context)
        if request.name.endswith("missing"):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
        thing = self.m.Thing(name=request.name, id=request.name.rsplit("/", 1)[-1])
        for key in ("x-request-id", "traceparent", "x-amzn-trace-id", "x-gateway-caller"):
            if key in meta:
                thing.labels[key] = meta[key]
        return thing

    async def list(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record(context)
        self.list_calls += 1
        thing = self.m.Thing(
            id=request.shelf,
            tags=list(request.tags),
            color=request.filter.color,
            weight_grams=request.filter.min_weight,
            display_name=str(request.page_size),
            fragile=request.include_fragile,
        )
        if request.HasField("since"):
            thing.create_time.CopyFrom(request.since)
        return self.m.ListThingsResponse(things=[thing], next_page_token=str(self.list_calls))

    async def update(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        thing = self.m.Thing()
        thing.CopyFrom(request.thing)
        thing.display_name += f"|{request.etag}"
        return thing

    async def count(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.m.CountThingsResponse(count=12_345_678_901_234, shelf=request.shelf)

    async def fail(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        bad = error_details_pb2.BadRequest()
        bad.field_violations.add(field=request.field or "name", description="must not be empty")
        status = status_pb2.Status(code=request.code, message=f"failed with {request.code}")
        status.details.add().Pack(bad)
        if request.code == code_pb2.OK:
            return self.m.Thing(id="ok")
        await context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError  # abort_with_status raises

    async def slow(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await asyncio.sleep(request.delay_ms / 1000)
        return self.m.Thing(id="slow")

    async def watch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if request.shelf == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such shelf")
        for i in range(request.count):
            yield self.m.Thing(id=str(i), weight_grams=i, color=1 + i % 2)
        if request.fail_code:
            await context.abort(grpc.StatusCode(_code(request.fail_code)), "stream broke")

    async def hidden(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.m.Thing()

    def _handlers(self) -> grpc.GenericRpcHandler:
        m = self.m

        def unary(fn: Any, req: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=req.FromString, response_serializer=_bytes
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateThing": unary(self.create, m.CreateThingRequest),
                "GetThing": unary(self.get, m.GetThingRequest),
                "ListThings": unary(self.list, m.ListThingsRequest),
                "UpdateThing": unary(self.update, m.UpdateThingRequest),
                "CountThings": unary(self.count, m.CountThingsRequest),
                "Fail": unary(self.fail, m.FailRequest),
                "Slow": unary(self.slow, m.SlowRequest),
                "Hidden": unary(self.hidden, m.GetThingRequest),
                "WatchThings": grpc.unary_stream_rpc_method_handler(
                    self.watch,
                    request_deserializer=m.WatchThingsRequest.FromString,
                    response_serializer=_bytes,
                ),
            },
        )

    async def __aenter__(self) -> Self:
        self.server.add_generic_rpc_handlers([self._handlers()])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()
        await self.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop(0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _code(number: int) -> tuple[int, str]:
    return next(c.value for c in grpc.StatusCode if c.value[0] == number)


def _bytes(message: Any) -> bytes:
    return message.SerializeToString()


def free_socket() -> socket.socket:
    """A listening-ready socket bound to a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, *, http: type[HttpProtocol] = HttpProtocol) -> AsyncIterator[str]:
    """``app`` on a real uvicorn server on a free loopback port; yields its base URL."""
    sock = free_socket()
    # The gateway's own HTTP protocol, as ``python -m gateway`` runs it.
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", http=http, loop="asyncio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()


@contextlib.asynccontextmanager
async def serve_gateway(
    settings: GatewaySettings,
    descriptors: bytes,
    upstreams: dict[str, str],
    *,
    redis_prefix: str = "gw:",
) -> AsyncIterator[str]:
    """The gateway on a real uvicorn server on a free port; yields its base URL."""
    app = build_app(settings, descriptors, upstreams, redis_prefix=redis_prefix)
    async with serve_asgi(app) as base:
        yield base
