"""The runtime's log lines: fields every line carries, bound fields, reconfiguration."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from services.runtime import configure_logging, get_logger, log_fields

if TYPE_CHECKING:
    from collections.abc import Iterator

_log = get_logger("tests.logging")  # made before any configuration, as module loggers are


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "services.runtime"]:
        root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_carries_time_level_service_logger_and_the_trace():
    stream = io.StringIO()
    configure_logging("orders", "info", stream=stream)
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        _log.info("order.placed", order_id="o-1", amount=12.5)
    (line,) = lines(stream)
    context = span.get_span_context()
    digits = f"{context.trace_id:032x}"
    assert line["event"] == "order.placed"
    assert line["order_id"] == "o-1"
    assert line["amount"] == 12.5
    assert line["level"] == "info"
    assert line["logger"] == "tests.logging"
    assert line["service"] == "orders"
    assert line["trace_id"] == digits
    assert line["span_id"] == f"{context.span_id:016x}"
    assert line["xray_trace_id"] == f"1-{digits[:8]}-{digits[8:]}"
    assert line["timestamp"].endswith("Z")
    stamped = datetime.fromisoformat(line["timestamp"])
    assert stamped.tzinfo is not None
    assert abs((datetime.now(UTC) - stamped).total_seconds()) < 60


def test_log_fields_nest_and_end_with_their_block():
    stream = io.StringIO()
    configure_logging("orders", "info", stream=stream)
    with log_fields(request_id="r-1", tenant="a"):
        with log_fields(**{"rpc.method": "GetOrder", "tenant": "b"}):
            _log.info("inner")
        _log.info("outer")
    _log.info("after")
    inner, outer, after = lines(stream)
    assert (inner["request_id"], inner["rpc.method"], inner["tenant"]) == ("r-1", "GetOrder", "b")
    assert (outer["request_id"], outer["tenant"]) == ("r-1", "a")
    assert "rpc.method" not in outer
    assert "request_id" not in after
    # A key the call passes itself wins over a bound one.
    with log_fields(tenant="bound"):
        _log.info("explicit", tenant="given")
    assert lines(stream)[-1]["tenant"] == "given"


def test_structlog_contextvars_still_reach_the_line():
    stream = io.StringIO()
    configure_logging("orders", "info", stream=stream)
    with structlog.contextvars.bound_contextvars(job="sweep"):
        _log.info("swept")
    assert lines(stream)[0]["job"] == "sweep"


def test_configuring_again_reaches_loggers_made_earlier():
    first, second = io.StringIO(), io.StringIO()
    configure_logging("orders", "info", stream=first)
    _log.info("one")
    configure_logging("orders", "warning", stream=second)
    _log.info("filtered out at warning")
    _log.warning("two")
    assert [line["event"] for line in lines(first)] == ["one"]
    assert [line["event"] for line in lines(second)] == ["two"]


def test_capture_logs_sees_what_a_configured_logger_logs():
    configure_logging("orders", "info", stream=io.StringIO())
    _log.info("before")
    with structlog.testing.capture_logs() as captured:
        _log.info("captured", order_id="o-2")
    assert [entry["event"] for entry in captured] == ["captured"]


def test_without_a_stream_lines_go_to_whatever_stdout_is(capsys: pytest.CaptureFixture[str]):
    configure_logging("orders", "info")
    _log.info("to stdout")
    assert json.loads(capsys.readouterr().out)["event"] == "to stdout"


def test_values_orjson_refuses_still_make_a_line():
    stream = io.StringIO()
    configure_logging("orders", "info", stream=stream)
    _log.info("huge", value=2**70, other={1: "x"}, when=datetime(2026, 1, 2, tzinfo=UTC))
    (line,) = lines(stream)
    assert line["value"] == 2**70
    assert line["other"] == {"1": "x"}
    assert line["when"] == "2026-01-02T00:00:00Z"
    assert line["timestamp"].endswith("Z")
