"""Interoperability on ActiveMQ: an event our Broker publishes over STOMP is read by an
independent client (stomp.py) and decoded with nothing but the schemas/ .avsc files."""

from __future__ import annotations

import io
import json
import queue
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest
import stomp
from fastavro.schema import fingerprint, to_parsing_canonical_form

from broker import Broker
from tests.support.names import unique_hex

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ORDER_PLACED = "shop.orders.v1.OrderPlaced"


def _schemas_by_fingerprint() -> dict[bytes, dict]:
    """What an outside consumer does: parse every .avsc and index it by its fingerprint."""
    known = {}
    for path in SCHEMAS.rglob("*.avsc"):
        parsed = fastavro.parse_schema(json.loads(path.read_text()))
        known[bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))] = parsed
    return known


class _Listener(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.frames: queue.Queue = queue.Queue()
        self.receipts: queue.Queue = queue.Queue()

    def on_message(self, frame) -> None:
        self.frames.put(frame)

    def on_receipt(self, frame) -> None:
        self.receipts.put(frame.headers["receipt-id"])


@pytest.mark.parametrize(
    "destination",
    [
        pytest.param("/queue/Consumer.{group}.VirtualTopic." + ORDER_PLACED, id="consumer-queue"),
        pytest.param("/topic/VirtualTopic." + ORDER_PLACED, id="topic"),
    ],
)
async def test_stomp_py_reads_and_decodes_our_event_with_only_the_schema_files(destination):
    """Subscribed to its own Consumer.<group>.VirtualTopic queue or to the virtual topic itself,
    stomp.py receives the event with its CloudEvents headers; the body decodes with fastavro
    from schemas/ alone."""
    group = f"outsider{unique_hex()}"
    connection = stomp.Connection12([("127.0.0.1", 61613)], auto_decode=False)
    listener = _Listener()
    connection.set_listener("interop", listener)
    connection.connect(wait=True)
    try:
        connection.subscribe(
            destination.format(group=group), id="1", ack="auto", headers={"receipt": "sub-1"}
        )
        # Subscribed once ActiveMQ confirms: an earlier publish would find no queue/subscriber.
        assert listener.receipts.get(timeout=10) == "sub-1"
        data = {
            "order_id": "o-42",
            "customer_id": "c-7",
            "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price_minor": 1250}],
            "total_minor": 2500,
            "currency": "EUR",
            "payment_method_id": "pm_card",
            "placed_at": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
            "channel": "WEB",
            "promo_code": None,
        }
        async with Broker("stomp://127.0.0.1:61613", source="//shop/orders", name="interop") as b:
            sent = await b.publish(ORDER_PLACED, data, subject="o-42")
        frame = listener.frames.get(timeout=10)
    finally:
        connection.disconnect()

    headers = frame.headers
    assert headers["cloudEvents_id"] == sent.id
    assert headers["cloudEvents_type"] == ORDER_PLACED
    assert headers["cloudEvents_subject"] == "o-42"
    assert headers["cloudEvents_specversion"] == "1.0"
    assert headers["content-type"] == "application/avro"
    body: bytes = frame.body
    assert body[:2] == b"\xc3\x01"
    writer = _schemas_by_fingerprint()[body[2:10]]
    record = fastavro.schemaless_reader(io.BytesIO(body[10:]), writer)
    assert record == data
