"""Fixtures: the compiled test proto, its gRPC server and a live gateway in front of it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from gateway import GatewaySettings
from tests.gateway._support import Messages, ThingServer, compile_descriptors, serve_gateway

if TYPE_CHECKING:
    from pathlib import Path

GatewayFactory = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture(scope="session")
def descriptors(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The test-only proto compiled with grpc_tools.protoc (source info kept for comments)."""
    out: Path = tmp_path_factory.mktemp("gwtest")
    return compile_descriptors(out)


@pytest.fixture
def messages(descriptors: bytes) -> Messages:
    """Message classes for building expected values."""
    return Messages(descriptors)


@pytest.fixture
async def upstream(messages: Messages) -> AsyncIterator[ThingServer]:
    """A real grpc.aio ThingService on a free port."""
    async with ThingServer(messages) as server:
        yield server


@pytest.fixture
def start_gateway(descriptors: bytes, upstream: ThingServer) -> GatewayFactory:
    """Starts a gateway (settings overridable) in front of ``upstream``."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[str]:
        prefix = overrides.pop("redis_prefix", f"gwtest:{uuid.uuid4().hex}:")
        settings = GatewaySettings(**overrides)
        return serve_gateway(
            settings, descriptors, {"gwtest": upstream.address}, redis_prefix=prefix
        )

    return start


@pytest.fixture
async def client(start_gateway: GatewayFactory) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking real HTTP to a gateway with default settings."""
    async with start_gateway() as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        yield http
