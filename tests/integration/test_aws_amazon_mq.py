"""broker.aws against a real moto_server: a broker id + secret ARN become a broker URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from broker.aws import broker_url_from_env, resolve_amazon_mq
from broker.errors import BrokerConnectionError, ConfigurationError
from broker.url import BrokerURL
from services.runtime import ConfigError, Settings
from tests.support.moto_server import REGION, moto_server, session
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch):
    """No real AWS identity can be picked up: dummy keys, the test region, no profile."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _broker(endpoint: str, engine: str = "ACTIVEMQ") -> str:
    mq = session().client("mq", endpoint_url=endpoint)
    modes = {
        "ACTIVEMQ": ("ACTIVE_STANDBY_MULTI_AZ", "5.18"),
        "RABBITMQ": ("CLUSTER_MULTI_AZ", "3.13"),
    }
    mode, version = modes[engine]
    reply = mq.create_broker(
        BrokerName=f"shop-{uuid.uuid4().hex[:12]}",
        EngineType=engine,
        EngineVersion=version,
        DeploymentMode=mode,
        HostInstanceType="mq.m5.large",
        PubliclyAccessible=False,
        AutoMinorVersionUpgrade=True,
        Users=[{"Username": "shop", "Password": "not-the-real-one"}],
    )
    return reply["BrokerId"]


def _secret(endpoint: str, value: str) -> str:
    secrets = session().client("secretsmanager", endpoint_url=endpoint)
    return secrets.create_secret(Name=f"shop/broker-{uuid.uuid4().hex}", SecretString=value)["ARN"]


CREDENTIALS = json.dumps({"username": "shop", "password": "s3cr3t-p@ss/word"})


def test_activemq_broker_resolves_to_stomp_over_tls_with_the_secret_credentials(endpoint):
    """ActiveMQ defaults to STOMP: stomp+ssl endpoints of every instance, secret's user/pass."""
    url = resolve_amazon_mq(
        _broker(endpoint), _secret(endpoint, CREDENTIALS), session=session(), endpoint_url=endpoint
    )
    assert url.transport == "stomp"
    assert url.tls
    assert [(e.scheme, e.port) for e in url.endpoints] == [("stomp+ssl", 61614)]
    assert (url.username, url.password) == ("shop", "s3cr3t-p@ss/word")
    assert "s3cr3t" not in str(url)
    assert "s3cr3t" not in repr(url)


def test_activemq_broker_resolves_to_amqp10_when_asked(endpoint):
    """protocol='amqp10' picks the amqp+ssl endpoints (the AMQP 1.0 transport)."""
    url = resolve_amazon_mq(
        _broker(endpoint),
        _secret(endpoint, CREDENTIALS),
        protocol="amqp10",
        session=session(),
        endpoint_url=endpoint,
    )
    assert url.transport == "amqp10"
    assert [(e.scheme, e.port) for e in url.endpoints] == [("amqp+ssl", 5671)]


def test_rabbitmq_broker_resolves_to_amqps(endpoint):
    """The RabbitMQ engine defaults to AMQP 0-9-1 over TLS (amqps, 5671)."""
    url = resolve_amazon_mq(
        _broker(endpoint, "RABBITMQ"),
        _secret(endpoint, CREDENTIALS),
        session=session(),
        endpoint_url=endpoint,
    )
    assert url.transport == "amqp091"
    assert [(e.scheme, e.port) for e in url.endpoints] == [("amqps", 5671)]


def test_protocol_the_engine_does_not_speak_is_a_configuration_error(endpoint):
    """Asking a RabbitMQ broker for STOMP fails with one line naming engine and protocol."""
    with pytest.raises(ConfigurationError, match="RABBITMQ, which does not speak stomp"):
        resolve_amazon_mq(
            _broker(endpoint, "RABBITMQ"),
            _secret(endpoint, CREDENTIALS),
            protocol="stomp",
            session=session(),
            endpoint_url=endpoint,
        )


def test_unknown_broker_id_is_a_configuration_error(endpoint):
    """describe_broker's NotFound becomes a ConfigurationError naming the broker id."""
    with pytest.raises(ConfigurationError, match="b-00000000-dead"):
        resolve_amazon_mq(
            "b-00000000-dead",
            _secret(endpoint, CREDENTIALS),
            session=session(),
            endpoint_url=endpoint,
        )


def test_missing_secret_is_a_configuration_error(endpoint):
    """A secret ARN that does not exist fails naming the ARN, not with a botocore traceback."""
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:shop/none-{uuid.uuid4().hex}"
    with pytest.raises(ConfigurationError, match="cannot be read: ResourceNotFoundException"):
        resolve_amazon_mq(_broker(endpoint), arn, session=session(), endpoint_url=endpoint)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "is not a JSON object"),
        ('["shop", "pw"]', "is not a JSON object"),
        ('{"username": "shop"}', "lacks password"),
        ('{"username": "", "password": 7}', "lacks username and password"),
    ],
)
def test_malformed_secret_is_a_configuration_error_that_hides_its_content(endpoint, value, problem):
    """A secret that is not {"username","password"} strings fails; the message shows no value."""
    with pytest.raises(ConfigurationError, match=problem) as caught:
        resolve_amazon_mq(
            _broker(endpoint), _secret(endpoint, value), session=session(), endpoint_url=endpoint
        )
    assert "pw" not in str(caught.value)


def test_environment_with_broker_id_and_secret_resolves_through_aws(endpoint):
    """AMAZON_MQ_BROKER_ID + BROKER_SECRET_ARN (+ BROKER_PROTOCOL) stand in for BROKER_URL."""
    environ = {
        "AMAZON_MQ_BROKER_ID": _broker(endpoint),
        "BROKER_SECRET_ARN": _secret(endpoint, CREDENTIALS),
        "BROKER_PROTOCOL": "amqp10",
    }
    url = broker_url_from_env(environ, endpoint_url=endpoint)
    assert url.transport == "amqp10"
    assert url.username == "shop"


def test_environment_must_name_exactly_one_broker_source():
    """BROKER_URL alone is parsed; both forms, neither, or half a pair are rejected."""
    assert broker_url_from_env({"BROKER_URL": "stomp://localhost:61613"}).transport == "stomp"
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:shop/broker"
    with pytest.raises(ConfigurationError, match="not both"):
        broker_url_from_env({"BROKER_URL": "stomp://h", "AMAZON_MQ_BROKER_ID": "b-1"})
    with pytest.raises(ConfigurationError, match="no broker configured"):
        broker_url_from_env({})
    with pytest.raises(ConfigurationError, match="BROKER_SECRET_ARN is not set"):
        broker_url_from_env({"AMAZON_MQ_BROKER_ID": "b-1"})
    with pytest.raises(ConfigurationError, match="AMAZON_MQ_BROKER_ID is not set"):
        broker_url_from_env({"BROKER_SECRET_ARN": arn})
    with pytest.raises(ConfigurationError, match="not a Secrets Manager secret ARN"):
        broker_url_from_env({"AMAZON_MQ_BROKER_ID": "b-1", "BROKER_SECRET_ARN": "shop/broker"})


def test_unreachable_aws_endpoint_is_a_connection_error():
    """Nothing listening at the endpoint is a BrokerConnectionError, not a configuration one."""
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:shop/broker"
    closed = f"http://127.0.0.1:{free_port()}"
    unanswered = session()
    with pytest.raises(BrokerConnectionError, match="AWS did not answer"):
        resolve_amazon_mq("b-1", arn, session=unanswered, endpoint_url=closed)


def _run_wrapper(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    show = "import os; print(os.environ['BROKER_URL']); print('BROKER_SECRET_ARN' in os.environ)"
    return subprocess.run(
        [sys.executable, "-m", "broker.aws", "--", sys.executable, "-c", show],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entry_point_wrapper_hands_the_resolved_url_to_the_command(endpoint):
    """python -m broker.aws -- CMD runs CMD with BROKER_URL resolved and the AWS ids removed."""
    environ = {
        **os.environ,
        "AMAZON_MQ_BROKER_ID": _broker(endpoint),
        "BROKER_SECRET_ARN": _secret(endpoint, CREDENTIALS),
        "AWS_ENDPOINT_URL": endpoint,  # botocore's own setting: every client goes to moto
    }
    done = _run_wrapper(environ)
    assert done.returncode == 0, done.stderr
    url_text, has_arn = done.stdout.splitlines()
    url = BrokerURL.parse(url_text)
    assert (url.transport, url.username, url.password) == ("stomp", "shop", "s3cr3t-p@ss/word")
    assert has_arn == "False"


def test_entry_point_wrapper_fails_with_one_line(endpoint):
    """A broker id that AWS does not know stops the container with one line, no traceback."""
    environ = {
        **os.environ,
        "AMAZON_MQ_BROKER_ID": "b-missing",
        "BROKER_SECRET_ARN": _secret(endpoint, CREDENTIALS),
        "AWS_ENDPOINT_URL": endpoint,
    }
    done = _run_wrapper(environ)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("broker: Amazon MQ broker 'b-missing' cannot be described")


def test_service_settings_resolve_amazon_mq_at_start_up(endpoint, monkeypatch):
    """A service given AMAZON_MQ_BROKER_ID + BROKER_SECRET_ARN instead of BROKER_URL starts
    with the resolved URL, credentials included; a bad secret stops it with one line."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    broker_id = _broker(endpoint)
    environ = {
        "AMAZON_MQ_BROKER_ID": broker_id,
        "BROKER_SECRET_ARN": _secret(endpoint, CREDENTIALS),
    }
    settings = Settings.from_env("payments", grpc_port=50053, environ=environ)
    assert settings.broker_url is not None
    url = BrokerURL.parse(settings.broker_url)
    assert (url.transport, url.username, url.password) == ("stomp", "shop", "s3cr3t-p@ss/word")
    bad = {"AMAZON_MQ_BROKER_ID": broker_id, "BROKER_SECRET_ARN": _secret(endpoint, "not json")}
    with pytest.raises(ConfigError, match="AMAZON_MQ_BROKER_ID") as error:
        Settings.from_env("payments", grpc_port=50053, environ=bad)
    assert "\n" not in str(error.value)
