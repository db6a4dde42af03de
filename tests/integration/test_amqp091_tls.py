"""AMQP 0-9-1 over TLS (amqps://) to a RabbitMQ node whose certificate a test CA signed."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from broker import Broker, BrokerConnectionError, SchemaRegistry
from tests.support.rabbitmq_node import private_rabbitmq
from tests.support.tls import make_test_ca


@pytest.fixture
async def tls_node(tmp_path):
    ca = make_test_ca(tmp_path / "ca")
    async with private_rabbitmq(tmp_path / "node", tls=ca) as node:
        yield node


@pytest.fixture
def registry(tmp_path):
    folder = tmp_path / "schemas" / "Hello"
    folder.mkdir(parents=True)
    (folder / "v1.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "Hello",
                "namespace": f"tls.t{uuid.uuid4().hex[:8]}.v1",
                "fields": [{"name": "text", "type": "string"}],
            }
        )
    )
    return SchemaRegistry.from_directory(tmp_path / "schemas")


async def test_round_trip_over_tls_with_a_custom_ca(tls_node, registry):
    """amqps:// with ?cafile= verifies the broker's certificate and carries events."""
    event_type = registry.names[0]
    received = []

    async def handler(event):
        received.append(event.data["text"])

    async with Broker(tls_node.tls_url, source="//tls", registry=registry, name="tls") as broker:
        assert broker.transport.endpoint.tls
        await broker.subscribe("tls", [event_type], handler)
        await broker.publish(event_type, {"text": "secret"})
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
    assert received == ["secret"]


async def test_unknown_certificate_authority_is_refused(tls_node, registry):
    """Without the CA the certificate does not verify: start-up fails with a clear error."""
    url = tls_node.tls_url.split("?", 1)[0]
    broker = Broker(url, source="//tls", registry=registry, connect_timeout=1.0)
    with pytest.raises(BrokerConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await broker.start()
