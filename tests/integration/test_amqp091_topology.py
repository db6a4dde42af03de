"""AMQP 0-9-1 specifics the shared conformance suite does not see: the queues and arguments
declared on RabbitMQ, URL options, message properties on the wire, connection-loss reporting."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aio_pika
import pytest

from broker import Broker, BrokerConnectionError, ConfigurationError, RetryPolicy, SchemaRegistry
from broker.transport import Delivery, OutgoingMessage, SubscriptionSpec, TransportOptions
from broker.transports.amqp091 import Amqp091Transport
from broker.url import BrokerURL
from tests.support.names import unique_hex

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from broker import Event

SHARED = "amqp://guest:guest@127.0.0.1:5672/"
RETRY = RetryPolicy(max_attempts=3, initial_delay=0.05, multiplier=2.0)


@pytest.fixture
def uid() -> str:
    return unique_hex()


@pytest.fixture
def registry(tmp_path: Path, uid: str) -> SchemaRegistry:
    folder = tmp_path / "Ping"
    folder.mkdir()
    schema = {
        "type": "record",
        "name": "Ping",
        "namespace": f"it.t{uid}.v1",
        "fields": [{"name": "seq", "type": "int"}],
    }
    (folder / "v1.avsc").write_text(json.dumps(schema))
    return SchemaRegistry.from_directory(tmp_path)


@pytest.fixture
def event_type(registry: SchemaRegistry) -> str:
    return registry.names[0]


@pytest.fixture
async def url(uid: str) -> AsyncIterator[str]:
    """The shared RabbitMQ with a prefix and exchange of this test's own, removed at the end."""
    prefix, exchange = f"it{uid}", f"it{uid}.events"
    yield f"{SHARED}?prefix={prefix}&exchange={exchange}"
    connection = await aio_pika.connect(SHARED)
    async with connection:
        channel = await connection.channel()
        for queue in _queues(prefix):
            await channel.queue_delete(queue["name"])
        await channel.exchange_delete(exchange)


@pytest.fixture
def make_broker(
    registry: SchemaRegistry, request: pytest.FixtureRequest
) -> Callable[[str], Broker]:
    def make(url: str) -> Broker:
        return Broker(url, source="//tests/amqp091", registry=registry, name=request.node.name)

    return make


def _ctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def _queues(prefix: str) -> list[dict[str, Any]]:
    listed = json.loads(_ctl("--formatter", "json", "list_queues", "name", "type", "arguments"))
    return sorted(
        (
            {
                "name": q["name"],
                "type": q["type"],
                "arguments": {a[0]: a[2] for a in q["arguments"]},
            }
            for q in listed
            if q["name"].startswith(f"{prefix}.")
        ),
        key=lambda q: q["name"],
    )


async def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_group_topology_quorum_queue_dlq_and_retry_queues(
    url: str, make_broker: Callable[[str], Broker], event_type: str, uid: str
) -> None:
    """A group gets a quorum queue bound to its patterns, a quorum DLQ, and one TTL queue per
    retry delay that dead-letters back to the group queue through the default exchange."""
    async with make_broker(url) as broker:

        async def handler(_event: Event) -> None:
            return None

        await broker.subscribe("billing", [event_type, "it.#"], handler, retry=RETRY)
        names = broker.queue_names("billing", [event_type])
    group = f"it{uid}.billing"
    assert names == {"queue": group, "dead_letter": f"{group}.dlq", "exchange": f"it{uid}.events"}
    queues = {q["name"]: q for q in _queues(f"it{uid}")}
    assert queues[group]["type"] == "quorum"
    assert queues[f"{group}.dlq"]["type"] == "quorum"
    assert sorted(n for n in queues if ".retry." in n) == [
        f"{group}.retry.100",
        f"{group}.retry.50",
    ]
    retry = queues[f"{group}.retry.50"]["arguments"]
    assert retry["x-message-ttl"] == 50
    assert retry["x-dead-letter-exchange"] == ""
    assert retry["x-dead-letter-routing-key"] == group
    bindings = _ctl("list_bindings", "source_name", "destination_name", "routing_key")
    bound = {
        tuple(line.split("\t")[1:])
        for line in bindings.splitlines()
        if line.startswith(f"it{uid}.events\t")
    }
    assert bound == {(group, event_type), (group, "it.#")}


async def test_queue_type_option_declares_classic_queues(
    url: str, make_broker: Callable[[str], Broker], event_type: str, uid: str
) -> None:
    """?queue_type=classic declares the group queue and its DLQ as classic queues."""
    async with make_broker(f"{url}&queue_type=classic") as broker:

        async def handler(_event: Event) -> None:
            return None

        await broker.subscribe("billing", [event_type], handler)
    types = {q["name"]: q["type"] for q in _queues(f"it{uid}") if ".retry." not in q["name"]}
    assert types == {f"it{uid}.billing": "classic", f"it{uid}.billing.dlq": "classic"}


async def test_unknown_queue_type_fails_start_at_once(
    url: str, make_broker: Callable[[str], Broker]
) -> None:
    """A bad queue_type is a configuration error at start-up, not a reason to keep retrying."""
    broker = make_broker(f"{url}&queue_type=lazy")
    with pytest.raises(ConfigurationError, match="queue_type"):
        await asyncio.wait_for(broker.start(), 2)


async def test_url_without_credentials_does_not_fall_back_to_guest(
    make_broker: Callable[[str], Broker],
) -> None:
    """No username/password: no silent guest login; certificate login is asked for and the
    broker (which offers none) refuses."""
    broker = Broker(
        "amqp://127.0.0.1:5672/",
        source="//tests/amqp091",
        registry=make_broker(SHARED).registry,
        connect_timeout=0.5,
    )
    with pytest.raises(BrokerConnectionError, match="no username/password"):
        await asyncio.wait_for(broker.start(), 5)


async def test_user_without_password_is_a_configuration_error(
    make_broker: Callable[[str], Broker],
) -> None:
    """A username with no password fails start-up at once with one clear line."""
    broker = make_broker("amqp://guest@127.0.0.1:5672/")
    with pytest.raises(ConfigurationError, match="no password"):
        await asyncio.wait_for(broker.start(), 2)


async def test_retried_copy_returns_only_to_the_failing_group(
    url: str, make_broker: Callable[[str], Broker], event_type: str
) -> None:
    """A retry goes through the group's own retry queue: the other group sees the event once."""
    failing: list[str] = []
    healthy: list[str] = []

    async def flaky(event: Event) -> None:
        failing.append(event.id)
        if len(failing) == 1:
            raise RuntimeError("first attempt fails")

    async def fine(event: Event) -> None:
        healthy.append(event.id)

    async with make_broker(url) as broker:
        await broker.subscribe("flaky", [event_type], flaky, retry=RETRY)
        await broker.subscribe("fine", [event_type], fine, retry=RETRY)
        sent = await broker.publish(event_type, {"seq": 1})
        await _eventually(lambda: len(failing) == 2)
        await asyncio.sleep(0.3)
    assert failing == [sent.id, sent.id]
    assert healthy == [sent.id]


async def test_message_properties_on_the_wire(
    url: str, make_broker: Callable[[str], Broker], event_type: str, uid: str
) -> None:
    """Persistent, content type, message id, type, timestamp and cloudEvents:* headers, as an
    outside AMQP consumer sees them; the routing key is the event type."""
    connection = await aio_pika.connect(SHARED)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            f"it{uid}.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(exchange, routing_key="#")
        async with make_broker(url) as broker:
            sent = await broker.publish(event_type, {"seq": 1}, subject="order-1")
        message = await queue.get(timeout=5)
        await message.ack()
    assert message.routing_key == event_type
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/avro"
    assert message.message_id == sent.id
    assert message.type == event_type
    assert message.timestamp is not None
    stamped = message.timestamp.replace(tzinfo=message.timestamp.tzinfo or UTC)
    assert stamped == sent.time.replace(microsecond=0)
    headers = message.headers
    assert headers["cloudEvents:id"] == sent.id
    assert headers["cloudEvents:type"] == event_type
    assert headers["cloudEvents:source"] == "//tests/amqp091"
    assert headers["cloudEvents:specversion"] == "1.0"
    assert headers["cloudEvents:subject"] == "order-1"
    assert datetime.fromisoformat(str(headers["cloudEvents:time"])) == sent.time


async def test_mandatory_off_publishes_without_a_bound_queue(
    url: str, make_broker: Callable[[str], Broker], event_type: str
) -> None:
    """mandatory=False: a publish nobody is bound for is confirmed and dropped, not an error."""
    async with make_broker(url) as broker:
        await broker.publish(event_type, {"seq": 1}, mandatory=False)


async def test_transport_reports_connection_loss(url: str, request: pytest.FixtureRequest) -> None:
    """`lost` resolves with an error when the broker closes the connection, and with None
    after close()."""
    parsed = BrokerURL.parse(url)
    name = f"{request.node.name}-{uuid.uuid4().hex[:6]}"
    closed_by_broker = Amqp091Transport(parsed, parsed.endpoints[0], TransportOptions(name))
    await closed_by_broker.connect()
    try:
        await _eventually(lambda: name in _ctl("list_connections", "client_properties"))
        pid = next(
            line.split("\t")[0]
            for line in _ctl("list_connections", "pid", "client_properties").splitlines()
            if name in line
        )
        _ctl("close_connection", pid, "test closes it")
        error = await asyncio.wait_for(closed_by_broker.lost, 10)
        assert isinstance(error, BaseException)
    finally:
        await closed_by_broker.close()

    closed_by_us = Amqp091Transport(parsed, parsed.endpoints[0], TransportOptions(name))
    await closed_by_us.connect()
    await closed_by_us.close()
    assert await asyncio.wait_for(closed_by_us.lost, 5) is None
    await closed_by_us.close()


async def test_channel_closed_by_the_broker_recovers_through_reconnect(
    url: str, make_broker: Callable[[str], Broker], event_type: str, uid: str
) -> None:
    """Deleting the exchange under a running broker closes the publishing channel with a
    channel error; the next publish waits for the reconnect (which redeclares exchange and
    bindings) and is delivered."""
    received: list[str] = []

    async def handler(event: Event) -> None:
        received.append(event.id)

    async with make_broker(url) as broker:
        await broker.subscribe("billing", [event_type], handler)
        connection = await aio_pika.connect(SHARED)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(f"it{uid}.events")
        sent = await broker.publish(event_type, {"seq": 1})
        await _eventually(lambda: received == [sent.id])
        assert broker.reconnects >= 1


async def test_queue_of_another_type_is_a_configuration_error(
    url: str, make_broker: Callable[[str], Broker], event_type: str, uid: str
) -> None:
    """Subscribing where the group queue exists as a classic queue fails with a clear error;
    the connection stays up and keeps publishing (no reconnect loop)."""
    connection = await aio_pika.connect(SHARED)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(
            f"it{uid}.billing", durable=True, arguments={"x-queue-type": "classic"}
        )

    async def handler(_event: Event) -> None:
        return None

    async with make_broker(url) as broker:
        with pytest.raises(ConfigurationError, match="queue_type"):
            await broker.subscribe("billing", [event_type], handler)
        await broker.subscribe("other", [event_type], handler)
        await broker.publish(event_type, {"seq": 1})
        await asyncio.sleep(0.2)
        assert broker.connected
        assert broker.reconnects == 0


async def test_retry_queue_deleted_under_a_consumer_heals_through_reconnect(
    url: str, make_broker: Callable[[str], Broker], event_type: str, uid: str
) -> None:
    """When the retry copy cannot be placed (its queue was deleted), the original is not lost
    or stuck: the transport reconnects, redeclares the queue, and the event is handled."""
    calls: list[str] = []

    async def flaky(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")

    async with make_broker(url) as broker:
        await broker.subscribe("billing", [event_type], flaky, retry=RETRY)
        connection = await aio_pika.connect(SHARED)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(f"it{uid}.billing.retry.50")
        sent = await broker.publish(event_type, {"seq": 1})
        await _eventually(lambda: len(calls) == 2)
        assert calls == [sent.id, sent.id]
        assert broker.reconnects >= 1
    assert f"it{uid}.billing.retry.50" in {q["name"] for q in _queues(f"it{uid}")}


async def test_retried_copy_keeps_its_topic(url: str, event_type: str) -> None:
    """A copy back from a retry queue (default exchange, queue name as routing key) still
    reports the event type as its topic, and carries the replaced headers."""
    parsed = BrokerURL.parse(url)
    transport = Amqp091Transport(parsed, parsed.endpoints[0], TransportOptions("retry-topic"))
    await transport.connect()
    deliveries: list[Delivery] = []
    try:
        spec = SubscriptionSpec(group="billing", topics=(event_type,), retry_delays=(0.05,))
        await transport.subscribe(spec, deliveries.append)
        message = OutgoingMessage(
            topic=event_type,
            body=b"\x00body",
            attributes={"id": "e-1", "type": event_type},
            headers={"x-attempt": "1"},
            content_type="application/avro",
        )
        await transport.publish(message, timeout=5)
        await _eventually(lambda: len(deliveries) == 1)
        await deliveries[0].retry(0.05, {"x-attempt": "2"})
        await _eventually(lambda: len(deliveries) == 2)
        again = deliveries[1]
        await again.ack()
        assert again.topic == event_type
        assert again.headers == {"x-attempt": "2"}
        assert again.attributes == {"id": "e-1", "type": event_type}
        assert again.body == b"\x00body"
    finally:
        await transport.close()


async def test_dead_lettered_copy_keeps_the_message_properties(url: str, event_type: str) -> None:
    """The copy in the dead-letter queue is the original as an outside consumer saw it:
    persistent, same message id, type, timestamp, content type and body; the error headers
    added, the CloudEvents headers kept."""
    parsed = BrokerURL.parse(url)
    transport = Amqp091Transport(parsed, parsed.endpoints[0], TransportOptions("dlq-copy"))
    await transport.connect()
    deliveries: list[Delivery] = []
    when = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    try:
        spec = SubscriptionSpec(group="billing", topics=(event_type,))
        await transport.subscribe(spec, deliveries.append)
        message = OutgoingMessage(
            topic=event_type,
            body=b"\x00body",
            attributes={"id": "e-9", "type": event_type, "time": when.isoformat()},
            headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            content_type="application/avro",
        )
        await transport.publish(message, timeout=5)
        await _eventually(lambda: len(deliveries) == 1)
        assert deliveries[0].redelivered is False
        await deliveries[0].dead_letter({"x-error-type": "DecodeError"})
    finally:
        await transport.close()
    connection = await aio_pika.connect(SHARED)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.get_queue(transport.queue_names(spec)["dead_letter"], ensure=False)
        copy = await dlq.get(timeout=5)
        await copy.ack()
    assert copy.body == b"\x00body"
    assert copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert copy.content_type == "application/avro"
    assert copy.message_id == "e-9"
    assert copy.type == event_type
    assert copy.timestamp is not None
    assert copy.timestamp.replace(tzinfo=copy.timestamp.tzinfo or UTC) == when
    assert copy.headers["cloudEvents:id"] == "e-9"
    assert copy.headers["traceparent"].startswith("00-0af7651916cd43dd")
    assert copy.headers["x-error-type"] == "DecodeError"
