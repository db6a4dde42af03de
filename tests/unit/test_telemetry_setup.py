"""setup_telemetry: configuration from OTEL_* variables, off when unconfigured, X-Ray ids,
propagators, and log lines correlated with the current span."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import TYPE_CHECKING

import pytest
import structlog
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision

from services.runtime import configure_logging, get_logger
from services.runtime._xray import xray_trace_id
from services.runtime.errors import ConfigError
from services.runtime.telemetry import TelemetryConfig, setup_telemetry

if TYPE_CHECKING:
    from collections.abc import Iterator

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _restore_propagator() -> Iterator[None]:
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("telemetry-test", "debug", stream=stream)
    yield stream
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "services.runtime"]:
        root.removeHandler(handler)


async def test_defaults_resource_sampler_and_no_exporter_without_endpoint():
    """Unconfigured: SDK spans with ids (for logs) but no exporter; parent-based ratio 1.0."""
    telemetry = setup_telemetry("orders", environ={}, set_global=False)
    try:
        provider = telemetry.tracer_provider
        assert isinstance(provider, TracerProvider)
        assert not telemetry.config.exporting
        assert provider._active_span_processor._span_processors == ()
        attributes = provider.resource.attributes
        assert attributes["service.name"] == "orders"
        assert attributes["service.version"]
        assert "deployment.environment" not in attributes
        assert provider.sampler.get_description().startswith("ParentBased{root:TraceIdRatioBased")
        with telemetry.tracer("t").start_as_current_span("work") as span:
            assert span.get_span_context().is_valid
        assert telemetry.metrics_port is None
        # Prometheus text carries no exemplars, so none are sampled.
        exemplars = telemetry.meter_provider._sdk_config.exemplar_filter  # type: ignore[attr-defined]
        assert isinstance(exemplars, AlwaysOffExemplarFilter)
    finally:
        await telemetry.shutdown()


async def test_names_version_environment_and_resource_attributes_from_env():
    """OTEL_SERVICE_NAME beats SERVICE_NAME; version, environment and extra attributes apply."""
    environ = {
        "SERVICE_NAME": "ignored",
        "OTEL_SERVICE_NAME": "orders-blue",
        "SERVICE_VERSION": "1.2.3",
        "DEPLOYMENT_ENVIRONMENT": "staging",
        "OTEL_RESOURCE_ATTRIBUTES": "team=shop,cloud.region=eu-west-1",
    }
    telemetry = setup_telemetry("orders", environ=environ, set_global=False)
    try:
        attributes = telemetry.tracer_provider.resource.attributes  # type: ignore[attr-defined]
        assert attributes["service.name"] == "orders-blue"
        assert attributes["service.version"] == "1.2.3"
        assert attributes["deployment.environment"] == "staging"
        assert attributes["team"] == "shop"
        assert attributes["cloud.region"] == "eu-west-1"
    finally:
        await telemetry.shutdown()


async def test_sdk_disabled_still_propagates_incoming_context(log_stream):
    """OTEL_SDK_DISABLED=true: no-op tracer, yet an incoming trace id reaches logs and headers."""
    telemetry = setup_telemetry("orders", environ={"OTEL_SDK_DISABLED": "true"}, set_global=False)
    try:
        assert not isinstance(telemetry.tracer_provider, TracerProvider)
        parent = propagate.extract({"traceparent": TRACEPARENT})
        with telemetry.tracer("t").start_as_current_span("work", context=parent):
            get_logger("t").info("inside")
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        assert carrier["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
        line = json.loads(log_stream.getvalue().splitlines()[-1])
        assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    finally:
        await telemetry.shutdown()


@pytest.mark.parametrize(
    ("environ", "exporting"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_SDK_DISABLED": "true"},
            False,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                "OTEL_TRACES_EXPORTER": "none",
            },
            False,
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({}, False),
    ],
)
def test_exporting_follows_endpoint_exporter_and_disabled(environ, exporting):
    """Spans leave the process only with an endpoint (or console) and the SDK enabled."""
    assert TelemetryConfig.from_env("orders", environ).exporting is exporting


def test_plain_http_endpoint_means_insecure_and_headers_parse():
    """http:// endpoints export without TLS; OTLP headers are k=v pairs, URL-decoded."""
    config = TelemetryConfig.from_env(
        "orders",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://adot:4317",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=a%20b,tenant=t1",
        },
    )
    assert config.insecure
    assert config.headers == {"x-api-key": "a b", "tenant": "t1"}
    assert not TelemetryConfig.from_env(
        "orders", {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://adot:4317"}
    ).insecure


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_PROPAGATORS": "tracecontext,nonesuch"}, "OTEL_PROPAGATORS"),
        ({"OTEL_SDK_DISABLED": "yes"}, "OTEL_SDK_DISABLED"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"METRICS_PORT": "http"}, "METRICS_PORT"),
    ],
)
def test_bad_values_are_one_line_config_errors(environ, variable):
    """A bad OTEL_* value fails start-up with a ConfigError naming the variable."""
    with pytest.raises(ConfigError) as info:
        TelemetryConfig.from_env("orders", environ)
    assert variable in str(info.value)
    assert "\n" not in str(info.value)


async def test_sampler_ratio_from_env_keeps_parent_decision():
    """traceidratio 0 drops new roots; parent-based keeps a sampled parent's decision."""
    telemetry = setup_telemetry(
        "orders",
        environ={"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
        set_global=False,
    )
    try:
        sampler = telemetry.tracer_provider.sampler  # type: ignore[attr-defined]
        root = sampler.should_sample(None, 0x1234, "root")
        assert root.decision is Decision.DROP
        parent = propagate.extract({"traceparent": TRACEPARENT})
        child = sampler.should_sample(parent, 0x4BF92F3577B34DA6A3CE929D0E0E4736, "child")
        assert child.decision is Decision.RECORD_AND_SAMPLE
    finally:
        await telemetry.shutdown()


async def test_default_propagators_inject_w3c_baggage_and_xray():
    """The global propagator is tracecontext,baggage,xray: all three headers are injected."""
    telemetry = setup_telemetry("orders", environ={}, set_global=False)
    try:
        with telemetry.tracer("t").start_as_current_span("work") as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        context = span.get_span_context()
        flags = f"{int(context.trace_flags):02x}"  # sampled, and W3C level 2's random bit
        assert (
            carrier["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"
        )
        root = xray_trace_id(context.trace_id)
        assert carrier["X-Amzn-Trace-Id"] == f"Root={root};Parent={context.span_id:016x};Sampled=1"
    finally:
        await telemetry.shutdown()


async def test_xray_header_alone_continues_the_trace():
    """A request carrying only X-Amzn-Trace-Id is continued under the X-Ray trace id."""
    telemetry = setup_telemetry("orders", environ={}, set_global=False)
    try:
        header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        parent = propagate.extract({"X-Amzn-Trace-Id": header})
        with telemetry.tracer("t").start_as_current_span("work", context=parent) as span:
            pass
        assert f"{span.get_span_context().trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
        assert span.parent is not None
        assert span.parent.span_id == 0x53995C3F42CD8AD8
    finally:
        await telemetry.shutdown()


async def test_propagators_override_and_none():
    """OTEL_PROPAGATORS=tracecontext drops xray; none injects nothing."""
    telemetry = setup_telemetry(
        "orders", environ={"OTEL_PROPAGATORS": "tracecontext"}, set_global=False
    )
    try:
        with telemetry.tracer("t").start_as_current_span("work"):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        assert set(carrier) == {"traceparent"}
    finally:
        await telemetry.shutdown()
    silent = setup_telemetry("orders", environ={"OTEL_PROPAGATORS": "none"}, set_global=False)
    try:
        with silent.tracer("t").start_as_current_span("work"):
            carrier = {}
            propagate.inject(carrier)
        assert carrier == {}
    finally:
        await silent.shutdown()


@pytest.mark.parametrize(
    "environ",
    [{"OTEL_AWS_XRAY_ID_GENERATOR": "true"}, {"OTEL_PYTHON_ID_GENERATOR": "xray"}],
)
async def test_xray_id_generator_puts_epoch_seconds_first(environ):
    """With the X-Ray id generator, a trace id's first 8 hex digits are the current time."""
    telemetry = setup_telemetry("orders", environ=environ, set_global=False)
    try:
        with telemetry.tracer("t").start_as_current_span("work") as span:
            pass
        seconds = int(f"{span.get_span_context().trace_id:032x}"[:8], 16)
        assert abs(seconds - time.time()) < 5
    finally:
        await telemetry.shutdown()


async def test_span_exporter_override_receives_spans_and_shutdown_flushes():
    """A given exporter gets the spans through the batch processor; shutdown flushes them."""
    exporter = InMemorySpanExporter()
    telemetry = setup_telemetry(
        "orders",
        environ={"OTEL_BSP_SCHEDULE_DELAY": "60000"},
        span_exporter=exporter,
        set_global=False,
    )
    with telemetry.tracer("t").start_as_current_span("work"):
        pass
    assert exporter.get_finished_spans() == ()  # still queued: the delay is a minute
    await telemetry.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["work"]
    await telemetry.shutdown()  # idempotent


def test_log_lines_carry_trace_span_and_xray_ids(log_stream):
    """Inside a span every line has trace_id, span_id and xray_trace_id; outside, none."""
    provider = TracerProvider()
    log = get_logger("t")
    log.info("before")
    with provider.get_tracer("t").start_as_current_span("work") as span:
        log.info("inside", order_id="o-1")
        logging.getLogger("stdlib.lib").warning("foreign %s", "line")
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    context = span.get_span_context()
    assert "trace_id" not in lines[0]
    for line in lines[1:]:
        assert line["trace_id"] == f"{context.trace_id:032x}"
        assert line["span_id"] == f"{context.span_id:016x}"
        assert line["xray_trace_id"] == xray_trace_id(context.trace_id)
        assert line["service"] == "telemetry-test"
    assert lines[2]["event"] == "foreign line"


def test_xray_trace_id_form():
    """The X-Ray form is 1-<8 hex>-<24 hex> of the same 128-bit id."""
    assert (
        xray_trace_id(0x5759E988BD862E3FE1BE46A994272793) == "1-5759e988-bd862e3fe1be46a994272793"
    )
    assert xray_trace_id(1) == "1-00000000-000000000000000000000001"


def test_no_global_provider_is_installed_without_set_global():
    """set_global=False leaves the process's global tracer provider alone."""
    before = trace.get_tracer_provider()
    setup_telemetry("orders", environ={}, set_global=False)
    assert trace.get_tracer_provider() is before
