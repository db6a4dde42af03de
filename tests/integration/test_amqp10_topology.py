"""The AMQP 1.0 transport's RabbitMQ topology and failed copies, against RabbitMQ's plugin:
queues declared over AMQP 0-9-1 by the code the AMQP 0-9-1 transport uses, a queue that exists
with other arguments, and a retry/dead-letter copy the broker does not accept."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import aio_pika
import pytest

from broker import BrokerURL, ConfigurationError, PublishError
from broker.transport import Delivery, OutgoingMessage, SubscriptionSpec, TransportOptions
from broker.transports.amqp10 import Amqp10Transport
from tests.conformance._support import eventually
from tests.support.names import unique_hex

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from aio_pika.abc import AbstractChannel

URL = "amqp10://guest:guest@127.0.0.1:5672?dialect=rabbitmq"
AMQP091 = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def uid() -> str:
    return unique_hex()


@pytest.fixture
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Amqp10Transport]:
    parsed = BrokerURL.parse(URL)
    options = TransportOptions(connection_name=request.node.name)
    transport = Amqp10Transport(parsed, parsed.endpoints[0], options)
    await transport.connect()
    yield transport
    await transport.close()


async def _amqp091(work: Callable[[AbstractChannel], Awaitable[Any]]) -> Any:
    connection = await aio_pika.connect(AMQP091)
    async with connection:
        channel = await connection.channel()
        return await work(channel)


async def _delete(*queues: str) -> None:
    async def delete(channel: AbstractChannel) -> None:
        for queue in queues:
            await channel.queue_delete(queue)

    await _amqp091(delete)


def _message(topic: str) -> OutgoingMessage:
    return OutgoingMessage(
        topic=topic,
        body=b"\xc3\x01payload",
        attributes={"id": uuid.uuid4().hex, "type": topic, "source": "//t", "specversion": "1.0"},
        headers={},
        content_type="application/avro",
    )


async def _ready(queue: str) -> int:
    async def count(channel: AbstractChannel) -> int:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)

    return int(await _amqp091(count))


async def test_group_topology_matches_the_amqp091_transport(transport: Amqp10Transport, uid: str):
    """Subscribing declares the group queue (quorum), its DLQ and one TTL queue per retry delay
    dead-lettering home, so an AMQP 0-9-1 consumer of the same group sees the same queues."""
    group = f"topo{uid}"
    spec = SubscriptionSpec(group=group, topics=(f"conf.t{uid}.#",), retry_delays=(1.0, 5.0))
    consumer = await transport.subscribe(spec, lambda _d: None)
    await consumer.cancel()
    try:
        for queue in (f"shop.{group}", f"shop.{group}.dlq"):
            assert await _ready(queue) == 0
        retry_queues = [f"shop.{group}.retry.{ms}" for ms in (1000, 5000)]
        for queue in retry_queues:
            assert await _ready(queue) == 0
    finally:
        await _delete(f"shop.{group}", f"shop.{group}.dlq", *retry_queues)


async def test_queue_with_other_arguments_is_a_configuration_error(
    transport: Amqp10Transport, uid: str
):
    """A group queue that exists as a classic queue while the URL asks for quorum fails the
    subscription with ConfigurationError (not a lost connection to retry forever)."""
    group = f"clash{uid}"
    await _amqp091(
        lambda channel: channel.declare_queue(
            f"shop.{group}", durable=True, arguments={"x-queue-type": "classic"}
        )
    )
    try:
        spec = SubscriptionSpec(group=group, topics=(f"conf.t{uid}.v1.Ping",))
        with pytest.raises(ConfigurationError, match="queue_type=quorum"):
            await transport.subscribe(spec, lambda _d: None)
        assert not transport.lost.done()
    finally:
        await _delete(f"shop.{group}")


async def test_dead_letter_copy_refused_drops_the_connection_and_keeps_the_original(
    transport: Amqp10Transport, uid: str
):
    """Deleting a subscribed group's dead-letter queue drops the connection (RabbitMQ's plugin
    would silently drop copies sent to it); dead_letter then raises PublishError and the
    original goes back to the group queue (not lost)."""
    group, topic = f"dlqgone{uid}", f"conf.t{uid}.v1.Ping"
    got: list[Delivery] = []
    spec = SubscriptionSpec(group=group, topics=(topic,))
    await transport.subscribe(spec, got.append)
    try:
        await transport.publish(_message(topic), timeout=10)
        await eventually(lambda: len(got) == 1, timeout=10)
        await _delete(f"shop.{group}.dlq")
        assert isinstance(await asyncio.wait_for(transport.lost, 10), ConnectionError)
        with pytest.raises(PublishError):
            await got[0].dead_letter({"x-error-type": "Boom"})
        for _ in range(100):
            if await _ready(f"shop.{group}") == 1:
                break
            await asyncio.sleep(0.1)
        assert await _ready(f"shop.{group}") == 1
    finally:
        await _delete(f"shop.{group}", f"shop.{group}.dlq")
