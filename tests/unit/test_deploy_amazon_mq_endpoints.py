"""broker.aws: failover URLs from describe_broker responses shaped as AWS documents them, and
the unmasked URL text handed to a child process."""

from __future__ import annotations

import pytest

from broker.aws import failover_url, url_with_credentials
from broker.errors import ConfigurationError
from broker.url import BrokerURL

BROKER = "b-1234a5b6-78cd-901e-2fgh-3i45j6k178l9"


def _instance(n: int) -> dict:
    host = f"{BROKER}-{n}.mq.eu-west-1.amazonaws.com"
    return {
        "ConsoleURL": f"https://{host}:8162",
        "Endpoints": [
            f"ssl://{host}:61617",
            f"amqp+ssl://{host}:5671",
            f"stomp+ssl://{host}:61614",
            f"mqtt+ssl://{host}:8883",
            f"wss://{host}:61619",
        ],
        "IpAddress": f"10.0.{n}.10",
    }


ACTIVE_STANDBY = {
    "BrokerId": BROKER,
    "BrokerName": "shop",
    "BrokerState": "RUNNING",
    "EngineType": "ActiveMQ",
    "DeploymentMode": "ACTIVE_STANDBY_MULTI_AZ",
    "BrokerInstances": [_instance(1), _instance(2)],
}


def test_active_standby_pair_becomes_a_failover_url_active_first():
    """Both instances' STOMP endpoints, in AWS's order, form one failover URL."""
    url = failover_url(ACTIVE_STANDBY)
    assert [e.host for e in url.endpoints] == [
        f"{BROKER}-1.mq.eu-west-1.amazonaws.com",
        f"{BROKER}-2.mq.eu-west-1.amazonaws.com",
    ]
    assert {(e.scheme, e.port, e.tls) for e in url.endpoints} == {("stomp+ssl", 61614, True)}
    assert str(url).startswith(f"failover:(stomp+ssl://{BROKER}-1.")


def test_amqp10_pair_uses_the_amqp_ssl_endpoints():
    """protocol='amqp10' takes each instance's amqp+ssl endpoint for the AMQP 1.0 transport."""
    url = failover_url(ACTIVE_STANDBY, protocol="amqp10")
    assert url.transport == "amqp10"
    assert [e.port for e in url.endpoints] == [5671, 5671]


def test_broker_still_being_created_has_no_endpoint():
    """A broker without instances yet fails naming its state, instead of an empty URL."""
    creating = {**ACTIVE_STANDBY, "BrokerState": "CREATION_IN_PROGRESS", "BrokerInstances": []}
    with pytest.raises(ConfigurationError, match="state CREATION_IN_PROGRESS"):
        failover_url(creating)


def test_unknown_protocol_and_engine_are_rejected():
    """Only stomp/amqp10 (ActiveMQ) and amqp091 (RabbitMQ) are understood."""
    with pytest.raises(ConfigurationError, match="protocol 'mqtt' unknown"):
        failover_url(ACTIVE_STANDBY, protocol="mqtt")
    with pytest.raises(ConfigurationError, match="unknown engine"):
        failover_url({**ACTIVE_STANDBY, "EngineType": "KAFKA"})


@pytest.mark.parametrize(
    "text",
    [
        "stomp+ssl://shop:p%40ss%2Fw%3Ard@b-1.mq.eu-west-1.amazonaws.com:61614",
        "failover:(amqp+ssl://u:x@a:5671,amqp+ssl://u:x@b:5671)?heartbeat=10",
        "amqps://shop:pw@rabbit:5671/vhost",
        "stomp://localhost:61613",
    ],
)
def test_url_with_credentials_reads_back_as_the_same_url(text):
    """The unmasked text handed to a child process parses back to an equal BrokerURL."""
    url = BrokerURL.parse(text)
    assert BrokerURL.parse(url_with_credentials(url)) == url
