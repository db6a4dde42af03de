"""Topology: wildcard patterns, fan-out across groups, competing consumers within a group."""

from __future__ import annotations

import asyncio

from tests.conformance._support import Inbox, eventually, ping


async def test_wildcard_patterns_route_by_event_type(make_broker, namespace, uid):
    """`*` matches one word and `#` any trailing words; other types are not delivered."""
    broker = make_broker()
    await broker.start()
    star, hash_, exact = Inbox(), Inbox(), Inbox()
    prefix = namespace.rsplit(".", 1)[0]  # conf.t<uid>
    await broker.subscribe(f"s{uid}", [f"{namespace}.*"], star)
    await broker.subscribe(f"h{uid}", [f"{prefix}.#"], hash_)
    await broker.subscribe(f"e{uid}", [f"{namespace}.Pong"], exact)

    await broker.publish(f"{namespace}.Ping", ping(1))
    await broker.publish(f"{namespace}.Pong", ping(2))
    await broker.publish(f"{namespace}.Other", ping(3))

    await eventually(lambda: len(star.events) == 3 and len(hash_.events) == 3, what="wildcards")
    await eventually(lambda: len(exact.events) == 1, what="exact")
    await asyncio.sleep(0.3)
    assert star.seqs == [1, 2, 3]
    assert hash_.seqs == [1, 2, 3]
    assert exact.seqs == [2]
    assert {e.type.rsplit(".", 1)[1] for e in hash_.events} == {"Ping", "Pong", "Other"}


async def test_one_group_several_topics(make_broker, namespace, uid):
    """A group subscribed to two topics receives both and nothing else."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping", f"{namespace}.Pong"], inbox)
    for n, kind in enumerate(["Ping", "Pong", "Other", "Ping"]):
        await broker.publish(f"{namespace}.{kind}", ping(n), mandatory=False)
    await eventually(lambda: len(inbox.events) == 3)
    await asyncio.sleep(0.3)
    assert inbox.seqs == [0, 1, 3]


async def test_every_group_gets_every_event(make_broker, namespace, uid):
    """Two consumer groups each receive all events (fan-out)."""
    broker = make_broker()
    await broker.start()
    first, second = Inbox(), Inbox()
    await broker.subscribe(f"a{uid}", [f"{namespace}.Ping"], first)
    await broker.subscribe(f"b{uid}", [f"{namespace}.Ping"], second)
    for n in range(20):
        await broker.publish(f"{namespace}.Ping", ping(n))
    await eventually(lambda: len(first.events) == 20 and len(second.events) == 20)
    assert first.seqs == second.seqs == list(range(20))


async def test_consumers_of_one_group_share_the_events(make_broker, namespace, uid):
    """Two consumers (separate connections) in one group split the events: each event is
    handled once, and both consumers get some."""
    producer = make_broker()
    one, two = make_broker(), make_broker()
    await asyncio.gather(producer.start(), one.start(), two.start())
    inbox_one, inbox_two = Inbox(), Inbox()

    async def slow_one(event):
        await asyncio.sleep(0.01)
        await inbox_one(event)

    async def slow_two(event):
        await asyncio.sleep(0.01)
        await inbox_two(event)

    await one.subscribe(f"g{uid}", [f"{namespace}.Ping"], slow_one, prefetch=2, concurrency=1)
    await two.subscribe(f"g{uid}", [f"{namespace}.Ping"], slow_two, prefetch=2, concurrency=1)
    await producer.publish_many(producer.event(f"{namespace}.Ping", ping(n)) for n in range(60))

    total = lambda: len(inbox_one.events) + len(inbox_two.events)  # noqa: E731
    await eventually(lambda: total() >= 60, timeout=30, what="60 deliveries across the group")
    await asyncio.sleep(0.3)
    assert sorted(inbox_one.seqs + inbox_two.seqs) == list(range(60))
    assert inbox_one.events, "first consumer got none"
    assert inbox_two.events, "second consumer got none"


async def test_subscription_persists_while_consumer_is_offline(make_broker, namespace, uid):
    """Events published while a group's consumer is stopped wait in its durable queue."""
    broker = make_broker()
    await broker.start()
    inbox = Inbox()
    subscription = await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox)
    await subscription.stop()
    for n in range(5):
        await broker.publish(f"{namespace}.Ping", ping(n))

    later = make_broker()
    await later.start()
    late_inbox = Inbox()
    await later.subscribe(f"g{uid}", [f"{namespace}.Ping"], late_inbox)
    await eventually(lambda: len(late_inbox.events) == 5)
    assert late_inbox.seqs == list(range(5))
