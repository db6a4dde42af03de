"""Every transport over TLS to a broker whose certificate a throwaway CA signed: with the CA
(URL option ``cafile``) events flow; without it start-up fails and says why.

amqps:// and amqp10+ssl:// reach a private RabbitMQ node's TLS listener; stomp+ssl:// a
private ActiveMQ with a PKCS#12 keystore."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager

import pytest

from broker import Broker, BrokerConnectionError, SchemaRegistry
from tests.support.activemq_instance import private_activemq
from tests.support.rabbitmq_node import private_rabbitmq
from tests.support.tls import make_test_ca


@asynccontextmanager
async def _amqps(tmp_path, ca):
    async with private_rabbitmq(tmp_path / "node", tls=ca) as node:
        yield f"amqps://guest:guest@127.0.0.1:{node.tls_port}/", ""


@asynccontextmanager
async def _amqp10(tmp_path, ca):
    async with private_rabbitmq(tmp_path / "node", scheme="amqp10", tls=ca) as node:
        # localhost: proton checks the peer name against DNS names only, not IP addresses.
        yield f"amqp10+ssl://guest:guest@localhost:{node.tls_port}", "dialect=rabbitmq"


@asynccontextmanager
async def _stomp(tmp_path, ca):
    async with private_activemq(tmp_path / "amq", tls=ca) as instance:
        yield f"stomp+ssl://localhost:{instance.ssl_port}", ""


BROKERS = {"amqp091": _amqps, "amqp10": _amqp10, "stomp": _stomp}


@pytest.fixture(params=sorted(BROKERS))
async def tls_broker(request, tmp_path):
    ca = make_test_ca(tmp_path / "ca")
    async with BROKERS[request.param](tmp_path, ca) as (url, query):
        yield url, query, ca


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


def _with(url: str, *options: str) -> str:
    query = "&".join(o for o in options if o)
    return f"{url}?{query}" if query else url


async def test_round_trip_over_tls_with_a_custom_ca(tls_broker, registry):
    """With ?cafile= the broker's certificate verifies and events flow both ways."""
    url, query, ca = tls_broker
    event_type = registry.names[0]
    received = []

    async def handler(event):
        received.append(event.data["text"])

    full = _with(url, query, f"cafile={ca.cafile}")
    async with Broker(full, source="//tls", registry=registry, name="tls") as broker:
        assert broker.transport.endpoint.tls
        await broker.subscribe("tls", [event_type], handler)
        await broker.publish(event_type, {"text": "secret"})
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
    assert received == ["secret"]


async def test_unknown_certificate_authority_is_refused(tls_broker, registry):
    """Without the CA the handshake fails: start-up raises a clear BrokerConnectionError."""
    url, query, _ca = tls_broker
    broker = Broker(_with(url, query), source="//tls", registry=registry, connect_timeout=2.0)
    with pytest.raises(BrokerConnectionError, match=r"(?i)certificate"):
        await broker.start()
