"""Schema evolution: producers and consumers on different versions of one schema interoperate."""

from __future__ import annotations

from tests.conformance._support import Inbox, eventually, ping
from tests.conformance.conftest import write_schemas


async def test_old_and_new_schema_versions_decode_both_ways(make_broker, tmp_path, namespace, uid):
    """A v1 producer's event is read by a v2 consumer (default filled in), and a v2 producer's
    event by a v1 consumer (new field dropped)."""
    v1 = write_schemas(tmp_path / "v1", namespace, with_v2=False)
    v2 = write_schemas(tmp_path / "v2", namespace, with_v2=True)
    old, new = make_broker(registry=v1), make_broker(registry=v2)
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
    assert by_seq_old[2].dataschema == f"urn:avro:{namespace}.Ping:v2"
