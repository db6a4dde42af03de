"""Gateway settings from the environment: parsed values and one-line errors naming the variable."""

from __future__ import annotations

import pytest

from gateway import GatewaySettings, hash_key
from gateway.__main__ import main
from services.runtime import ConfigError

DIGEST = hash_key("k")


def test_defaults() -> None:
    """Without variables: port 8080, auth off, no rate limit, no cache, 30 s deadline."""
    settings = GatewaySettings.from_env({})
    assert settings.port == 8080
    assert settings.auth_required is False
    assert settings.rate_limit_rps is None
    assert settings.cache_ttls == ()
    assert settings.request_timeout == 30.0


def test_full_configuration() -> None:
    """Every variable is parsed into its typed field; secrets stay out of repr."""
    settings = GatewaySettings.from_env(
        {
            "GATEWAY_PORT": "9000",
            "GATEWAY_UPSTREAMS": "orders=orders.shop.local:50051, shop.inventory.v1=[::1]:50052",
            "GATEWAY_API_KEYS": f"ci:{DIGEST}:shop.orders.* shop.inventory.v1.*",
            "GATEWAY_JWT_SECRET": "s3cret-value",
            "GATEWAY_RATE_LIMIT_RPS": "5",
            "GATEWAY_CACHE_TTLS": "shop.inventory.v1.*=30",
            "GATEWAY_CORS_ORIGINS": "https://a.example, https://b.example",
            "REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
        }
    )
    assert settings.upstreams == {
        "orders": "orders.shop.local:50051",
        "shop.inventory.v1": "[::1]:50052",
    }
    assert settings.api_keys[0].scopes == ("shop.orders.*", "shop.inventory.v1.*")
    assert settings.auth_required is True
    assert settings.rate_limit_burst == 10
    assert settings.cache_ttls == (("shop.inventory.v1.*", 30.0),)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    text = repr(settings)
    assert "s3cret" not in text
    assert ":pw@" not in text
    assert DIGEST not in repr(settings.api_keys[0])


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"GATEWAY_PORT": "http"}, "GATEWAY_PORT"),
        ({"GATEWAY_UPSTREAMS": "orders"}, "GATEWAY_UPSTREAMS"),
        ({"GATEWAY_UPSTREAMS": "orders=nohost"}, "GATEWAY_UPSTREAMS"),
        ({"GATEWAY_API_KEYS": "ci:plaintext-key:*"}, "GATEWAY_API_KEYS"),
        ({"GATEWAY_AUTH": "required"}, "GATEWAY_AUTH"),
        ({"GATEWAY_AUTH": "maybe"}, "GATEWAY_AUTH"),
        ({"GATEWAY_JWKS_URL": "file:///etc/keys"}, "GATEWAY_JWKS_URL"),
        ({"GATEWAY_RATE_LIMIT_RPS": "-1"}, "GATEWAY_RATE_LIMIT_RPS"),
        ({"GATEWAY_CACHE_TTLS": "x=forever"}, "GATEWAY_CACHE_TTLS"),
        ({"GATEWAY_REQUEST_TIMEOUT": "90"}, "GATEWAY_REQUEST_TIMEOUT"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"GATEWAY_MAX_BODY_BYTES": "0"}, "GATEWAY_MAX_BODY_BYTES"),
    ],
)
def test_bad_values_fail_with_one_line(environ: dict[str, str], variable: str) -> None:
    """A bad value raises ConfigError whose single-line message starts with the variable."""
    with pytest.raises(ConfigError) as caught:
        GatewaySettings.from_env(environ)
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_main_exits_2_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m gateway prints one line and exits 2 on a bad setting."""
    monkeypatch.setenv("GATEWAY_PORT", "eighty")
    assert main() == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway: GATEWAY_PORT: ")
    assert err.count("\n") == 1
