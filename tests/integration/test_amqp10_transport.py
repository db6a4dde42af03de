"""The AMQP 1.0 transport against RabbitMQ's AMQP 1.0 plugin, below the conformance suite:
wire format, settlement outcomes, credit, link loss, credentials, event-loop responsiveness."""

from __future__ import annotations

import asyncio
import subprocess
import time

import aio_pika
import proton
import pytest

from broker import BrokerConnectionError, BrokerURL, PublishError
from broker.transport import OutgoingMessage, SubscriptionSpec, TransportOptions
from broker.transports.amqp10 import Amqp10Transport
from tests.conformance._support import eventually
from tests.support.names import unique_hex

URL = "amqp10://guest:guest@127.0.0.1:5672?dialect=rabbitmq"
AMQP091 = "amqp://guest:guest@127.0.0.1:5672/"


def _transport(url: str = URL, name: str = "amqp10-test") -> Amqp10Transport:
    parsed = BrokerURL.parse(url)
    options = TransportOptions(connection_name=name, connect_timeout=5.0)
    return Amqp10Transport(parsed, parsed.endpoints[0], options)


@pytest.fixture
async def transport(request):
    transport = _transport(name=request.node.name)
    await transport.connect()
    yield transport
    await transport.close()


@pytest.fixture
def uid() -> str:
    return unique_hex()


async def _amqp091(work):
    connection = await aio_pika.connect(AMQP091)
    async with connection:
        channel = await connection.channel()
        return await work(channel)


def _message(topic: str, n: int = 0, **headers: str) -> OutgoingMessage:
    return OutgoingMessage(
        topic=topic,
        body=b"\x00\xc3\x01" + bytes([n % 256]) * 8,
        attributes={"id": f"id-{n}", "type": topic, "source": "//t", "specversion": "1.0"},
        headers={
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            **headers,
        },
        content_type="application/avro",
    )


async def test_messages_on_the_broker_follow_the_cloudevents_amqp_binding(transport, uid):
    """What a foreign AMQP 1.0 consumer reads: a durable message, Data body, content-type,
    message-id = event id, cloudEvents:<attr> and other headers as application-properties."""
    group, topic = f"wire{uid}", f"conf.t{uid}.v1.Ping"
    spec = SubscriptionSpec(group=group, topics=(topic,))
    consumer = await transport.subscribe(spec, lambda _d: None)
    await consumer.cancel()
    await transport.publish(_message(topic, 7, **{"x-custom": "a:b"}), timeout=10)

    raw: list[proton.Message] = []
    engine = transport._require()
    await engine.receiver(
        f"/amq/queue/shop.{group}",
        1,
        lambda delivery, message: (
            raw.append(message),
            engine.settle(delivery, proton.Delivery.ACCEPTED),
        ),
        lambda _exc: None,
    )
    await eventually(lambda: len(raw) == 1, timeout=10)
    message = raw[0]
    assert message.durable
    assert message.id == "id-7"
    assert message.content_type == "application/avro"
    assert bytes(message.body) == _message(topic, 7).body
    assert message.properties["cloudEvents:id"] == "id-7"
    assert message.properties["cloudEvents:type"] == topic
    assert message.properties["cloudEvents:specversion"] == "1.0"
    assert message.properties["traceparent"].startswith("00-0af7")
    assert message.properties["x-custom"] == "a:b"


async def test_refused_publish_is_never_reported_as_sent(transport, uid):
    """A message the broker refuses (a full queue with overflow=reject-publish) fails the
    publish. RabbitMQ 3.10's plugin does not send a rejected outcome: it drops the connection
    on the refusal, so the publish fails as unsettled and the transport reports the loss."""
    queue = f"shop.full{uid}"

    async def declare(channel):
        await channel.declare_queue(
            queue, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )

    await _amqp091(declare)
    try:
        message = proton.Message(body=b"x", inferred=True)
        with pytest.raises(PublishError):
            await transport.send(f"/amq/queue/{queue}", message, timeout=10, what="full")
        assert isinstance(await asyncio.wait_for(transport.lost, 5), ConnectionError)
    finally:
        await _amqp091(lambda channel: channel.queue_delete(queue))


async def test_unknown_exchange_is_declared_on_first_publish(uid):
    """Publishing before anyone subscribed (the exchange does not exist yet) declares the
    exchange over AMQP 0-9-1 once and then publishes."""
    exchange = f"shop.ex{uid}"
    transport = _transport(f"{URL}&exchange={exchange}")
    await transport.connect()
    try:
        await transport.publish(_message(f"conf.t{uid}.v1.Ping"), timeout=10)
        await transport.publish(_message(f"conf.t{uid}.v1.Pong"), timeout=10)
    finally:
        await transport.close()
        await _amqp091(lambda channel: channel.exchange_delete(exchange))


async def test_credit_is_the_prefetch_and_each_settlement_returns_one(transport, uid):
    """With prefetch 3 and nothing settled, exactly 3 messages are handed out; settling one
    lets exactly one more in."""
    topic = f"conf.t{uid}.v1.Ping"
    got = []
    spec = SubscriptionSpec(group=f"credit{uid}", topics=(topic,), prefetch=3)
    await transport.subscribe(spec, got.append)
    await asyncio.gather(*(transport.publish(_message(topic, n), timeout=10) for n in range(10)))
    await eventually(lambda: len(got) == 3, timeout=10)
    await asyncio.sleep(0.3)
    assert len(got) == 3
    await got[0].ack()
    await eventually(lambda: len(got) == 4, timeout=10)
    await asyncio.sleep(0.3)
    assert len(got) == 4


async def test_deliveries_arrive_in_order_from_the_event_loop(transport, uid):
    """on_delivery is called in publish order, on the event loop's thread."""
    topic = f"conf.t{uid}.v1.Ping"
    order, loops = [], set()

    def on_delivery(delivery):
        loops.add(asyncio.get_running_loop())
        order.append(delivery.attributes["id"])
        asyncio.get_running_loop().create_task(delivery.ack())

    spec = SubscriptionSpec(group=f"order{uid}", topics=(topic,), prefetch=50)
    await transport.subscribe(spec, on_delivery)
    for n in range(100):
        await transport.publish(_message(topic, n), timeout=10)
    await eventually(lambda: len(order) == 100, timeout=15)
    assert order == [f"id-{n}" for n in range(100)]
    assert loops == {asyncio.get_running_loop()}


async def test_event_loop_stays_responsive_during_a_publish_burst(transport, uid):
    """Pipelined publishing does no blocking I/O: a 5 ms ticker keeps ticking throughout. A
    pause between ticks is the loop thread's own work (encoding the burst), never waiting:
    each pause is compared with the CPU time the loop's thread spent in it, so a busy machine
    that stretches the encoding does not count as blocking."""
    topic = f"conf.t{uid}.v1.Ping"
    spec = SubscriptionSpec(group=f"burst{uid}", topics=(topic,))
    await transport.subscribe(spec, lambda d: asyncio.get_running_loop().create_task(d.ack()))
    gaps: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def ticker():
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now, cpu = time.perf_counter(), time.thread_time()
            gaps.append((now - last, cpu - last_cpu))
            last, last_cpu = now, cpu

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(transport.publish(_message(topic, n), timeout=30) for n in range(1000)))
    elapsed = time.perf_counter() - started
    stop.set()
    await ticking
    waited = [(wall, cpu) for wall, cpu in gaps if wall > 0.25 + 3 * cpu]
    assert not waited, f"(pause, loop thread CPU in it) with the loop waiting: {waited[:5]}"
    assert elapsed < 20


async def test_broker_closing_a_consumer_link_ends_the_connection(transport, uid):
    """When the broker detaches a receiving link (its queue was deleted), the transport reports
    the connection lost with the reason, so the broker core reconnects and resubscribes."""
    spec = SubscriptionSpec(group=f"gone{uid}", topics=(f"conf.t{uid}.v1.Ping",))
    await transport.subscribe(spec, lambda _d: None)
    await _amqp091(lambda channel: channel.queue_delete(f"shop.gone{uid}"))
    error = await asyncio.wait_for(transport.lost, 10)
    assert isinstance(error, ConnectionError)


async def test_close_resolves_lost_with_none_and_is_idempotent():
    """close() ends the connection cleanly: lost resolves with None, a second close is a no-op
    and publishing afterwards fails clearly."""
    transport = _transport()
    await transport.connect()
    await transport.close()
    await transport.close()
    assert transport.lost.result() is None
    with pytest.raises(PublishError, match="not connected"):
        await transport.publish(_message("conf.closed.v1.Ping"), timeout=1)


async def test_wrong_password_fails_connect_with_a_clear_error():
    """Bad credentials are refused during SASL: connect raises BrokerConnectionError."""
    transport = _transport("amqp10://guest:wrong@127.0.0.1:5672?dialect=rabbitmq")
    with pytest.raises(BrokerConnectionError, match=r"127\.0\.0\.1:5672"):
        await transport.connect()
    await transport.close()


async def test_subscribing_to_a_missing_queue_fails_without_killing_the_connection(transport, uid):
    """A refused attach raises for that subscription only; publishing still works."""
    engine = transport._require()
    with pytest.raises(BrokerConnectionError, match="not-found"):
        await engine.receiver(f"/amq/queue/nope{uid}", 1, lambda *_: None, lambda _e: None)
    await transport.publish(_message(f"conf.t{uid}.v1.Ping"), timeout=10)
    assert not transport.lost.done()


async def test_temporary_subscription_leaves_no_queue(uid):
    """A non-durable subscription reads a queue declared for it that disappears with it."""
    topic = f"conf.t{uid}.v1.Ping"
    transport = _transport()
    await transport.connect()
    got = []
    spec = SubscriptionSpec(group=f"tail{uid}", topics=(f"conf.t{uid}.v1.*",), durable=False)
    await transport.subscribe(spec, got.append)
    await transport.publish(_message(topic), timeout=10)
    await eventually(lambda: len(got) == 1, timeout=10)
    await got[0].retry(1.0, {})  # on a temporary subscription retry just acks
    await transport.close()

    def gone() -> bool:
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name", "arguments"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return not [line for line in listed.splitlines() if line.startswith("shop.tail.")]

    await eventually(gone, timeout=10, what="the temporary queue to be deleted")
