"""Publish and consume: bodies, CloudEvents attributes and headers arrive intact."""

from __future__ import annotations

import asyncio

import pytest

from broker import EncodeError, Event, PublishError, UnroutableError
from broker.transport import OutgoingMessage
from tests.conformance._support import BLOB, Inbox, eventually, ping


async def test_round_trip_keeps_body_attributes_and_headers(make_broker, namespace, uid):
    """An event arrives with its binary data, CloudEvents attributes and subject unchanged."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox)
    sent = await broker.publish(f"{namespace}.Ping", ping(1), subject="order-1")

    await eventually(lambda: len(inbox.events) == 1, what="one delivery")
    got = inbox.events[0]
    assert got.id == sent.id
    assert got.type == f"{namespace}.Ping"
    assert got.source == "//tests/conformance"
    assert got.subject == "order-1"
    assert got.time == sent.time
    assert got.dataschema == f"urn:avro:{namespace}.Ping:v1"
    assert got.datacontenttype == "application/avro"
    assert got.data == ping(1)
    assert got.data["blob"] == BLOB
    assert got.extensions["x-attempt"] == "1"


async def test_many_concurrent_publishes_all_confirmed_and_delivered(make_broker, namespace, uid):
    """Hundreds of publishes in flight at once are each confirmed and each delivered once."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox, prefetch=50)
    events = [broker.event(f"{namespace}.Ping", ping(n)) for n in range(300)]
    await broker.publish_many(events)

    await eventually(lambda: len(inbox.events) >= 300, what="300 deliveries")
    await asyncio.sleep(0.2)
    assert inbox.seqs == list(range(300))


async def test_invalid_record_is_rejected_before_sending(make_broker, namespace, uid):
    """A record that does not match its schema raises EncodeError naming the field; nothing
    reaches consumers."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox)
    bad = ping(1)
    bad["nested"] = {"amount_minor": "lots", "at": bad["nested"]["at"]}
    with pytest.raises(EncodeError, match="amount_minor"):
        await broker.publish(f"{namespace}.Ping", bad)
    await broker.publish(f"{namespace}.Ping", ping(2))
    await eventually(lambda: len(inbox.events) == 1)
    assert inbox.seqs == [2]


async def test_unroutable_publish_is_reported(make_broker, target, namespace):
    """With no queue bound, a mandatory publish fails where the protocol can tell; otherwise it
    is confirmed (topics without subscribers drop messages by design)."""
    broker = make_broker()
    await broker.start()
    if target.unroutable_detected:
        with pytest.raises(UnroutableError):
            await broker.publish(f"{namespace}.Other", ping(1))
        await broker.publish(f"{namespace}.Other", ping(1), mandatory=False)
    else:
        await broker.publish(f"{namespace}.Other", ping(1))


async def test_publish_after_close_fails_clearly(make_broker, namespace):
    """Publishing on a closed broker raises PublishError instead of hanging."""
    broker = make_broker()
    await broker.start()
    await broker.close()
    with pytest.raises(PublishError, match="not running"):
        await broker.publish(f"{namespace}.Ping", ping(1))


async def test_prepared_event_keeps_its_id_and_time(make_broker, namespace, uid):
    """publish_event sends the caller's id and time (the outbox relay depends on it)."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox)
    event = Event(type=f"{namespace}.Ping", data=ping(5), source="//x/y", id=f"fixed-{uid}")
    await broker.publish_event(event)
    await eventually(lambda: len(inbox.events) == 1)
    assert inbox.events[0].id == f"fixed-{uid}"
    assert inbox.events[0].time == event.time
    assert inbox.events[0].source == "//x/y"


async def test_raw_transport_message_round_trip(make_broker, namespace, uid):
    """The transport carries arbitrary attributes and headers through its protocol binding."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox)
    body, _ = broker.codec.encode(f"{namespace}.Ping", ping(7))
    await broker.transport.publish(
        OutgoingMessage(
            topic=f"{namespace}.Ping",
            body=body,
            attributes={
                "id": f"raw-{uid}",
                "type": f"{namespace}.Ping",
                "source": "//raw",
                "specversion": "1.0",
                "time": "2026-01-01T00:00:00+00:00",
            },
            headers={
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "x-custom": "a:b c=d",
            },
            content_type="application/avro",
        ),
        timeout=10,
    )
    await eventually(lambda: len(inbox.events) == 1)
    got = inbox.events[0]
    assert got.id == f"raw-{uid}"
    assert got.extensions["x-custom"] == "a:b c=d"
    assert got.extensions["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
