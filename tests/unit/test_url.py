"""BrokerURL parsing: every scheme, failover lists, options, masked secrets, clear errors."""

from __future__ import annotations

import pytest

from broker.errors import ConfigurationError
from broker.url import SCHEMES, BrokerURL, Endpoint


@pytest.mark.parametrize(
    ("scheme", "transport", "tls", "port"),
    [
        ("amqp", "amqp091", False, 5672),
        ("amqps", "amqp091", True, 5671),
        ("stomp", "stomp", False, 61613),
        ("stomp+ssl", "stomp", True, 61614),
        ("stomp+tls", "stomp", True, 61614),
        ("amqp10", "amqp10", False, 5672),
        ("amqp10+ssl", "amqp10", True, 5671),
        ("amqp+ssl", "amqp10", True, 5671),
    ],
)
def test_every_scheme_maps_to_transport_tls_and_default_port(
    scheme: str, transport: str, tls: bool, port: int
) -> None:
    """Each scheme picks its transport, TLS flag and the engine's default port."""
    url = BrokerURL.parse(f"{scheme}://broker.example")
    assert (url.transport, url.tls, url.endpoints[0].port) == (transport, tls, port)
    assert url.endpoints == (Endpoint(scheme, "broker.example", port, tls),)


def test_table_covers_every_scheme() -> None:
    """The test table above and SCHEMES list the same schemes."""
    assert set(SCHEMES) == {
        "amqp", "amqps", "stomp", "stomp+ssl", "stomp+tls", "amqp10", "amqp10+ssl", "amqp+ssl"
    }  # fmt: skip


def test_credentials_port_and_vhost() -> None:
    """User, percent-decoded password, explicit port and path are kept."""
    url = BrokerURL.parse("amqps://shop:p%40ss%3Aw0rd@b-1.mq.eu-west-1.amazonaws.com:5671/prod")
    assert url.username == "shop"
    assert url.password == "p@ss:w0rd"
    assert url.endpoints[0].port == 5671
    assert url.endpoints[0].path == "/prod"


def test_scheme_is_case_insensitive_and_whitespace_trimmed() -> None:
    """AMQP://HOST with surrounding spaces parses like its lower-case form."""
    url = BrokerURL.parse("  AMQP://localhost  ")
    assert url.transport == "amqp091"
    assert url.endpoints[0].scheme == "amqp"


def test_failover_list_keeps_order_and_shares_credentials() -> None:
    """failover:(a,b)?opts gives endpoints in order; credentials from any endpoint apply."""
    url = BrokerURL.parse(
        "failover:(stomp+ssl://u:secret@b-1.mq.aws:61614, stomp+ssl://b-2.mq.aws:61614)"
        "?dialect=activemq&heartbeat=10"
    )
    assert [str(e) for e in url.endpoints] == [
        "stomp+ssl://b-1.mq.aws:61614",
        "stomp+ssl://b-2.mq.aws:61614",
    ]
    assert (url.username, url.password) == ("u", "secret")
    assert url.options == {"dialect": "activemq", "heartbeat": "10"}


def test_comma_list_without_failover_prefix() -> None:
    """A plain comma-separated list is also a list of endpoints."""
    url = BrokerURL.parse("amqp://a:5672,amqp://b:5673")
    assert [(e.host, e.port) for e in url.endpoints] == [("a", 5672), ("b", 5673)]


def test_options_from_inner_urls_and_outer_query_merge() -> None:
    """Options may sit on an endpoint or on the failover group; the group's win."""
    url = BrokerURL.parse(
        "failover:(amqps://a?cafile=/ca.pem&prefix=x)?prefix=y&queue_type=classic"
    )
    assert url.options == {"cafile": "/ca.pem", "prefix": "y", "queue_type": "classic"}


def test_password_is_masked_in_str_and_repr() -> None:
    """Neither str() nor repr() shows the password, for one endpoint or several."""
    single = BrokerURL.parse("amqp://guest:hunter2@localhost/")
    double = BrokerURL.parse("failover:(amqp://guest:hunter2@a,amqp://b)?heartbeat=5")
    for url in (single, double):
        assert "hunter2" not in str(url)
        assert "hunter2" not in repr(url)
    assert str(single) == "amqp://guest:***@localhost:5672/"
    assert str(double) == ("failover:(amqp://guest:***@a:5672,amqp://guest:***@b:5672)?heartbeat=5")


def test_with_credentials_replaces_user_and_password() -> None:
    """Credentials from the environment replace those in the URL without mutating it."""
    url = BrokerURL.parse("amqp://a:b@localhost")
    other = url.with_credentials("svc", "s3cret")
    assert (other.username, other.password) == ("svc", "s3cret")
    assert (url.username, url.password) == ("a", "b")
    assert "s3cret" not in repr(other)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("failover:()", "names no endpoint"),
        ("http://localhost", "unknown scheme 'http'; use one of"),
        ("localhost:5672", "unknown scheme"),
        ("amqp://", "has no host"),
        ("amqp://localhost:notaport", "is malformed"),
        ("amqp://a,stomp://b", "mixes transports"),
        ("amqp://localhost?colour=red", r"option\(s\) \['colour'\] unknown"),
        ("amqp://localhost?dialect=kafka", "dialect must be 'activemq' or 'rabbitmq'"),
    ],
)
def test_bad_urls_fail_with_one_clear_line(text: str, message: str) -> None:
    """Each kind of mistake raises ConfigurationError (a ValueError) saying what is wrong."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        BrokerURL.parse(text)
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


def test_errors_mask_the_password() -> None:
    """A rejected URL is quoted in the error without its password."""
    with pytest.raises(ConfigurationError) as caught:
        BrokerURL.parse("http://user:hunter2@localhost")
    assert "hunter2" not in str(caught.value)
    assert "user:***@" in str(caught.value)
