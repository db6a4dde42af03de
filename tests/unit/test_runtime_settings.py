"""Settings from environment variables: typed defaults, one-line errors naming the variable,
no secrets in repr."""

from __future__ import annotations

import pytest

from services.runtime import ConfigError, Env, Settings

BROKER = "amqp://guest:guest@127.0.0.1:5672/"


def _settings(**env: str) -> Settings:
    return Settings.from_env(
        "orders",
        grpc_port=50051,
        upstreams=("inventory",),
        environ={"BROKER_URL": BROKER, "INVENTORY_ADDR": "127.0.0.1:50052", **env},
    )


def test_defaults_are_local_and_harmless():
    """Only BROKER_URL and the upstream addresses are required; the rest has local defaults."""
    settings = _settings()
    assert settings.service_name == "orders"
    assert settings.grpc_address == "[::]:50051"
    assert settings.database_url == "sqlite+aiosqlite:///var/orders.db"
    assert settings.upstream("inventory") == "127.0.0.1:50052"
    assert (settings.log_level, settings.shutdown_grace, settings.metrics_port) == (
        "info",
        10.0,
        None,
    )


def test_values_are_read_and_typed():
    """Every variable is parsed into its type (ports int, grace float, level lower case)."""
    settings = _settings(
        SERVICE_NAME="orders-2",
        GRPC_HOST="127.0.0.1",
        GRPC_PORT="0",
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        LOG_LEVEL="DEBUG",
        SHUTDOWN_GRACE="2.5",
        METRICS_PORT="9461",
    )
    assert settings.grpc_address == "127.0.0.1:0"
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert (settings.service_name, settings.log_level) == ("orders-2", "debug")
    assert (settings.shutdown_grace, settings.metrics_port) == (2.5, 9461)


def test_settings_are_frozen():
    """Settings cannot be changed after start-up."""
    settings = _settings()
    with pytest.raises(AttributeError):
        settings.grpc_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GRPC_PORT": "abc"}, "GRPC_PORT: 'abc' is not an integer"),
        ({"GRPC_PORT": "70000"}, "GRPC_PORT: 70000 is outside 0..65535"),
        ({"SHUTDOWN_GRACE": "-1"}, "SHUTDOWN_GRACE: '-1' must be a positive number of seconds"),
        ({"SHUTDOWN_GRACE": "soon"}, "SHUTDOWN_GRACE: 'soon' is not a number of seconds"),
        (
            {"LOG_LEVEL": "loud"},
            "LOG_LEVEL: 'loud' is not one of debug, info, warning, error, critical",
        ),
        ({"INVENTORY_ADDR": "localhost"}, "INVENTORY_ADDR: 'localhost' is not host:port"),
        ({"INVENTORY_ADDR": ""}, "INVENTORY_ADDR: is required but not set"),
        ({"BROKER_URL": ""}, "BROKER_URL: is required but not set"),
        ({"METRICS_PORT": "x"}, "METRICS_PORT: 'x' is not an integer"),
        (
            {"DATABASE_URL": "sqlite+aiosqlite:///var/o.db?mode=ro"},
            (
                "DATABASE_URL: 'sqlite+aiosqlite:///var/o.db?mode=ro': a SQLite URL takes a "
                "path only, no ?options"
            ),
        ),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_variable(env, expected):
    """A bad or missing value raises ConfigError whose message is one line naming it."""
    with pytest.raises(ConfigError) as caught:
        _settings(**env)
    assert str(caught.value) == expected
    assert "\n" not in str(caught.value)


def test_bad_broker_url_is_reported_without_its_password():
    """An unusable BROKER_URL names the variable and never echoes the password."""
    with pytest.raises(ConfigError) as caught:
        _settings(BROKER_URL="ftp://user:hunter2@host")
    assert caught.value.variable == "BROKER_URL"
    assert "hunter2" not in str(caught.value)


def test_bad_database_url_is_rejected_without_its_password():
    """A DATABASE_URL without an async driver is rejected; the password is masked."""
    with pytest.raises(ConfigError) as caught:
        _settings(DATABASE_URL="postgresql://app:hunter2@db/shop")
    assert caught.value.variable == "DATABASE_URL"
    assert "hunter2" not in str(caught.value)


def test_repr_masks_passwords():
    """repr(settings) hides the database and broker passwords."""
    text = repr(_settings(DATABASE_URL="postgresql+asyncpg://app:hunter2@db/shop"))
    assert "hunter2" not in text
    assert "guest:guest" not in text
    assert "app:***@db" in text


def test_broker_is_optional_when_not_needed():
    """A process without a broker (the gateway) may leave BROKER_URL unset."""
    settings = Settings.from_env("gateway", grpc_port=0, needs_broker=False, environ={})
    assert settings.broker_url is None


def test_undeclared_upstream_is_a_config_error():
    """Asking for an upstream not declared in from_env is a ConfigError naming its variable."""
    with pytest.raises(ConfigError, match="PAYMENTS_ADDR"):
        _settings().upstream("payments")


def test_env_readers_accept_ipv6_addresses():
    """host:port accepts bracketed IPv6 hosts."""
    assert Env({"X_ADDR": "[::1]:50051"}).address("X_ADDR") == "[::1]:50051"
