"""The core's dispatcher (decode, handler, retry/DLQ, ack, shutdown) over the in-memory broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING

import pytest

from broker import (
    ATTEMPT_HEADER,
    Broker,
    ConfigurationError,
    DeadLetter,
    RetryPolicy,
    SchemaRegistry,
    UnroutableError,
)
from broker.testing import InMemoryBroker, StoredMessage
from broker.transport import Delivery, SubscriptionSpec, TransportOptions
from broker.url import BrokerURL

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from broker import Event

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.002)


@pytest.fixture
def registry(tmp_path: Path) -> SchemaRegistry:
    folder = tmp_path / "Ping"
    folder.mkdir()
    schema = {
        "type": "record",
        "name": "Ping",
        "namespace": f"unit.t{uuid.uuid4().hex[:8]}.v1",
        "fields": [{"name": "seq", "type": "int"}],
    }
    (folder / "v1.avsc").write_text(json.dumps(schema))
    return SchemaRegistry.from_directory(tmp_path)


@pytest.fixture
def event_type(registry: SchemaRegistry) -> str:
    return registry.names[0]


@pytest.fixture
def hub() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
async def broker(hub: InMemoryBroker, registry: SchemaRegistry) -> AsyncIterator[Broker]:
    async with Broker(
        "amqp://memory/",
        source="//tests/unit",
        registry=registry,
        transport_class=hub.transport_class,
        reconnect_delay=(0.001, 0.01),
    ) as started:
        yield started


def failing(
    times: int, error: Callable[[], Exception]
) -> tuple[list[Event], Callable[..., object]]:
    """A handler that raises ``error()`` on its first ``times`` calls, recording every call."""
    calls: list[Event] = []

    async def handler(event: Event) -> None:
        calls.append(event)
        if len(calls) <= times:
            raise error()

    return calls, handler


async def test_failing_handler_is_retried_then_dead_lettered_with_error_headers(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """A handler that keeps failing runs max_attempts times, then one DLQ copy records why."""
    calls, handler = failing(99, lambda: RuntimeError("boom"))
    await broker.subscribe("billing", [event_type], handler, retry=FAST_RETRY)  # type: ignore[arg-type]
    sent = await broker.publish(event_type, {"seq": 1})
    await hub.wait_idle()

    assert [e.extensions[ATTEMPT_HEADER] for e in calls] == ["1", "2", "3"]
    assert {e.id for e in calls} == {sent.id}
    [dead] = hub.dead_letters("billing")
    assert dead.attributes["id"] == sent.id
    assert dead.headers["x-error-type"] == "RuntimeError"
    assert dead.headers["x-error-message"] == "boom"
    assert dead.headers["x-attempts"] == "3"
    assert dead.headers["x-original-topic"] == event_type
    assert dead.headers["x-consumer-group"] == "billing"
    assert "x-failed-at" in dead.headers
    assert hub.queued("billing") == []


async def test_handler_that_recovers_on_a_retry_is_not_dead_lettered(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """One failure then success: handled twice, acked, nothing in the DLQ."""
    calls, handler = failing(1, lambda: ConnectionError("flaky"))
    await broker.subscribe("billing", [event_type], handler, retry=FAST_RETRY)  # type: ignore[arg-type]
    await broker.publish(event_type, {"seq": 1})
    await hub.wait_idle()

    assert len(calls) == 2
    assert hub.dead_letters("billing") == []


async def test_dead_letter_exception_skips_retries(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """A handler raising DeadLetter is run once and its message goes straight to the DLQ."""
    calls, handler = failing(99, lambda: DeadLetter("not for us"))
    await broker.subscribe("billing", [event_type], handler, retry=FAST_RETRY)  # type: ignore[arg-type]
    await broker.publish(event_type, {"seq": 1})
    await hub.wait_idle()

    assert len(calls) == 1
    [dead] = hub.dead_letters("billing")
    assert dead.headers["x-error-type"] == "DeadLetter"
    assert dead.headers["x-attempts"] == "1"


async def test_undecodable_body_goes_to_the_dlq_at_once_and_the_consumer_keeps_going(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """A body that is not single-object Avro never reaches the handler; the next one does."""
    calls, handler = failing(0, lambda: RuntimeError("unused"))
    await broker.subscribe("billing", [event_type], handler, retry=FAST_RETRY)  # type: ignore[arg-type]
    hub.publish(
        StoredMessage(
            topic=event_type,
            body=b"not avro",
            attributes={"id": "poison", "type": event_type},
            headers={},
            content_type="application/avro",
        )
    )
    await broker.publish(event_type, {"seq": 2})
    await hub.wait_idle()

    assert [e.data["seq"] for e in calls] == [2]
    [dead] = hub.dead_letters("billing")
    assert dead.body == b"not avro"
    assert dead.headers["x-error-type"] == "DecodeError"
    assert dead.headers["x-attempts"] == "1"


async def test_each_delivery_is_settled_once(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """Every message is handled exactly once and acked; settling again changes nothing."""
    handled: list[int] = []

    async def handler(event: Event) -> None:
        handled.append(event.data["seq"])

    await broker.subscribe("billing", [event_type], handler, prefetch=4, concurrency=2)
    await broker.publish_many(broker.event(event_type, {"seq": n}) for n in range(20))
    await hub.wait_idle()

    assert sorted(handled) == list(range(20))
    assert hub.unsettled() == 0
    assert hub.queued("billing") == []
    assert hub.dead_letters("billing") == []


async def test_settling_a_delivery_twice_is_a_no_op(hub: InMemoryBroker, event_type: str) -> None:
    """ack after ack, or dead_letter after ack, neither fails nor leaves a copy behind."""
    url = BrokerURL.parse("amqp://memory/")
    transport = hub.transport_class(url, url.endpoints[0], TransportOptions())
    await transport.connect()
    received: list[Delivery] = []
    spec = SubscriptionSpec(group="billing", topics=(event_type,))
    await transport.subscribe(spec, received.append)
    hub.publish(StoredMessage(event_type, b"x", {"id": "1"}, {}, None))
    await asyncio.sleep(0)
    [delivery] = received
    await delivery.ack()
    await delivery.ack()
    await delivery.dead_letter({"x-error-type": "Late"})
    await delivery.retry(0, {})
    assert hub.dead_letters("billing") == []
    assert hub.queued("billing") == []
    assert hub.unsettled() == 0
    await transport.close()


async def test_shutdown_lets_in_flight_handlers_finish_and_acks_them(
    hub: InMemoryBroker, registry: SchemaRegistry, event_type: str
) -> None:
    """close() stops new deliveries, waits for running handlers, acks their messages."""
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[int] = []

    async def handler(event: Event) -> None:
        started.set()
        await release.wait()
        finished.append(event.data["seq"])

    broker = Broker(
        "amqp://memory/",
        source="//tests/unit",
        registry=registry,
        transport_class=hub.transport_class,
    )
    await broker.start()
    await broker.subscribe("billing", [event_type], handler, prefetch=1, concurrency=1)
    await broker.publish(event_type, {"seq": 1})
    await broker.publish(event_type, {"seq": 2})
    await asyncio.wait_for(started.wait(), 2)

    closing = asyncio.create_task(broker.close(timeout=5))
    await asyncio.sleep(0.05)
    assert not closing.done(), "close() returned while a handler was still running"
    release.set()
    await asyncio.wait_for(closing, 5)

    assert finished == [1]
    assert hub.unsettled() == 0
    # The message not yet started stays in the queue for the next consumer.
    assert [m.body for m in hub.queued("billing")] != []


async def test_shutdown_cancels_handlers_that_overrun_and_their_message_returns(
    hub: InMemoryBroker, registry: SchemaRegistry, event_type: str
) -> None:
    """A handler still running at the drain timeout is cancelled; its message is redelivered."""

    async def handler(_event: Event) -> None:
        await asyncio.sleep(60)

    broker = Broker(
        "amqp://memory/",
        source="//tests/unit",
        registry=registry,
        transport_class=hub.transport_class,
    )
    await broker.start()
    await broker.subscribe("billing", [event_type], handler)
    await broker.publish(event_type, {"seq": 1})
    await asyncio.sleep(0.01)
    await asyncio.wait_for(broker.close(timeout=0.05), 2)

    [back] = hub.queued("billing")
    assert back.redelivered


async def test_lost_connection_reconnects_resubscribes_and_redelivers(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """After a dropped connection the unsettled message comes back and is handled."""
    gate = asyncio.Event()
    handled: list[tuple[int, bool]] = []

    async def handler(event: Event) -> None:
        await gate.wait()
        handled.append((event.data["seq"], event.extensions.get(ATTEMPT_HEADER) == "1"))

    await broker.subscribe("billing", [event_type], handler)
    await broker.publish(event_type, {"seq": 7})
    await asyncio.sleep(0.01)
    hub.drop_connections()
    gate.set()
    await _eventually(lambda: broker.reconnects == 1 and broker.connected)
    await hub.wait_idle()

    # The first run's ack failed (connection gone), so the message ran again on the new one.
    assert [seq for seq, _ in handled] == [7, 7]
    assert hub.unsettled() == 0


async def test_mandatory_publish_with_no_group_bound_is_unroutable(
    broker: Broker, event_type: str
) -> None:
    """Publishing a topic no group listens to raises UnroutableError."""
    with pytest.raises(UnroutableError):
        await broker.publish(event_type, {"seq": 1})


async def _eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


async def test_dead_letters_can_be_replayed_to_the_group(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """A dead-lettered message consumed from the DLQ and retried is handled again by its group."""
    calls, handler = failing(1, lambda: DeadLetter("bad the first time"))
    await broker.subscribe("billing", [event_type], handler)  # type: ignore[arg-type]
    sent = await broker.publish(event_type, {"seq": 1})
    await hub.wait_idle()
    assert len(hub.dead_letters("billing")) == 1

    replayed: list[Delivery] = []
    spec = SubscriptionSpec(group="billing", topics=(event_type,))
    await broker.transport.consume_dead_letters(spec, replayed.append)
    await _eventually(lambda: len(replayed) == 1)
    assert replayed[0].headers["x-error-type"] == "DeadLetter"
    await replayed[0].retry(0, {})
    await hub.wait_idle()

    assert [e.id for e in calls] == [sent.id, sent.id]
    assert hub.dead_letters("billing") == []


async def test_refused_subscription_is_not_retried_on_reconnect(
    broker: Broker, hub: InMemoryBroker, event_type: str
) -> None:
    """A subscribe the transport refused raises once and is forgotten: a later reconnect
    resubscribes only the groups that were accepted."""
    _calls, handler = failing(0, lambda: RuntimeError("unused"))
    with pytest.raises(ConfigurationError):
        await broker.subscribe("bad", ["orders.#x"], handler)  # type: ignore[arg-type]
    await broker.subscribe("good", [event_type], handler)  # type: ignore[arg-type]
    hub.drop_connections()
    await _eventually(lambda: broker.reconnects == 1 and broker.connected)
    await asyncio.sleep(0.05)
    assert broker.reconnects == 1
    await broker.publish(event_type, {"seq": 1})
