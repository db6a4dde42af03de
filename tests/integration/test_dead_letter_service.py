"""The operators' DeadLetterService over real gRPC and a real broker: list shows why each
message was dead-lettered (and leaves it), replay sends it back to be handled once."""

from __future__ import annotations

import asyncio
import json
import uuid

import grpc
import pytest
from grpc_status import rpc_status

from broker import Broker, DeadLetter, SchemaRegistry
from services.audit.dead_letters import DeadLetterServicer
from services.runtime import create_server
from shop.audit.v1 import audit_pb2, audit_pb2_grpc
from tests.support.names import unique_hex

RABBIT = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def registry(tmp_path):
    folder = tmp_path / "schemas" / "Thing"
    folder.mkdir(parents=True)
    (folder / "v1.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "Thing",
                "namespace": f"dlqsvc.t{uuid.uuid4().hex[:8]}.v1",
                "fields": [{"name": "n", "type": "int"}],
            }
        )
    )
    return SchemaRegistry.from_directory(tmp_path / "schemas")


async def test_list_then_replay_dead_letters(registry):
    """Two dead letters are listed with their errors and stay; replaying one by id brings it
    back to the fixed handler exactly once; the other remains."""
    event_type = registry.names[0]
    group = f"ops{unique_hex()}"
    handled: list[int] = []
    broken = {"yes": True}

    async def handler(event):
        if broken["yes"]:
            raise DeadLetter(f"cannot handle {event.data['n']}")
        handled.append(event.data["n"])

    async with Broker(RABBIT, source="//ops", registry=registry, name="dlq-svc") as broker:
        await broker.subscribe(group, [event_type], handler)
        first = await broker.publish(event_type, {"n": 1}, subject="s-1")
        await broker.publish(event_type, {"n": 2})
        servicer = DeadLetterServicer(
            broker, patterns=lambda g: (event_type,) if g == group else (), idle=0.5
        )
        server = await create_server(
            "audit",
            services=[
                (
                    audit_pb2.DESCRIPTOR.services_by_name["DeadLetterService"],
                    servicer,
                    audit_pb2_grpc.add_DeadLetterServiceServicer_to_server,
                )
            ],
            address="127.0.0.1:0",
        )
        await server.start()
        port = server.port
        await asyncio.sleep(1.0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = audit_pb2_grpc.DeadLetterServiceStub(channel)
            listed = await stub.ListDeadLetters(audit_pb2.ListDeadLettersRequest(group=group))
            again = await stub.ListDeadLetters(audit_pb2.ListDeadLettersRequest(group=group))
            broken["yes"] = False
            replayed = await stub.ReplayDeadLetters(
                audit_pb2.ReplayDeadLettersRequest(group=group, event_ids=[first.id])
            )
            for _ in range(100):
                if handled:
                    break
                await asyncio.sleep(0.05)
            left = await stub.ListDeadLetters(audit_pb2.ListDeadLettersRequest(group=group))
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await stub.ListDeadLetters(audit_pb2.ListDeadLettersRequest(group="nobody"))
        await server.stop()

    by_id = {d.event_id: d for d in listed.dead_letters}
    assert len(by_id) == 2
    letter = by_id[first.id]
    assert letter.error_type == "DeadLetter"
    assert letter.error_message == "cannot handle 1"
    assert letter.attempts == 1
    assert letter.subject == "s-1"
    assert letter.data["n"] == 1
    assert letter.failed_time.seconds > 0
    assert len(again.dead_letters) == 2, "listing must leave the messages in the queue"
    assert (replayed.replayed, replayed.remaining) == (1, 1)
    assert handled == [1]
    assert [d.data["n"] for d in left.dead_letters] == [2]
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert rpc_status.from_call(unknown.value) is not None
