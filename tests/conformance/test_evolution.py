"""Schema evolution: producers and consumers on different versions of one schema interoperate."""

from __future__ import annotations

from broker.transport import SubscriptionSpec
from tests.conformance._support import DeadLetters, Inbox, eventually, ping
from tests.conformance.conftest import write_schemas


async def test_old_and_new_schema_versions_decode_both_ways(make_broker, tmp_path, namespace, uid):
    """A service pinned to v1 and one on v2 (both holding every published version) interoperate:
    the v2 reader fills the new field's default, the v1 reader drops it."""
    schemas = write_schemas(tmp_path / "schemas", namespace, with_v2=True)
    old = make_broker(registry=schemas, schema_versions={f"{namespace}.Ping": 1})
    new = make_broker(registry=schemas)
    await old.start()
    await new.start()
    old_inbox, new_inbox = Inbox(), Inbox()
    await old.subscribe(f"old{uid}", [f"{namespace}.Ping"], old_inbox)
    await new.subscribe(f"new{uid}", [f"{namespace}.Ping"], new_inbox)

    await old.publish(f"{namespace}.Ping", ping(1))
    await new.publish(f"{namespace}.Ping", ping(2, note="from v2"))

    await eventually(lambda: len(old_inbox.events) == 2 and len(new_inbox.events) == 2)
    by_seq_old = {e.data["seq"]: e for e in old_inbox.events}
    by_seq_new = {e.data["seq"]: e for e in new_inbox.events}
    assert by_seq_new[1].data == ping(1, note=None)
    assert by_seq_new[2].data == ping(2, note="from v2")
    assert by_seq_old[1].data == ping(1)
    assert by_seq_old[2].data == ping(2)
    assert by_seq_old[1].dataschema == f"urn:avro:{namespace}.Ping:v1"
    assert by_seq_old[2].dataschema == f"urn:avro:{namespace}.Ping:v2"


async def test_consumer_without_the_writers_schema_dead_letters(
    make_broker, tmp_path, namespace, uid
):
    """A body written with a version the consumer's schemas lack cannot be decoded: it goes to
    the dead-letter queue (nothing is guessed), and the consumer keeps running."""
    only_v1 = write_schemas(tmp_path / "v1", namespace, with_v2=False)
    both = write_schemas(tmp_path / "v2", namespace, with_v2=True)
    stale, producer = make_broker(registry=only_v1), make_broker(registry=both)
    await stale.start()
    await producer.start()
    inbox, dead = Inbox(), DeadLetters()
    group = f"g{uid}"
    await stale.subscribe(group, [f"{namespace}.Ping"], inbox)
    await stale.transport.consume_dead_letters(
        SubscriptionSpec(group=group, topics=(f"{namespace}.Ping",)), dead
    )
    await producer.publish(f"{namespace}.Ping", ping(1, note="v2 only"))
    await stale.publish(f"{namespace}.Ping", ping(2))
    await eventually(lambda: len(dead.deliveries) == 1 and len(inbox.events) == 1)
    assert "unknown schema fingerprint" in dead.deliveries[0].headers["x-error-message"]
    assert inbox.seqs == [2]
