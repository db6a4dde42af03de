"""OpenTelemetry for one process: traces to an ADOT collector, metrics on ``/metrics``.

:func:`setup_telemetry` reads the standard ``OTEL_*`` variables once and returns a
:class:`Telemetry` holding the tracer and meter providers, the gRPC interceptors, the ASGI
wrapper and the ``/metrics`` endpoint; ``await telemetry.shutdown()`` flushes the spans still
queued, so register it as the *last* shutdown hook.

=======================================  ===================================================
variable                                 meaning (default)
=======================================  ===================================================
``OTEL_SERVICE_NAME``                    ``service.name`` (``SERVICE_NAME``, else the name
                                         the process passes)
``OTEL_RESOURCE_ATTRIBUTES``             more resource attributes, ``k=v,k2=v2``
``SERVICE_VERSION``                      ``service.version`` (the shopmq package version)
``DEPLOYMENT_ENVIRONMENT``               ``deployment.environment`` (unset: not added)
``OTEL_SDK_DISABLED``                    ``true``: no tracing SDK at all; trace context is
                                         still propagated and logged (``false``)
``OTEL_TRACES_EXPORTER``                 ``otlp``, ``console`` or ``none`` (``otlp``)
``OTEL_EXPORTER_OTLP_ENDPOINT``          the collector, e.g. ``http://adot:4317``; unset:
                                         spans are made (ids for logs) but not exported
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``   overrides the endpoint for traces
``OTEL_EXPORTER_OTLP_PROTOCOL``          only ``grpc`` is supported (``grpc``)
``OTEL_EXPORTER_OTLP_INSECURE``          plaintext gRPC (``true`` for ``http://``)
``OTEL_EXPORTER_OTLP_HEADERS``           ``k=v,...`` sent with every export
``OTEL_BSP_SCHEDULE_DELAY``              batch export delay, ms (``5000``)
``OTEL_TRACES_SAMPLER``                  ``parentbased_traceidratio`` (default), and the
                                         other standard names but ``xray``
``OTEL_TRACES_SAMPLER_ARG``              the ratio (``1.0``)
``OTEL_PROPAGATORS``                     ``tracecontext,baggage,xray``; ``none`` for none
``OTEL_AWS_XRAY_ID_GENERATOR``           ``true``: X-Ray ids (epoch seconds first); also
                                         ``OTEL_PYTHON_ID_GENERATOR=xray`` (``false``)
``METRICS_PORT``                         ``/metrics`` port; unset: no endpoint
=======================================  ===================================================

The propagator is installed as the *global* one whatever the other settings: the broker's
PRODUCER/CONSUMER spans, the gRPC interceptors and the HTTP layer all use it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote

from opentelemetry import metrics, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource, get_aggregated_resources
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry

from services.runtime._asgi import HttpServerTelemetry
from services.runtime._grpc_client_tracing import traced_channel
from services.runtime._grpc_tracing import RpcTracingInterceptor
from services.runtime.errors import ConfigError
from services.runtime.logging import get_logger
from services.runtime.metrics import MetricsEndpoint, OutboxMonitor, RpcMetricsInterceptor
from services.runtime.settings import Env

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence
    from types import TracebackType

    import grpc
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    from services.runtime.metrics import ASGIApp, BacklogProbe, Scope

__all__ = ["Telemetry", "TelemetryConfig", "setup_telemetry"]

_log = get_logger("services.runtime.telemetry")

_DEFAULT_PROPAGATORS = ("tracecontext", "baggage", "xray")
_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_EKS_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Bucket bounds of every duration histogram (unit ``s``); the SDK default suits ms."""
_UNTRACED_PATHS = ("/healthz", "/readyz", "/livez", "/metrics")
"""Probe and scrape paths: no spans (they would be most of the traces and say nothing)."""


@dataclass(frozen=True, kw_only=True)
class TelemetryConfig:
    """What :func:`setup_telemetry` reads from the environment, checked."""

    service_name: str
    service_version: str
    environment: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sdk_disabled: bool = False
    traces_exporter: str = "otlp"
    endpoint: str | None = None
    insecure: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    schedule_delay_ms: int | None = None
    sampler: str = "parentbased_traceidratio"
    sampler_ratio: float = 1.0
    propagators: tuple[str, ...] = _DEFAULT_PROPAGATORS
    xray_ids: bool = False
    metrics_port: int | None = None
    aws_ecs: bool = False
    aws_eks: bool = False

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> TelemetryConfig:
        """The configuration for ``service`` from ``environ`` (default ``os.environ``)."""
        source = os.environ if environ is None else environ
        env = Env(source)
        endpoint = env.raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.raw(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        protocol = env.raw("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.raw(
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        )
        if protocol is not None and protocol.lower() != "grpc":
            raise ConfigError("OTEL_EXPORTER_OTLP_PROTOCOL", f"{protocol!r} is not grpc")
        insecure_default = endpoint is not None and endpoint.startswith("http://")
        ratio_text = env.raw("OTEL_TRACES_SAMPLER_ARG")
        return cls(
            service_name=env.raw("OTEL_SERVICE_NAME") or env.string("SERVICE_NAME", service),
            service_version=env.raw("SERVICE_VERSION") or _package_version(),
            environment=env.raw("DEPLOYMENT_ENVIRONMENT"),
            resource_attributes=_pairs(env, "OTEL_RESOURCE_ATTRIBUTES"),
            sdk_disabled=_flag(env, "OTEL_SDK_DISABLED"),
            traces_exporter=env.choice("OTEL_TRACES_EXPORTER", ("otlp", "console", "none"), "otlp"),
            endpoint=endpoint,
            insecure=_flag(env, "OTEL_EXPORTER_OTLP_INSECURE", default=insecure_default),
            headers=_pairs(env, "OTEL_EXPORTER_OTLP_HEADERS"),
            schedule_delay_ms=env.optional_int("OTEL_BSP_SCHEDULE_DELAY", low=1, high=3_600_000),
            sampler=env.choice("OTEL_TRACES_SAMPLER", _SAMPLERS, "parentbased_traceidratio"),
            sampler_ratio=1.0 if ratio_text is None else _ratio(ratio_text),
            propagators=_propagator_names(env),
            xray_ids=_flag(env, "OTEL_AWS_XRAY_ID_GENERATOR")
            or (env.raw("OTEL_PYTHON_ID_GENERATOR") or "").lower() == "xray",
            metrics_port=env.optional_int("METRICS_PORT", low=0, high=65535),
            aws_ecs=bool(
                env.raw("ECS_CONTAINER_METADATA_URI_V4") or env.raw("ECS_CONTAINER_METADATA_URI")
            ),
            aws_eks=bool(env.raw("KUBERNETES_SERVICE_HOST")) and _EKS_TOKEN.exists(),
        )

    @property
    def exporting(self) -> bool:
        """Whether spans leave the process."""
        if self.sdk_disabled or self.traces_exporter == "none":
            return False
        return self.traces_exporter == "console" or self.endpoint is not None


def _flag(env: Env, name: str, *, default: bool = False) -> bool:
    value = env.raw(name)
    if value is None:
        return default
    if value.lower() not in {"true", "false"}:
        raise ConfigError(name, f"{value!r} is not true or false")
    return value.lower() == "true"


def _pairs(env: Env, name: str) -> dict[str, str]:
    text = env.raw(name) or ""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(name, f"{item!r} is not key=value")
        pairs[unquote(key.strip())] = unquote(value.strip())
    return pairs


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError("OTEL_TRACES_SAMPLER_ARG", f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError("OTEL_TRACES_SAMPLER_ARG", f"{value} is outside 0..1")
    return value


def _propagator_names(env: Env) -> tuple[str, ...]:
    text = env.raw("OTEL_PROPAGATORS")
    if text is None:
        return _DEFAULT_PROPAGATORS
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    if names == ("none",):
        return ()
    for name in names:
        if name not in {"tracecontext", "baggage", "xray"} and not _entry_points(name):
            raise ConfigError("OTEL_PROPAGATORS", f"{name!r} is not an installed propagator")
    return names


def _entry_points(name: str) -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group="opentelemetry_propagator", name=name))


def _package_version() -> str:
    try:
        return importlib.metadata.version("shopmq")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def build_propagator(names: Sequence[str]) -> TextMapPropagator:
    """A composite propagator of ``names`` (``tracecontext``, ``baggage``, ``xray``, or any
    installed ``opentelemetry_propagator`` entry point)."""
    built: list[TextMapPropagator] = []
    for name in names:
        if name == "tracecontext":
            built.append(TraceContextTextMapPropagator())
        elif name == "baggage":
            built.append(W3CBaggagePropagator())
        elif name == "xray":
            built.append(AwsXRayPropagator())
        else:
            (entry,) = _entry_points(name)
            built.append(entry.load()())
    return CompositePropagator(built)


def build_sampler(config: TelemetryConfig) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER``/``_ARG`` name (parent-based ratio by default)."""
    ratio = TraceIdRatioBased(config.sampler_ratio)
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(ratio),
    }
    return samplers[config.sampler]


def build_resource(config: TelemetryConfig) -> Resource:
    """``service.*``, ``deployment.environment``, ``OTEL_RESOURCE_ATTRIBUTES`` and, when
    running there, what the AWS ECS/EKS detectors find."""
    attributes: dict[str, Any] = dict(config.resource_attributes)
    attributes["service.name"] = config.service_name
    attributes["service.version"] = config.service_version
    if config.environment is not None:
        attributes["deployment.environment"] = config.environment
    resource = Resource.create(attributes)
    detectors: list[Any] = []
    if config.aws_ecs:
        from opentelemetry.sdk.extension.aws.resource.ecs import (  # noqa: PLC0415
            AwsEcsResourceDetector,
        )

        detectors.append(AwsEcsResourceDetector())
    if config.aws_eks:
        from opentelemetry.sdk.extension.aws.resource.eks import (  # noqa: PLC0415
            AwsEksResourceDetector,
        )

        detectors.append(AwsEksResourceDetector())
    if not detectors:
        return resource
    return get_aggregated_resources(detectors, initial_resource=resource, timeout=5)


def _id_generator(config: TelemetryConfig) -> IdGenerator | None:
    if not config.xray_ids:
        return None
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator  # noqa: PLC0415

    generator: IdGenerator = AwsXRayIdGenerator()
    return generator


def _exporter(config: TelemetryConfig) -> SpanExporter | None:
    if not config.exporting:
        return None
    if config.traces_exporter == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    exporter: SpanExporter = OTLPSpanExporter(
        endpoint=config.endpoint, insecure=config.insecure, headers=dict(config.headers) or None
    )
    return exporter


class Telemetry:
    """The process's tracer and meter providers and what plugs them into servers and clients.

    Built by :func:`setup_telemetry`; the attributes are meant to be passed on:
    ``Broker(..., tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)``,
    ``ServiceServer(..., interceptors=t.server_interceptors())``,
    ``t.trace_channel(upstream_channel(address))``,
    ``t.instrument_asgi(app)``, ``t.watch_outbox(relay.backlog)``.
    """

    def __init__(
        self,
        config: TelemetryConfig,
        *,
        tracer_provider: trace.TracerProvider,
        meter_provider: MeterProvider,
        registry: CollectorRegistry,
        endpoint: MetricsEndpoint | None,
    ) -> None:
        self.config = config
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.registry = registry
        self._endpoint = endpoint
        self._meter = meter_provider.get_meter("services.runtime")
        self._outboxes: OutboxMonitor | None = None
        self._server_interceptors: list[grpc.aio.ServerInterceptor[Any, Any]] | None = None
        self._shutdown: asyncio.Future[None] | None = None

    @property
    def metrics_port(self) -> int | None:
        """The bound ``/metrics`` port, or None when there is no endpoint."""
        return None if self._endpoint is None else self._endpoint.port

    def tracer(self, name: str) -> trace.Tracer:
        """A tracer for a module's own spans (use its ``__name__``)."""
        return self.tracer_provider.get_tracer(name)

    def server_interceptors(self) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
        """SERVER spans (health and reflection excluded) and the RPC duration histogram, for
        the extra-interceptor slot of :class:`~services.runtime.server.ServiceServer`."""
        if self._server_interceptors is None:
            self._server_interceptors = [
                RpcTracingInterceptor(self.tracer_provider),
                RpcMetricsInterceptor(self._meter),
            ]
        return list(self._server_interceptors)

    def trace_channel(self, channel: grpc.aio.Channel) -> grpc.aio.Channel:
        """``channel`` with a CLIENT span around every call (health checks and reflection
        excepted), its context injected into the call's metadata:
        ``stub = InventoryServiceStub(telemetry.trace_channel(upstream_channel(address)))``."""
        return traced_channel(channel, self.tracer_provider)

    def instrument_asgi(
        self,
        app: ASGIApp,
        *,
        route_of: Callable[[Scope], str | None] | None = None,
        untraced: Collection[str] = _UNTRACED_PATHS,
    ) -> ASGIApp:
        """Wrap an ASGI app: SERVER span per request continuing the client's ``traceparent`` or
        ``X-Amzn-Trace-Id``, the trace id in the response headers (``traceresponse``,
        ``X-Trace-Id``, ``X-Amzn-Trace-Id``), and the HTTP request histogram by route template
        (``route_of(scope)``, default Starlette's route) and status. ``untraced`` paths are
        counted but make no span."""
        return HttpServerTelemetry(
            app,
            tracer=self.tracer_provider.get_tracer("services.runtime.http"),
            meter=self._meter,
            route_of=route_of,
            untraced=untraced,
        )

    def watch_outbox(self, backlog: BacklogProbe, *, name: str = "outbox") -> None:
        """Export ``backlog()`` (``OutboxRelay.backlog``) as the outbox gauges, polled every
        few seconds by a task; call from the running event loop."""
        if self._outboxes is None:
            self._outboxes = OutboxMonitor(self._meter)
        self._outboxes.watch(name, backlog)

    async def refresh_outboxes(self) -> None:
        """Poll the watched outboxes now (tests; the task does it periodically)."""
        if self._outboxes is not None:
            await self._outboxes.refresh()

    async def shutdown(self) -> None:
        """Stop polling, flush queued spans to the collector and close the endpoint; safe to
        call twice. Register it as the last shutdown hook, after the broker closed."""
        if self._shutdown is not None:
            await asyncio.shield(self._shutdown)
            return
        self._shutdown = asyncio.get_running_loop().create_future()
        try:
            if self._outboxes is not None:
                await self._outboxes.close()
            # Both block on exports: run them off the loop.
            shutdown = getattr(self.tracer_provider, "shutdown", None)
            if shutdown is not None:
                await asyncio.to_thread(shutdown)
            await asyncio.to_thread(self.meter_provider.shutdown)
            if self._endpoint is not None:
                await asyncio.to_thread(self._endpoint.close)
            _log.info("telemetry.shut_down")
        finally:
            self._shutdown.set_result(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()


def setup_telemetry(
    service: str,
    *,
    environ: Mapping[str, str] | None = None,
    metrics_port: int | None = None,
    span_exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Configure OpenTelemetry for this process from ``OTEL_*`` variables (see the module).

    ``metrics_port`` overrides ``METRICS_PORT`` (0 picks a free port). ``span_exporter``
    replaces the configured exporter (tests and benchmarks). With ``set_global`` (the
    default) the providers also become the global ones, for code that calls
    ``trace.get_tracer``; the propagator is always made global.
    """
    config = TelemetryConfig.from_env(service, environ)
    propagate.set_global_textmap(build_propagator(config.propagators))
    resource = build_resource(config)

    tracer_provider: trace.TracerProvider
    if config.sdk_disabled and span_exporter is None:
        # The API's no-op tracer still carries an incoming context through, so propagation
        # and log correlation keep working; nothing is recorded.
        tracer_provider = trace.NoOpTracerProvider()
    else:
        sdk = TracerProvider(
            resource=resource,
            sampler=build_sampler(config),
            id_generator=_id_generator(config),
        )
        exporter = span_exporter or _exporter(config)
        if exporter is not None:
            sdk.add_span_processor(
                BatchSpanProcessor(exporter, schedule_delay_millis=config.schedule_delay_ms)
            )
        tracer_provider = sdk

    registry = CollectorRegistry(auto_describe=True)
    port = metrics_port if metrics_port is not None else config.metrics_port
    readers: list[Any] = []
    endpoint: MetricsEndpoint | None = None
    if port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415

        readers.append(
            PrometheusMetricReader(
                disable_target_info=True, scope_info_enabled=False, registry=registry
            )
        )
        endpoint = MetricsEndpoint(registry, port=port)
        endpoint.start()
    seconds = View(
        instrument_type=Histogram,
        instrument_unit="s",
        aggregation=ExplicitBucketHistogramAggregation(SECONDS_BUCKETS),
    )
    meter_provider = MeterProvider(
        metric_readers=readers,
        resource=resource,
        views=[seconds],
        # Prometheus text, the only way these metrics leave, carries no exemplars: sampling
        # them (the SDK's default for a measurement inside a sampled span) is a quarter of
        # each histogram record's cost for nothing.
        exemplar_filter=AlwaysOffExemplarFilter(),
    )

    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    _log.info(
        "telemetry.configured",
        exporting=config.exporting or span_exporter is not None,
        endpoint=config.endpoint,
        sampler=config.sampler,
        sampler_ratio=config.sampler_ratio,
        propagators=list(config.propagators),
        xray_ids=config.xray_ids,
        metrics_port=None if endpoint is None else endpoint.port,
    )
    return Telemetry(
        config,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        registry=registry,
        endpoint=endpoint,
    )
