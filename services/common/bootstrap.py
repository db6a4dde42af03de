"""One process of a domain service, wired in the right order and shut down in reverse.

A service describes itself with a :class:`Blueprint` (name, default port, upstreams, tables, and
a ``wire`` coroutine building its servicer and event handlers from a :class:`Context`);
:func:`serve` does the rest::

    settings, logging, telemetry            read once from the environment
    engine, broker, outbox, relay           built; nothing connected yet
    wire(context)                           the service's servicers, handlers, clients
    gRPC server set up and started          health NOT_SERVING
    schema created                          -> ready("database")
    broker connected, relay started,
    consumer group subscribed               -> ready("broker"): SERVING
    the service's background tasks started  (e.g. orders' reservation sweeper)
    ... SIGTERM ...
    health NOT_SERVING, RPCs drained        (ServiceServer.stop)
    cancel the background tasks
    stop consumers                          no new messages; in-flight handlers finish
    flush the outbox                        nothing committed stays unpublished
    close the service's clients             upstream channels
    close the broker
    dispose the engine
    flush telemetry                         last, so the shutdown itself is traced
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from broker import Broker, RetryPolicy
from broker.inbox import Inbox, inbox_table
from broker.outbox import Outbox, OutboxRelay, outbox_table
from services.common.store import create_engine, create_schema
from services.runtime import Env, ServiceServer, Settings, configure_logging, get_logger
from services.runtime.telemetry import Telemetry, setup_telemetry
from services.topology import consumer_patterns

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence

    from google.protobuf.descriptor import ServiceDescriptor
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncEngine

    from broker.event import Event

    Handler = Callable[[Event], Awaitable[None]]

__all__ = [
    "Blueprint",
    "Context",
    "Dispatcher",
    "Running",
    "Wiring",
    "consumer_retry",
    "running",
    "serve",
]

_log = get_logger("services.common.bootstrap")


@dataclass(frozen=True, kw_only=True)
class Context:
    """What a service's ``wire`` gets: its settings and its (not yet connected) resources."""

    settings: Settings
    engine: AsyncEngine
    broker: Broker
    outbox: Outbox
    relay: OutboxRelay
    inbox: Inbox
    telemetry: Telemetry
    env: Env
    """The service's own variables (``INVENTORY_DEADLINE``...), from the same environment as
    ``settings``."""


@dataclass(kw_only=True)
class Wiring:
    """What a service's ``wire`` returns."""

    services: Sequence[tuple[ServiceDescriptor, object, Callable[[Any, Any], None]]]
    handler: Handler | None = None
    """Handles every event of the service's consumer group (see :class:`Dispatcher`)."""
    closers: Sequence[tuple[str, Callable[[], Awaitable[object]]]] = ()
    """Extra shutdown steps (e.g. closing upstream channels), run after the outbox flush."""
    tasks: Sequence[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = ()
    """Long-running coroutines started once the service is SERVING and cancelled first at
    shutdown (after RPCs drained, before the consumers stop)."""


@dataclass(frozen=True, kw_only=True)
class Blueprint:
    """A service's description: enough for :func:`serve` to run it."""

    name: str
    grpc_port: int
    metadata: MetaData
    """The service's tables; the outbox and inbox tables are added to it."""
    wire: Callable[[Context], Awaitable[Wiring]]
    upstreams: tuple[str, ...] = ()
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=8, initial_delay=0.2, max_delay=5.0)
    )
    concurrency: int = 8


class Dispatcher:
    """Routes each delivered event to the handler registered for its type.

    An event type with no handler is acknowledged and logged: a consumer group may see types
    it does not act on (a wildcard, a type added later), and retrying them would not help.
    """

    def __init__(
        self, handlers: Mapping[str, Handler], *, after: Callable[[], object] | None = None
    ) -> None:
        self._handlers = dict(handlers)
        self._after = after
        """Run after each handled event, e.g. ``relay.notify`` to publish what it wrote now."""

    async def __call__(self, event: Event) -> None:
        handler = self._handlers.get(event.type)
        if handler is None:
            _log.debug("event.ignored", event_type=event.type, event_id=event.id)
            return
        await handler(event)
        if self._after is not None:
            self._after()


@dataclass(frozen=True, kw_only=True)
class Running:
    """A started service: its context and server (``server.port`` is the bound port)."""

    context: Context
    server: ServiceServer


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 -- shutdown goes on; the failure is logged
            _log.exception("service.task_failed", task=task.get_name())


async def serve(blueprint: Blueprint, environ: Mapping[str, str] | None = None) -> None:
    """Run ``blueprint`` until SIGTERM/SIGINT (the body of ``python -m services.<name>``)."""
    async with running(blueprint, environ) as service:
        await service.server.serve()


def consumer_retry(env: Env, default: RetryPolicy) -> RetryPolicy:
    """The consumer group's retry policy: ``default`` with ``CONSUMER_RETRY_ATTEMPTS`` (every
    delivery counted, the first included), ``CONSUMER_RETRY_DELAY`` (seconds after the first
    failure, doubling) and ``CONSUMER_RETRY_MAX_DELAY`` applied where set."""
    return replace(
        default,
        max_attempts=env.integer("CONSUMER_RETRY_ATTEMPTS", default.max_attempts, low=1, high=1000),
        initial_delay=env.seconds("CONSUMER_RETRY_DELAY", default.initial_delay),
        max_delay=env.seconds("CONSUMER_RETRY_MAX_DELAY", default.max_delay),
    )


@asynccontextmanager
async def running(
    blueprint: Blueprint, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Running]:
    """The service started and SERVING; stopped in order on exit (tests use it in-process)."""
    consumes = consumer_patterns(blueprint.name)
    settings = Settings.from_env(
        blueprint.name,
        grpc_port=blueprint.grpc_port,
        upstreams=blueprint.upstreams,
        environ=environ,
    )
    env = Env(environ)
    retry = consumer_retry(env, blueprint.retry)
    configure_logging(settings.service_name, settings.log_level)
    telemetry = setup_telemetry(
        settings.service_name, environ=environ, metrics_port=settings.metrics_port
    )
    assert settings.broker_url is not None  # Settings.from_env requires it (needs_broker)
    engine = create_engine(settings.database_url)
    broker = Broker(
        settings.broker_url,
        source=f"/shop/{blueprint.name}",
        name=settings.service_name,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    metadata = blueprint.metadata
    outbox_rows = metadata.tables.get("outbox")
    if outbox_rows is None:
        outbox_rows = outbox_table(metadata)
    inbox_rows = metadata.tables.get("inbox")
    if inbox_rows is None:
        inbox_rows = inbox_table(metadata)
    relay = OutboxRelay(engine, broker, outbox_rows, poll_interval=0.5)
    context = Context(
        settings=settings,
        engine=engine,
        broker=broker,
        outbox=Outbox(outbox_rows, broker),
        relay=relay,
        inbox=Inbox(inbox_rows, consumer=blueprint.name),
        telemetry=telemetry,
        env=env,
    )
    wiring = await blueprint.wire(context)

    server = ServiceServer.from_settings(settings, interceptors=telemetry.server_interceptors())
    for service in wiring.services:
        server.add_service(*service)
    background: list[asyncio.Task[None]] = []
    # Run after in-flight RPCs drained, in this order (see the module docstring for why).
    server.on_shutdown("background tasks", partial(_cancel, background))
    server.on_shutdown("consumers", broker.stop_consuming)
    server.on_shutdown("outbox", relay.stop)
    for name, closer in wiring.closers:
        server.on_shutdown(name, closer)
    server.on_shutdown("broker", broker.close)
    server.on_shutdown("database", engine.dispose)
    server.on_shutdown("telemetry", telemetry.shutdown)

    async with server:
        await create_schema(engine, metadata)
        await server.mark_ready("database")
        await broker.start()
        await relay.start()
        telemetry.watch_outbox(relay.backlog)
        if wiring.handler is not None and consumes:
            await broker.subscribe(
                blueprint.name,
                consumes,
                wiring.handler,
                retry=retry,
                concurrency=blueprint.concurrency,
                prefetch=max(32, blueprint.concurrency),
            )
        await server.mark_ready("broker")
        for name, task in wiring.tasks:
            background.append(asyncio.create_task(task(), name=f"{blueprint.name} {name}"))
        _log.info(
            "service.ready",
            service=settings.service_name,
            port=server.port,
            consumes=list(consumes),
        )
        yield Running(context=context, server=server)
