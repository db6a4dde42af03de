"""Failing handlers retry with backoff then dead-letter; poison messages dead-letter at once;
the consumer keeps running through both."""

from __future__ import annotations

import asyncio
import itertools
import time

from broker import DeadLetter, RetryPolicy, dead_letters
from broker.transport import OutgoingMessage, SubscriptionSpec
from tests.conformance._support import DeadLetters, Inbox, eventually, ping

FAST = RetryPolicy(max_attempts=3, initial_delay=0.2, multiplier=2.0)


class FixableHandler:
    """Dead-letters every event until ``broken`` is set False, then collects them."""

    def __init__(self) -> None:
        self.broken = True
        self.inbox = Inbox()

    async def __call__(self, event):
        if self.broken:
            raise DeadLetter("bug")
        await self.inbox(event)


async def _watch_dlq(broker, group, topics):
    dead = DeadLetters()
    spec = SubscriptionSpec(group=group, topics=tuple(topics))
    await broker.transport.consume_dead_letters(spec, dead)
    return dead


async def test_failing_handler_retries_with_backoff_then_dead_letters(make_broker, namespace, uid):
    """A handler that always fails is called max_attempts times with growing delays, then the
    message is dead-lettered with the error, attempts and origin in its headers."""
    broker = make_broker()
    await broker.start()
    calls: list[tuple[float, str]] = []

    async def failing(event):
        calls.append((time.monotonic(), event.extensions["x-attempt"]))
        raise ValueError(f"boom {event.data['seq']}")

    group = f"g{uid}"
    await broker.subscribe(group, [f"{namespace}.Ping"], failing, retry=FAST)
    dead = await _watch_dlq(broker, group, [f"{namespace}.Ping"])
    sent = await broker.publish(f"{namespace}.Ping", ping(1), subject="s-1")

    await eventually(lambda: len(dead.deliveries) == 1, timeout=20, what="dead letter")
    assert [attempt for _, attempt in calls] == ["1", "2", "3"]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.15, gaps
    assert gaps[1] >= 0.3, gaps

    letter = dead.deliveries[0]
    assert letter.attributes["id"] == sent.id
    assert letter.attributes["subject"] == "s-1"
    assert letter.headers["x-error-type"] == "ValueError"
    assert letter.headers["x-error-message"] == "boom 1"
    assert letter.headers["x-attempts"] == "3"
    assert letter.headers["x-original-topic"] == f"{namespace}.Ping"
    assert letter.headers["x-consumer-group"] == group
    assert "x-failed-at" in letter.headers
    assert broker.codec.decode(letter.body)[1] == ping(1)


async def test_handler_that_recovers_is_not_dead_lettered(make_broker, namespace, uid):
    """A transient failure is retried and then handled once; nothing reaches the DLQ."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    failures = {"left": 1}

    async def flaky(event):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database blinked")
        await inbox(event)

    group = f"g{uid}"
    await broker.subscribe(group, [f"{namespace}.Ping"], flaky, retry=FAST)
    dead = await _watch_dlq(broker, group, [f"{namespace}.Ping"])
    await broker.publish(f"{namespace}.Ping", ping(1))
    await eventually(lambda: len(inbox.events) == 1)
    assert inbox.events[0].extensions["x-attempt"] == "2"
    await asyncio.sleep(0.5)
    assert dead.deliveries == []


async def test_dead_letter_raised_by_handler_skips_retries(make_broker, namespace, uid):
    """DeadLetter from a handler sends the message to the DLQ on the first attempt."""
    broker = make_broker()
    await broker.start()
    calls = []

    async def refuse(event):
        calls.append(event.id)
        raise DeadLetter("order does not exist")

    group = f"g{uid}"
    await broker.subscribe(group, [f"{namespace}.Ping"], refuse, retry=FAST)
    dead = await _watch_dlq(broker, group, [f"{namespace}.Ping"])
    await broker.publish(f"{namespace}.Ping", ping(1))
    await eventually(lambda: len(dead.deliveries) == 1)
    assert len(calls) == 1
    assert dead.deliveries[0].headers["x-error-type"] == "DeadLetter"
    assert dead.deliveries[0].headers["x-attempts"] == "1"


async def test_poison_messages_dead_letter_at_once_and_consumer_keeps_running(
    make_broker, namespace, uid
):
    """Garbage bodies and unknown fingerprints skip the handler, go to the DLQ with a
    DecodeError, and good messages after them are still handled."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    group = f"g{uid}"
    await broker.subscribe(group, [f"{namespace}.Ping"], inbox, retry=FAST)
    dead = await _watch_dlq(broker, group, [f"{namespace}.Ping"])
    attributes = {
        "id": "poison",
        "type": f"{namespace}.Ping",
        "source": "//evil",
        "specversion": "1.0",
        "time": "2026-01-01T00:00:00+00:00",
    }
    for body in (b"not avro at all", b"\xc3\x01" + b"\x00" * 8 + b"\x02"):
        await broker.transport.publish(
            OutgoingMessage(
                topic=f"{namespace}.Ping",
                body=body,
                attributes=attributes,
                headers={},
                content_type="application/avro",
            ),
            timeout=10,
        )
    await broker.publish(f"{namespace}.Ping", ping(9))

    await eventually(lambda: len(dead.deliveries) == 2 and len(inbox.events) == 1)
    assert {d.headers["x-error-type"] for d in dead.deliveries} == {"DecodeError"}
    assert any("fingerprint" in d.headers["x-error-message"] for d in dead.deliveries)
    assert {d.body[:4] for d in dead.deliveries} == {b"not ", b"\xc3\x01\x00\x00"}
    assert inbox.seqs == [9]


async def test_replayed_dead_letter_is_handled_once(make_broker, namespace, uid):
    """Retrying a dead-letter delivery returns it to the group's live queue, where a fixed
    handler processes it exactly once."""
    broker = make_broker()
    await broker.start()
    handler = FixableHandler()
    inbox = handler.inbox
    group = f"g{uid}"
    topics = [f"{namespace}.Ping"]
    await broker.subscribe(group, topics, handler, retry=FAST)
    letters = []
    spec = SubscriptionSpec(group=group, topics=tuple(topics))
    consumer = await broker.transport.consume_dead_letters(spec, letters.append)
    await broker.publish(f"{namespace}.Ping", ping(4))
    await eventually(lambda: len(letters) == 1)

    handler.broken = False
    await letters[0].retry(0, {"x-replayed": "1"})
    await consumer.cancel()
    await eventually(lambda: len(inbox.events) == 1)
    await asyncio.sleep(0.5)
    assert inbox.seqs == [4]
    assert inbox.events[0].extensions.get("x-replayed") == "1"


async def test_replaying_the_last_collected_dead_letter_takes_it_off_the_queue(
    make_broker, namespace, uid
):
    """`collect` stops consuming before the letters are settled: replaying the one settled
    last (as `shopmq dlq replay` does after releasing the others) still removes it from the
    dead-letter queue, and the released ones stay."""
    broker = make_broker()
    await broker.start()
    handler = FixableHandler()
    inbox = handler.inbox
    group = f"g{uid}"
    topics = (f"{namespace}.Ping",)
    await broker.subscribe(group, list(topics), handler, retry=FAST)
    sent = [await broker.publish(f"{namespace}.Ping", ping(seq)) for seq in (1, 2, 3)]
    spec = SubscriptionSpec(group=group, topics=topics)

    async def letters():
        collected = await dead_letters.collect(broker.transport, spec, idle=0.5)
        return {letter.attributes["id"]: letter for letter in collected}

    deadline = time.monotonic() + 20
    while len(collected := await letters()) < 3:
        await asyncio.gather(*(letter.release() for letter in collected.values()))
        assert time.monotonic() < deadline, f"{len(collected)} of 3 dead letters"
    handler.broken = False
    assert set(collected) == {event.id for event in sent}
    last = sent[2].id
    for event_id, letter in collected.items():
        if event_id != last:
            await letter.release()
    await dead_letters.replay(collected[last])

    await eventually(lambda: len(inbox.events) == 1, what="the replayed event handled")
    remaining = await letters()
    await asyncio.gather(*(letter.release() for letter in remaining.values()))
    assert set(remaining) == {sent[0].id, sent[1].id}
    assert inbox.seqs == [3]
