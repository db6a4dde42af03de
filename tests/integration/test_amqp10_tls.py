"""AMQP 1.0 over TLS (amqp10+ssl://, proton's own TLS over the asyncio stream) to a RabbitMQ
node whose certificate a test CA signed."""

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
    async with private_rabbitmq(tmp_path / "node", scheme="amqp10", tls=ca) as node:
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


def _url(node, *, cafile: bool) -> str:
    query = "dialect=rabbitmq" + (f"&cafile={node.tls.cafile}" if cafile else "")
    # localhost: proton checks the peer name against DNS names only, not IP addresses.
    return f"amqp10+ssl://guest:guest@localhost:{node.tls_port}?{query}"


async def test_round_trip_over_tls_with_a_custom_ca(tls_node, registry):
    """amqp10+ssl:// with ?cafile= verifies the broker's certificate and carries events (the
    topology side connection uses TLS on the same listener)."""
    event_type = registry.names[0]
    received = []

    async def handler(event):
        received.append(event.data["text"])

    url = _url(tls_node, cafile=True)
    async with Broker(url, source="//tls", registry=registry, name="tls10") as broker:
        assert broker.transport.endpoint.tls
        await broker.subscribe("tls10", [event_type], handler)
        await broker.publish(event_type, {"text": "secret"})
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
    assert received == ["secret"]


async def test_unknown_certificate_authority_is_refused(tls_node, registry):
    """Without the CA the certificate does not verify: start-up fails with a clear error."""
    url = _url(tls_node, cafile=False)
    broker = Broker(url, source="//tls", registry=registry, connect_timeout=2.0)
    with pytest.raises(BrokerConnectionError, match=r"(?i)certificate"):
        await broker.start()
