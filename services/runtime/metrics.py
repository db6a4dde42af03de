"""Prometheus metrics: the ``/metrics`` endpoint and the instruments the runtime records.

Every instrument is an OpenTelemetry one, recorded on the process's ``MeterProvider`` and read
by a ``PrometheusMetricReader`` into the process's own registry, which :class:`MetricsEndpoint`
serves in the Prometheus text format (ADOT's Prometheus receiver scrapes it). OpenTelemetry
names become Prometheus names by the exporter's rules: dots become underscores, the unit is
appended (``_seconds``) and counters end in ``_total``.

================================================  =========================================
Prometheus name                                   labels
================================================  =========================================
``rpc_server_duration_seconds`` (histogram)       ``rpc_service``, ``rpc_method``,
                                                  ``rpc_grpc_status_code`` (``OK``, ...)
``http_server_request_duration_seconds`` (hist.)  ``http_request_method``, ``http_route``,
                                                  ``http_response_status_code``
``messaging_client_sent_messages_total``          ``messaging_destination_name`` (event type)
``messaging_client_consumed_messages_total``      event type, ``messaging_consumer_group_name``
``shopmq_messages_retried_total``                 event type
``shopmq_messages_dead_lettered_total``           event type
``messaging_process_duration_seconds`` (hist.)    handler duration by event type and group
``messaging_client_operation_duration_seconds``   publish until confirmed, by event type
``shopmq_outbox_backlog``                         rows waiting in the outbox, by ``outbox``
``shopmq_outbox_oldest_age_seconds``              age of the oldest waiting row, by ``outbox``
================================================  =========================================

The broker records the ``messaging_*`` and ``shopmq_messages_*`` instruments itself when it is
given the process's meter provider (``Broker(..., meter_provider=telemetry.meter_provider)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, cast

from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client import start_http_server

from services.runtime.interceptors import RpcCall, RpcInterceptor, final_code
from services.runtime.logging import get_logger

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable, Callable, Iterable, MutableMapping
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.metrics import Meter
    from prometheus_client import CollectorRegistry

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
    BacklogProbe = Callable[[], Awaitable[tuple[int, float | None]]]

__all__ = [
    "MetricsEndpoint",
    "OutboxMonitor",
    "RpcMetricsInterceptor",
]

_log = get_logger("services.runtime.metrics")


class RpcMetricsInterceptor(RpcInterceptor):
    """Records ``rpc.server.duration`` (seconds) by service, method and final status code.

    Installed in :class:`~services.runtime.server.ServiceServer`'s extra-interceptor slot,
    outside the error interceptor, so the status is the one the client receives.
    """

    def __init__(self, meter: Meter) -> None:
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="s", description="gRPC server call duration"
        )

    async def around(self, call: RpcCall, proceed: Callable[[], Awaitable[Any]]) -> Any:
        if call.rpc.probe:  # health checks and reflection
            return await proceed()
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            return await proceed()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._duration.record(
                time.perf_counter() - started,
                {
                    "rpc.system": "grpc",
                    "rpc.service": call.service,
                    "rpc.method": call.name,
                    "rpc.grpc.status_code": final_code(call, failure).name,
                },
            )


class OutboxMonitor:
    """Outbox backlog and oldest-row age as observable gauges.

    Gauge callbacks run synchronously (at scrape time, in the endpoint's thread) while
    ``OutboxRelay.backlog()`` is a database query on the event loop, so a small task polls it
    every ``interval`` seconds and the callbacks read the cached values.
    """

    def __init__(self, meter: Meter, *, interval: float = 5.0) -> None:
        self._interval = interval
        self._probes: dict[str, BacklogProbe] = {}
        self._values: dict[str, tuple[int, float]] = {}
        self._task: asyncio.Task[None] | None = None
        meter.create_observable_gauge(
            "shopmq.outbox.backlog",
            callbacks=[self._observe_backlog],
            unit="{row}",
            description="Outbox rows waiting to be published",
        )
        meter.create_observable_gauge(
            "shopmq.outbox.oldest_age",
            callbacks=[self._observe_age],
            unit="s",
            description="Age of the oldest outbox row waiting to be published",
        )

    def watch(self, name: str, backlog: BacklogProbe) -> None:
        """Poll ``backlog`` (e.g. ``relay.backlog``) under the label ``outbox=name``; starts
        the polling task on first use (call from the running event loop)."""
        self._probes[name] = backlog
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-metrics")

    async def refresh(self) -> None:
        """Query every watched outbox now (the task does this every ``interval``)."""
        for name, probe in list(self._probes.items()):
            try:
                count, age = await probe()
            except Exception:  # noqa: BLE001 -- a failed probe keeps the last values
                _log.warning("metrics.outbox_probe_failed", outbox=name, exc_info=True)
                continue
            self._values[name] = (count, age or 0.0)

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        """Stop polling; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _observe_backlog(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {"outbox": n}) for n, (count, _) in self._values.items()]

    def _observe_age(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(age, {"outbox": n}) for n, (_, age) in self._values.items()]


class MetricsEndpoint:
    """``GET /metrics`` in the Prometheus text format, served from a daemon thread.

    A thread (prometheus_client's own server) rather than the event loop: a scrape still gets
    an answer while the loop is busy or blocked, which is when the numbers matter most.
    """

    def __init__(self, registry: CollectorRegistry, *, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 -- scraped from other hosts
        self._registry = registry
        self._host = host
        self._requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        """The bound port once started (``port=0`` picks a free one)."""
        return None if self._server is None else int(self._server.server_port)

    def start(self) -> int:
        """Bind and start serving; return the bound port."""
        if self._server is None:
            self._server, self._thread = start_http_server(
                self._requested_port, addr=self._host, registry=self._registry
            )
            _log.info("metrics.serving", port=self.port)
        return cast("int", self.port)

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
