"""STOMP transport behaviour the shared conformance suite does not reach: per-receipt ERROR
frames, heart-beat loss detection, header escaping through ActiveMQ, prefetch, retries out of a
wildcard consumer queue, and the queue names a multi-pattern subscription reports."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager

import pytest

from broker.errors import PublishError
from broker.transport import OutgoingMessage, SubscriptionSpec, TransportOptions
from broker.transports._stomp_client import StompClient
from broker.transports.stomp import StompTransport
from broker.url import BrokerURL
from tests.support.activemq_instance import private_activemq

SHARED = "stomp://127.0.0.1:61613"


@asynccontextmanager
async def _transport(url=SHARED, *, heartbeat=30.0):
    parsed = BrokerURL.parse(url)
    options = TransportOptions(connect_timeout=10.0, heartbeat=heartbeat)
    transport = StompTransport(parsed, parsed.endpoints[0], options)
    await transport.connect()
    try:
        yield transport
    finally:
        await transport.close()


def _message(topic, body=b"\x00body\x00", headers=None):
    return OutgoingMessage(
        topic=topic,
        body=body,
        attributes={"id": uuid.uuid4().hex, "type": topic, "source": "//tests"},
        headers=headers or {},
        content_type="application/avro",
    )


async def _eventually(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
def ns():
    return f"st{uuid.uuid4().hex[:10]}"


async def test_error_frame_fails_only_the_send_it_names():
    """An ERROR carrying a receipt-id fails that one pipelined SEND; the others get their
    receipts and the connection stays usable (ActiveMQ keeps it open after such an ERROR)."""
    lost = []
    client = StompClient("127.0.0.1", 61613, on_lost=lost.append)
    await client.connect(10.0)
    try:
        queue = f"/queue/st.err.{uuid.uuid4().hex[:10]}"
        sends = [client.send(queue, b"ok", {}, 10.0) for _ in range(4)]
        # A transaction the connection never began: ActiveMQ answers with an ERROR for it.
        sends.insert(2, client.send(queue, b"bad", {"transaction": "no-such-tx"}, 10.0))
        results = await asyncio.gather(*sends, return_exceptions=True)
        assert [r is None for r in results] == [True, True, False, True, True]
        assert isinstance(results[2], PublishError)
        assert "transaction" in str(results[2]).lower()
        await client.send(queue, b"after", {}, 10.0)
        assert lost == []
    finally:
        await client.disconnect()
    assert lost == [None]


async def test_a_silent_broker_is_detected_by_heart_beats(tmp_path):
    """When the broker stops answering (process frozen, socket open) the transport reports the
    connection lost within a few heart-beat intervals."""
    async with (
        private_activemq(tmp_path / "amq") as instance,
        _transport(instance.url, heartbeat=1.0) as transport,
    ):
        with instance.frozen():
            started = time.monotonic()
            error = await asyncio.wait_for(asyncio.shield(transport.lost), 10)
            elapsed = time.monotonic() - started
        assert isinstance(error, ConnectionError)
        assert "heart-beat" in str(error)
        assert elapsed < 5, elapsed


async def test_a_send_the_broker_never_answers_fails_at_its_timeout(tmp_path):
    """A SEND whose RECEIPT never comes (broker process frozen, socket open) fails with
    PublishError once its own timeout passes; neither it nor a SEND whose sender was cancelled
    stays pending, and the client still works once the broker answers again."""
    async with private_activemq(tmp_path / "amq") as instance:
        lost = []
        client = StompClient("127.0.0.1", instance.stomp_port, on_lost=lost.append, heartbeat=60)
        await client.connect(10.0)
        queue = f"/queue/st.silent.{uuid.uuid4().hex[:10]}"
        try:
            with instance.frozen():
                started = time.monotonic()
                with pytest.raises(PublishError, match=r"no receipt for SEND within 0\.5s"):
                    await client.send(queue, b"unanswered", {}, 0.5)
                assert 0.45 < time.monotonic() - started < 3
                cancelled = asyncio.ensure_future(client.send(queue, b"cancelled", {}, 30.0))
                await asyncio.sleep(0.1)
                cancelled.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await cancelled
                assert client._receipts == {}
            await client.send(queue, b"answered", {}, 10.0)
            assert lost == []
        finally:
            await client.disconnect()


async def test_header_values_with_stomp_special_characters_round_trip(ns):
    """Colons, newlines, carriage returns and backslashes in header values come back intact
    through ActiveMQ, and CloudEvents attributes come back as attributes."""
    topic = f"{ns}.Ping"
    tricky = {"x-note": "a:b\nc\\d\re", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    got = []
    async with _transport() as transport:
        spec = SubscriptionSpec(group=f"g{ns}", topics=(topic,))
        await transport.subscribe(spec, got.append)
        sent = _message(topic, headers=tricky)
        await transport.publish(sent, timeout=10)
        await _eventually(lambda: len(got) == 1)
        delivery = got[0]
        await delivery.ack()
    assert delivery.headers == tricky
    assert delivery.attributes == dict(sent.attributes)
    assert delivery.topic == topic
    assert delivery.body == sent.body
    assert delivery.content_type == "application/avro"


async def test_prefetch_bounds_unacknowledged_deliveries(ns):
    """With prefetch 2 ActiveMQ hands out two messages until one is acknowledged."""
    topic = f"{ns}.Ping"
    got = []
    async with _transport() as transport:
        spec = SubscriptionSpec(group=f"g{ns}", topics=(topic,), prefetch=2)
        await transport.subscribe(spec, got.append)
        for _ in range(5):
            await transport.publish(_message(topic), timeout=10)
        await _eventually(lambda: len(got) == 2)
        await asyncio.sleep(0.5)
        assert len(got) == 2
        for delivery in got[:2]:
            await delivery.ack()
        await _eventually(lambda: len(got) == 4)
        for delivery in got[2:]:
            await delivery.ack()
        await _eventually(lambda: len(got) == 5)
        await got[4].ack()


async def test_retry_out_of_a_wildcard_consumer_queue_returns_once_after_the_delay(ns):
    """A group reading ``<ns>.#`` (queue Consumer.<group>.VirtualTopic.<ns>.>) retries a delivery:
    the copy comes back to that group only, after the delay, with the new headers and the event
    type as its topic; another group on the same pattern sees the event once."""
    topic = f"{ns}.orders.Ping"
    retried, watched = [], []
    async with _transport() as transport:
        group = SubscriptionSpec(group=f"g{ns}", topics=(f"{ns}.#",))
        other = SubscriptionSpec(group=f"o{ns}", topics=(f"{ns}.#",))
        await transport.subscribe(group, retried.append)
        await transport.subscribe(other, watched.append)
        await transport.publish(_message(topic, headers={"x-attempt": "1"}), timeout=10)
        await _eventually(lambda: len(retried) == 1)
        first_at = time.monotonic()
        await retried[0].retry(0.6, {"x-attempt": "2"})
        await _eventually(lambda: len(retried) == 2)
        assert time.monotonic() - first_at >= 0.5
        copy = retried[1]
        assert copy.headers == {"x-attempt": "2"}
        assert copy.topic == topic
        assert copy.body == retried[0].body
        assert copy.attributes == retried[0].attributes
        await copy.ack()
        await asyncio.sleep(0.5)
        assert len(retried) == 2
        assert len(watched) == 1
        await watched[0].ack()


async def test_settling_twice_is_a_no_op(ns):
    """After ack, a retry or dead_letter of the same delivery sends nothing and raises nothing."""
    topic = f"{ns}.Ping"
    got = []
    async with _transport() as transport:
        spec = SubscriptionSpec(group=f"g{ns}", topics=(topic,))
        await transport.subscribe(spec, got.append)
        await transport.publish(_message(topic), timeout=10)
        await _eventually(lambda: len(got) == 1)
        await got[0].ack()
        await got[0].retry(0.0, {})
        await got[0].dead_letter({})
        await asyncio.sleep(0.5)
        assert len(got) == 1


async def test_close_reports_the_connection_lost_without_error():
    """close() resolves ``lost`` with None and a second close is harmless."""
    async with _transport() as transport:
        pass
    assert transport.lost.result() is None
    await transport.close()


def test_queue_names_name_one_consumer_queue_per_pattern():
    """A spec with several patterns reports ``queue``, ``queue.1``, … plus the group's retry and
    dead-letter queues (ActiveMQ's ``>`` for ``#``)."""
    url = BrokerURL.parse(SHARED)
    transport = StompTransport(url, url.endpoints[0], TransportOptions())
    spec = SubscriptionSpec(group="audit", topics=("shop.#", "billing.*.Done"))
    assert transport.queue_names(spec) == {
        "queue": "Consumer.audit.VirtualTopic.shop.>",
        "queue.1": "Consumer.audit.VirtualTopic.billing.*.Done",
        "retry": "shop.audit.retry",
        "dead_letter": "shop.audit.dlq",
    }


async def test_unsubscribing_with_deliveries_in_hand_waits_for_them(ns):
    """cancel() with an unsettled delivery stops new ones at once; the ack sent afterwards still
    counts (the message is not redelivered to the group)."""
    topic = f"{ns}.Ping"
    got = []
    async with _transport() as transport:
        spec = SubscriptionSpec(group=f"g{ns}", topics=(topic,))
        consumer = await transport.subscribe(spec, got.append)
        await transport.publish(_message(topic), timeout=10)
        await _eventually(lambda: len(got) == 1)
        await consumer.cancel()
        await transport.publish(_message(topic), timeout=10)
        await asyncio.sleep(0.3)
        assert len(got) == 1
        await got[0].ack()
        await asyncio.sleep(0.3)
    again = []
    async with _transport() as transport:
        consumer = await transport.subscribe(spec, again.append)
        await _eventually(lambda: len(again) == 1)
        await asyncio.sleep(0.5)
        await again[0].ack()
        assert len(again) == 1
        assert again[0].attributes["id"] != got[0].attributes["id"]
