"""STOMP over TLS (stomp+ssl://) to an ActiveMQ whose certificate a test CA signed."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from broker import Broker, BrokerConnectionError, SchemaRegistry
from tests.support.activemq_instance import private_activemq
from tests.support.tls import make_test_ca


@pytest.fixture
async def tls_broker(tmp_path):
    ca = make_test_ca(tmp_path / "ca")
    async with private_activemq(tmp_path / "amq", tls=ca) as instance:
        yield instance


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


async def test_round_trip_over_stomp_ssl_with_a_custom_ca(tls_broker, registry):
    """stomp+ssl:// with ?cafile= verifies ActiveMQ's certificate and carries events."""
    event_type = registry.names[0]
    received = []

    async def handler(event):
        received.append(event.data["text"])

    async with Broker(tls_broker.tls_url, source="//tls", registry=registry, name="tls") as b:
        assert b.transport.endpoint.tls
        await b.subscribe("tls", [event_type], handler)
        await b.publish(event_type, {"text": "secret"})
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
    assert received == ["secret"]


async def test_stomp_ssl_refuses_an_unknown_certificate_authority(tls_broker, registry):
    """Without the CA, the handshake fails and start-up says why."""
    url = tls_broker.tls_url.split("?", 1)[0]
    broker = Broker(url, source="//tls", registry=registry, connect_timeout=1.0)
    with pytest.raises(BrokerConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await broker.start()
