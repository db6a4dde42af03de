"""CLIENT spans from ``Telemetry.trace_channel`` over a real loopback gRPC server: one span per
call with the RPC conventions' name and attributes, its context in the call's metadata, the
final code for unary and streaming calls alike, and no spans for health checks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime._grpc_client_tracing import traced_channel

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from opentelemetry.sdk.trace import ReadableSpan

SERVICE = "test.v1.Echo"
CALLER_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _identity(data: bytes) -> bytes:
    return data


class _Echo:
    """Echoes the request; ``fail`` -> NOT_FOUND; the stream repeats the request 3 times.
    Records each call's traceparent."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []

    def _seen(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        metadata = dict(context.invocation_metadata() or ())
        self.traceparents.append(metadata.get("traceparent"))  # type: ignore[arg-type]

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self._seen(context)
        if request == b"fail":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return request

    async def stream(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        self._seen(context)
        for _ in range(3):
            yield request
        if request == b"fail":
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "enough")


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, _Echo]]:
    servicer = _Echo()
    server = grpc.aio.server()
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(servicer.unary, _identity, _identity),
        "Stream": grpc.unary_stream_rpc_method_handler(servicer.stream, _identity, _identity),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(None)


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _client_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]


async def test_a_unary_call_gets_one_client_span_whose_context_the_server_receives(echo, spans):
    address, servicer = echo
    provider, exporter = spans
    parent = provider.get_tracer("test").start_span("caller")
    async with grpc.aio.insecure_channel(address) as plain:
        channel = traced_channel(plain, provider)
        call = channel.unary_unary(f"/{SERVICE}/Unary", _identity, _identity)
        with trace.use_span(parent, end_on_exit=True):
            # The caller's own trace headers are replaced, not sent twice.
            reply = await call(b"hi", metadata=[("traceparent", CALLER_TRACEPARENT)], timeout=5)
    assert reply == b"hi"
    [span] = _client_spans(exporter)
    assert span.name == f"/{SERVICE}/Unary"
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Unary",
        "rpc.grpc.status_code": 0,
    }
    assert span.status.status_code is StatusCode.UNSET
    context = span.get_span_context()
    flags = int(context.trace_flags)
    assert servicer.traceparents == [
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    ]


async def test_a_failed_call_records_its_code_and_an_error_status(echo, spans):
    address, _ = echo
    provider, exporter = spans
    async with grpc.aio.insecure_channel(address) as plain:
        call = traced_channel(plain, provider).unary_unary(f"/{SERVICE}/Unary")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(b"fail", timeout=5)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    [span] = _client_spans(exporter)
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "no such thing"


@pytest.mark.parametrize(("request_bytes", "code"), [(b"ok", 0), (b"fail", 8)])
async def test_a_streaming_call_ends_its_span_with_the_final_code(echo, spans, request_bytes, code):
    address, servicer = echo
    provider, exporter = spans
    async with grpc.aio.insecure_channel(address) as plain:
        call = traced_channel(plain, provider).unary_stream(f"/{SERVICE}/Stream")(
            request_bytes, timeout=5
        )
        received: list[bytes] = []
        with pytest.raises(grpc.aio.AioRpcError) if code else contextlib.nullcontext():
            async for item in call:
                received.append(item)  # noqa: PERF401 - the items before an error count too
        assert received == [request_bytes] * 3
        await _finished(exporter)
    [span] = _client_spans(exporter)
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == code
    assert (span.status.status_code is StatusCode.ERROR) == bool(code)
    assert servicer.traceparents[0] is not None


async def test_a_call_nobody_awaits_still_ends_its_span(echo, spans):
    address, _ = echo
    provider, exporter = spans
    async with grpc.aio.insecure_channel(address) as plain:
        call = traced_channel(plain, provider).unary_unary(f"/{SERVICE}/Unary")(b"x", timeout=5)
        assert await call.code() is grpc.StatusCode.OK  # the call's own API, not awaited
        assert call.done()
        assert not call.cancelled()
        await _finished(exporter)
    [span] = _client_spans(exporter)
    assert span.end_time is not None


async def test_health_checks_and_reflection_are_not_traced(echo, spans):
    address, _ = echo
    provider, exporter = spans
    async with grpc.aio.insecure_channel(address) as plain:
        channel = traced_channel(plain, provider)
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        # Reflection's calls are handed out as grpc.aio makes them, untouched.
        reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        assert type(channel.stream_stream(reflection)) is type(plain.stream_stream(reflection))
    assert exporter.get_finished_spans() == ()


async def _finished(exporter: InMemorySpanExporter) -> None:
    """Spans of calls ended by their done callback end a loop turn or two later."""
    for _ in range(100):
        if _client_spans(exporter):
            return
        await asyncio.sleep(0.01)
