"""How audit turns an event into a trail record."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.event import Event
from services.audit.domain import jsonable, record_of, trace_id_of

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_trace_id_comes_from_traceparent():
    """The trace id is the second field of a valid traceparent, else empty."""
    assert trace_id_of(f"00-{TRACE}-00f067aa0ba902b7-01") == TRACE
    assert trace_id_of("garbage") == ""
    assert trace_id_of(None) == ""


def test_payload_becomes_json():
    """Times become ISO strings, bytes base64, nested records and arrays are kept."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsonable({"a": [at], "b": b"\x00"}) == {"a": ["2026-01-02T03:04:05+00:00"], "b": "AA=="}


def test_record_keeps_the_cloudevents_attributes():
    """Id, type, source, subject and schema are copied from the event."""
    event = Event(
        type="shop.orders.v1.OrderConfirmed",
        data={"order_id": "o"},
        source="/shop/orders",
        subject="o",
        dataschema="urn:avro:x:v1",
        extensions={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
    )
    record = record_of(event)
    assert (record.event_id, record.subject, record.trace_id) == (event.id, "o", TRACE)
    assert record.data_schema == "urn:avro:x:v1"
