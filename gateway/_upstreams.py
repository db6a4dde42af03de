"""Upstream gRPC services: one shared ``grpc.aio`` channel per address, health-aware.

Addresses come from configuration (``host:port``; DNS names such as AWS Cloud Map's
``orders.shop.local:50051`` resolve through gRPC's resolver). A background task asks each
upstream's ``grpc.health.v1.Health/Check`` for every service behind it; a service reported
NOT_SERVING is answered 503 at once instead of queueing calls against it. An upstream that has
no health service (UNIMPLEMENTED) counts as serving; calls to one that cannot be reached are
left to the call itself, which fails with UNAVAILABLE.

Readiness (:meth:`Upstreams.health`) is stricter: a service is ready only once a check over
the shared channel got an answer from it, so ``/readyz`` does not say 200 while the channel
calls would use is still failing to connect. Channels come from
:func:`services.runtime.channels.upstream_channel` (reconnect backoff capped at half a second).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime import get_logger
from services.runtime.channels import upstream_channel

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

__all__ = ["Upstreams", "resolve_upstream"]

_log = get_logger(__name__)

_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def resolve_upstream(service: str, upstreams: Mapping[str, str]) -> str | None:
    """The address configured for ``service`` (a full name such as ``shop.orders.v1.X``).

    A key may be the full service name, its package (``shop.orders.v1``) or one component
    of the package (``orders``); the most specific key wins.
    """
    package = service.rsplit(".", 1)[0]
    for key in (service, package):
        if key in upstreams:
            return upstreams[key]
    for part in package.split("."):
        if part in upstreams:
            return upstreams[part]
    return None


class Upstreams:
    """Channels by address and health by service; an async context manager."""

    def __init__(
        self,
        addresses: Mapping[str, str],
        *,
        health_interval: float = 5.0,
        trace_channel: Callable[[grpc.aio.Channel], grpc.aio.Channel] | None = None,
    ) -> None:
        """``addresses`` maps each service full name to its ``host:port``; ``trace_channel``
        (``Telemetry.trace_channel``) wraps each channel so its calls are traced."""
        self._addresses = dict(addresses)
        self._trace_channel = trace_channel
        self._interval = health_interval
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._serving: dict[str, bool] = dict.fromkeys(self._addresses, True)
        self._ready: dict[str, bool] = dict.fromkeys(self._addresses, False)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def channel(self, service: str) -> grpc.aio.Channel:
        """The shared channel to ``service``'s address (created on first use)."""
        address = self._addresses[service]
        channel = self._channels.get(address)
        if channel is None:
            channel = upstream_channel(address)
            if self._trace_channel is not None:
                channel = self._trace_channel(channel)
            self._channels[address] = channel
        return channel

    def serving(self, service: str) -> bool:
        """False only when the upstream's health service said NOT_SERVING."""
        return self._serving.get(service, True)

    def health(self) -> dict[str, bool]:
        """Readiness of every configured service: its last check reached it and it was not
        NOT_SERVING (False until the first check has answered)."""
        return dict(self._ready)

    async def check(self) -> None:
        """Ask every upstream for its health once."""
        await asyncio.gather(*(self._check(service) for service in self._addresses))

    async def _check(self, service: str) -> None:
        stub = health_pb2_grpc.HealthStub(self.channel(service))
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.aio.AioRpcError as exc:
            # No health service or a name it does not know: only an explicit NOT_SERVING
            # fails calls early; otherwise the RPC itself decides. No answer at all: calls
            # are still tried, but the gateway is not ready.
            serving, ready = True, exc.code() not in _UNREACHABLE
        else:
            serving = reply.status == health_pb2.HealthCheckResponse.SERVING
            ready = serving
        if ready != self._ready.get(service):
            _log.info("gateway.upstream_health", service=service, serving=serving, ready=ready)
        self._serving[service] = serving
        self._ready[service] = ready

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(Exception):
                await self.check()

    async def __aenter__(self) -> Self:
        """Check every upstream once (at most a couple of seconds), then keep checking."""
        if self._closed:
            raise RuntimeError("upstreams are closed")
        with contextlib.suppress(Exception):
            await self.check()
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop health checks and close every channel."""
        await self.close()

    async def close(self) -> None:
        """Idempotent: stop the checks, then close the channels."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(grace=None)
