"""The gRPC server lifecycle every service runs in.

:class:`ServiceServer` has an explicit lifecycle (``__init__`` touches nothing):

``setup()``
    builds the ``grpc.aio`` server with the interceptors, the standard health service, server
    reflection and the service's servicers, and binds the port (0 picks a free one; the bound
    port is returned and kept in :attr:`ServiceServer.port`).
``start()``
    starts serving RPCs. Health says NOT_SERVING until every dependency named in
    ``readiness`` (by default ``database`` and ``broker``) was reported with
    :meth:`~ServiceServer.mark_ready`; then SERVING, for ``""`` and for each service.
``stop(grace)``
    shuts down in order, each step for a reason:

    1. health NOT_SERVING, so load balancers and ``shopmq up`` stop sending new work here;
    2. stop accepting RPCs and let in-flight ones finish for up to ``grace`` seconds, then
       cancel what is left (``grpc.aio.Server.stop``);
    3. run the shutdown hooks in registration order — a service registers: stop consumers (no
       new messages), flush the outbox (nothing committed stays unpublished), close the broker,
       close the database — each bounded by ``grace`` and logged if it fails, so one broken
       hook cannot keep the others from running.

:meth:`ServiceServer.serve` waits for SIGTERM or SIGINT and then stops; a second signal
cancels the shutdown in progress (forced exit).
"""

from __future__ import annotations

import asyncio
import enum
import errno
import signal
import socket
from typing import TYPE_CHECKING, Any, Self

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer  # public as health.aio, which mypy cannot see
from grpc_reflection.v1alpha import reflection

from services.runtime.errors import ConfigError
from services.runtime.interceptors import (
    ErrorInterceptor,
    InterceptorChain,
    LoggingInterceptor,
    RpcInterceptor,
    ValidationInterceptor,
)
from services.runtime.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence
    from types import TracebackType

    from google.protobuf.descriptor import ServiceDescriptor

    from services.runtime.settings import Settings

    ShutdownHook = Callable[[], Awaitable[object]]
    """A coroutine function run once during shutdown."""

__all__ = ["ServiceServer", "State", "create_server"]

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class State(enum.Enum):
    NEW = "new"
    SET_UP = "set up"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"


class ServiceServer:
    """A ``grpc.aio`` server with health, reflection, interceptors and ordered shutdown."""

    def __init__(
        self,
        name: str,
        *,
        address: str = "[::]:0",
        shutdown_grace: float = 10.0,
        readiness: Iterable[str] = ("database", "broker"),
        interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.name = name
        self.address = address
        self.shutdown_grace = shutdown_grace
        self.port: int | None = None
        self._extra_interceptors = tuple(interceptors)
        # gRPC sets SO_REUSEPORT by default on Linux: a second process started on the same
        # port would bind without error and silently take half of the connections.
        self._options = (("grpc.so_reuseport", 0), *options)
        self._not_ready = set(readiness)
        self._services: list[tuple[str, object, Callable[[Any, Any], None]]] = []
        self._hooks: list[tuple[str, ShutdownHook]] = []
        self._state = State.NEW
        self._server: grpc.aio.Server | None = None
        self._health: HealthServicer | None = None
        self._stopped: asyncio.Event | None = None
        self._log = get_logger("services.runtime.server").bind(server=name)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ServiceServer:
        """A server bound to ``settings.grpc_address`` with the settings' shutdown grace and
        largest received message (``GRPC_MAX_MESSAGE_BYTES``)."""
        limit = ("grpc.max_receive_message_length", settings.grpc_max_message_bytes)
        options.setdefault("options", (limit,))
        return cls(
            settings.service_name,
            address=settings.grpc_address,
            shutdown_grace=settings.shutdown_grace,
            **options,
        )

    @property
    def state(self) -> State:
        return self._state

    @property
    def service_names(self) -> list[str]:
        """Full names of the registered application services."""
        return [name for name, _, _ in self._services]

    def add_service(
        self,
        descriptor: ServiceDescriptor,
        servicer: object,
        add_to_server: Callable[[Any, Any], None],
    ) -> None:
        """Register a servicer, e.g. ``(orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
        OrderServicer(...), orders_pb2_grpc.add_OrderServiceServicer_to_server)``."""
        self._expect(State.NEW, "add_service")
        self._services.append((descriptor.full_name, servicer, add_to_server))

    def on_shutdown(self, name: str, hook: ShutdownHook) -> None:
        """Run ``hook`` during :meth:`stop`, after RPCs drained, in registration order."""
        if self._state in {State.STOPPING, State.STOPPED}:
            raise RuntimeError(f"{self.name}: cannot add a shutdown hook while {self._state.value}")
        self._hooks.append((name, hook))

    async def setup(self) -> int:
        """Build the server and bind its port; return the bound port."""
        self._expect(State.NEW, "setup")
        chained: list[RpcInterceptor] = []
        interceptors: list[grpc.aio.ServerInterceptor[Any, Any]] = []
        for extra in self._extra_interceptors:
            # Ours run as one chain; any other grpc.aio interceptor runs outside it.
            if isinstance(extra, RpcInterceptor):
                chained.append(extra)
            else:
                interceptors.append(extra)
        chained += [LoggingInterceptor(), ErrorInterceptor(), ValidationInterceptor()]
        interceptors.append(InterceptorChain(chained))
        server = grpc.aio.server(interceptors=interceptors, options=self._options)
        self._health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for _, servicer, add_to_server in self._services:
            add_to_server(servicer, server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        # The health servicer starts with "" SERVING; nothing is ready yet.
        for service in ["", *self.service_names]:
            await self._health.set(service, _NOT_SERVING)
        # A port in use is checked here first: gRPC would refuse it too (with SO_REUSEPORT
        # off), but only after logging lines of its own.
        if _in_use(self.address):
            problem = f"cannot bind {self.address}: in use by another process"
            raise ConfigError("GRPC_HOST/GRPC_PORT", problem)
        try:
            port = server.add_insecure_port(self.address)
        except RuntimeError:  # newer grpcio raises where older ones return 0
            port = 0
        if port == 0:
            raise ConfigError("GRPC_HOST/GRPC_PORT", f"cannot bind {self.address}")
        self._server, self.port = server, port
        self._stopped = asyncio.Event()
        self._state = State.SET_UP
        return port

    async def start(self) -> None:
        """Start serving RPCs (health stays NOT_SERVING until every dependency is ready)."""
        self._expect(State.SET_UP, "start")
        assert self._server is not None
        await self._server.start()
        self._state = State.STARTED
        self._log.info("server.started", address=self.address, port=self.port)
        await self._update_health()

    async def mark_ready(self, dependency: str) -> None:
        """Report one dependency (e.g. ``database``) ready; SERVING once all are."""
        self._not_ready.discard(dependency)
        self._log.info("server.dependency_ready", dependency=dependency)
        await self._update_health()

    async def mark_not_ready(self, dependency: str) -> None:
        """Report a dependency lost (e.g. the broker connection); NOT_SERVING until it is back."""
        self._not_ready.add(dependency)
        self._log.warning("server.dependency_not_ready", dependency=dependency)
        await self._update_health()

    @property
    def serving(self) -> bool:
        return self._state is State.STARTED and not self._not_ready

    async def _update_health(self) -> None:
        if self._health is None or self._state is not State.STARTED:
            return
        status = _SERVING if not self._not_ready else _NOT_SERVING
        for service in ["", *self.service_names]:
            await self._health.set(service, status)

    async def stop(self, grace: float | None = None) -> None:
        """Shut down in order (health, drain, hooks); safe to call twice or concurrently."""
        if self._state is State.NEW:
            self._state = State.STOPPED
            return
        assert self._stopped is not None
        if self._state in {State.STOPPING, State.STOPPED}:
            await self._stopped.wait()
            return
        self._state = State.STOPPING
        grace = self.shutdown_grace if grace is None else grace
        self._log.info("server.stopping", grace=grace)
        try:
            assert self._health is not None
            assert self._server is not None
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace)
            for name, hook in self._hooks:
                await self._run_hook(name, hook, grace)
        finally:
            self._state = State.STOPPED
            self._stopped.set()
        self._log.info("server.stopped")

    async def _run_hook(self, name: str, hook: ShutdownHook, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await hook()
        except TimeoutError:
            self._log.error("server.shutdown_hook_timeout", hook=name, timeout=timeout)
        except Exception:  # noqa: BLE001 -- one failing hook must not skip the others
            self._log.exception("server.shutdown_hook_failed", hook=name)
        else:
            self._log.info("server.shutdown_hook_done", hook=name)

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT, then :meth:`stop`; a second signal cancels the stop.

        Call after :meth:`start`; returns once the server stopped. Until it is called the
        signals keep their default action: a process stopped while still starting (not yet
        SERVING) has taken no work, and its stores are transactional, so nothing is lost.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        requested = asyncio.Event()

        def on_signal(signum: signal.Signals) -> None:
            if not requested.is_set():
                self._log.info("server.signal", signal=signum.name)
                requested.set()
            else:
                self._log.warning("server.forced_exit", signal=signum.name)
                if task is not None:
                    task.cancel()

        signals = (signal.SIGTERM, signal.SIGINT)
        for signum in signals:
            loop.add_signal_handler(signum, on_signal, signum)
        self._log.info("server.awaiting_signal", signals=[s.name for s in signals])
        try:
            await requested.wait()
            await self.stop()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)

    def _expect(self, state: State, action: str) -> None:
        if self._state is not state:
            raise RuntimeError(f"{self.name}: cannot {action} while {self._state.value}")

    async def __aenter__(self) -> Self:
        if self._state is State.NEW:
            await self.setup()
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def create_server(
    name: str,
    services: Iterable[tuple[ServiceDescriptor, object, Callable[[Any, Any], None]]] = (),
    *,
    address: str = "[::]:0",
    **options: Any,
) -> ServiceServer:
    """A :class:`ServiceServer` with ``services`` registered, set up and bound (not started);
    its bound port is ``server.port``."""
    server = ServiceServer(name, address=address, **options)
    for descriptor, servicer, add_to_server in services:
        server.add_service(descriptor, servicer, add_to_server)
    await server.setup()
    return server


def _in_use(address: str) -> bool:
    """Whether something already listens on ``host:port`` (``[v6]:port`` too). Any other
    reason not to bind (no IPv6 here, say) is left to gRPC, which falls back where it can."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    except ValueError:
        return False
    return False
