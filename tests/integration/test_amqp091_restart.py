"""AMQP 0-9-1 across a restart of a private RabbitMQ node: what is durable stays."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING

from broker import Broker, SchemaRegistry
from tests.support.rabbitmq_node import private_rabbitmq

if TYPE_CHECKING:
    from pathlib import Path

    from broker import Event


def _registry(root: Path) -> SchemaRegistry:
    folder = root / "Ping"
    folder.mkdir(parents=True)
    schema = {
        "type": "record",
        "name": "Ping",
        "namespace": f"restart.t{uuid.uuid4().hex[:8]}.v1",
        "fields": [{"name": "seq", "type": "int"}],
    }
    (folder / "v1.avsc").write_text(json.dumps(schema))
    return SchemaRegistry.from_directory(root)


async def test_queued_events_survive_a_node_restart(tmp_path: Path) -> None:
    """Persistent messages waiting in a group's quorum queue are still there after the node
    restarts, and the consumer that comes back gets every one of them."""
    registry = _registry(tmp_path / "schemas")
    event_type = registry.names[0]
    received: list[int] = []

    async def handler(event: Event) -> None:
        received.append(event.data["seq"])

    async with private_rabbitmq(tmp_path / "node") as node:
        broker = Broker(node.url, source="//restart", registry=registry, name="restart-producer")
        async with broker:
            subscription = await broker.subscribe("keeper", [event_type], handler)
            await subscription.stop()
            await broker.publish_many(broker.event(event_type, {"seq": n}) for n in range(50))

        await node.restart()

        consumer = Broker(node.url, source="//restart", registry=registry, name="restart-consumer")
        async with consumer:
            await consumer.subscribe("keeper", [event_type], handler)
            async with asyncio.timeout(15):
                while len(received) < 50:
                    await asyncio.sleep(0.05)
    assert sorted(received) == list(range(50))
