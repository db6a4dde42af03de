"""Gateway settings from environment variables, read once at start-up (twelve-factor).

A bad value fails start-up with one line naming the variable
(``services.runtime.ConfigError``), exactly as the services report theirs.

==============================  ===============================================================
variable                        meaning (default)
==============================  ===============================================================
``GATEWAY_HOST``                interface to listen on (``0.0.0.0``)
``GATEWAY_PORT``                HTTP port (``8080``)
``GATEWAY_UPSTREAMS``           ``key=host:port,...``; a key is a service full name, its
                                package or a package component (``orders=orders:50051``)
``GATEWAY_DESCRIPTORS``         FileDescriptorSet path (the packaged ``shop/descriptors.binpb``)
``GATEWAY_REQUEST_TIMEOUT``     seconds; the gRPC deadline of a call without ``grpc-timeout``
                                (``30``)
``GATEWAY_MAX_TIMEOUT``         seconds; ``grpc-timeout`` headers are capped here (``60``)
``GATEWAY_MAX_BODY_BYTES``      larger bodies get 413 (``1048576``)
``GATEWAY_CORS_ORIGINS``        comma-separated allowed origins, ``*`` for any (none)
``GATEWAY_AUTH``                ``required`` or ``off`` (``required`` when keys or JWT are set)
``GATEWAY_API_KEYS``            ``name:sha256-hex:scope scope,...`` (hashes, never keys)
``GATEWAY_JWT_SECRET``          HS256 shared secret for bearer tokens
``GATEWAY_JWKS_URL``            JWKS URL for RS256 bearer tokens (e.g. Amazon Cognito's)
``GATEWAY_JWT_ISSUER``          required ``iss`` of bearer tokens (not checked when unset)
``GATEWAY_JWT_AUDIENCE``        required ``aud`` of bearer tokens (not checked when unset)
``GATEWAY_RATE_LIMIT_RPS``      tokens per second per caller; unset disables rate limiting
``GATEWAY_RATE_LIMIT_BURST``    bucket size (twice the rate, at least 1)
``GATEWAY_CACHE_TTLS``          ``rpc-pattern=seconds,...`` GET caching per RPC (fnmatch on
                                the RPC full name, e.g. ``shop.inventory.v1.*=30``)
``REDIS_URL``                   share rate limits and cache across instances through Redis
``GATEWAY_HEALTH_INTERVAL``     seconds between upstream health checks (``5``)
``LOG_LEVEL``                   debug, info, warning, error or critical (``info``)
==============================  ===============================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.runtime import ConfigError, Env
from services.runtime.settings import LOG_LEVELS, mask_password

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ApiKey", "GatewaySettings"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A configured API key: its SHA-256 hex digest and scopes (fnmatch patterns on RPCs)."""

    name: str
    sha256: str
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"ApiKey(name={self.name!r}, scopes={self.scopes!r})"


def _pairs(env: Env, name: str) -> list[tuple[str, str]]:
    text = env.raw(name)
    if text is None:
        return []
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(name, f"{item!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _api_keys(env: Env) -> tuple[ApiKey, ...]:
    text = env.raw("GATEWAY_API_KEYS")
    keys = []
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        parts = item.split(":", 2)
        if len(parts) != 3 or not parts[0] or not _HEX64.match(parts[1]) or not parts[2].split():  # noqa: PLR2004
            raise ConfigError("GATEWAY_API_KEYS", "each entry must be name:sha256-hex:scopes")
        keys.append(ApiKey(parts[0], parts[1], tuple(parts[2].split())))
    return tuple(keys)


def _static_dir(env: Env) -> str | None:
    directory = env.raw("GATEWAY_STATIC_DIR")
    if directory is not None and not Path(directory).is_dir():
        raise ConfigError("GATEWAY_STATIC_DIR", f"{directory!r} is not a directory")
    return directory


def _cache_ttls(env: Env) -> tuple[tuple[str, float], ...]:
    ttls = []
    for pattern, seconds in _pairs(env, "GATEWAY_CACHE_TTLS"):
        try:
            value = float(seconds)
        except ValueError:
            raise ConfigError("GATEWAY_CACHE_TTLS", f"{seconds!r} is not seconds") from None
        if not 0 < value < float("inf"):
            raise ConfigError("GATEWAY_CACHE_TTLS", f"{seconds!r} must be positive")
        ttls.append((pattern, value))
    return tuple(ttls)


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """Everything the gateway needs, built once at the entry point and passed down."""

    host: str = "0.0.0.0"  # noqa: S104  -- a container's edge listens on every interface
    port: int = 8080
    upstreams: Mapping[str, str] = field(default_factory=dict)
    descriptors: str | None = None
    request_timeout: float = 30.0
    max_timeout: float = 60.0
    max_body_bytes: int = 1 << 20
    cors_origins: tuple[str, ...] = ()
    auth_required: bool = False
    api_keys: tuple[ApiKey, ...] = ()
    jwt_secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    rate_limit_rps: float | None = None
    rate_limit_burst: int = 1
    cache_ttls: tuple[tuple[str, float], ...] = ()
    redis_url: str | None = None
    health_interval: float = 5.0
    log_level: str = "info"
    static_dir: str | None = None
    """Directory served at ``/`` (the web console); off when unset."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        """Settings from ``environ`` (default ``os.environ``); ConfigError on a bad value."""
        env = Env(environ)
        upstreams = {}
        for key, address in _pairs(env, "GATEWAY_UPSTREAMS"):
            upstreams[key] = Env({"GATEWAY_UPSTREAMS": address}).address("GATEWAY_UPSTREAMS")
        api_keys = _api_keys(env)
        secret, jwks = env.raw("GATEWAY_JWT_SECRET"), env.raw("GATEWAY_JWKS_URL")
        if jwks is not None and not jwks.startswith(("https://", "http://")):
            raise ConfigError("GATEWAY_JWKS_URL", f"{jwks!r} is not an http(s) URL")
        default_auth = "required" if api_keys or secret or jwks else "off"
        auth = env.choice("GATEWAY_AUTH", ("required", "off"), default_auth)
        if auth == "required" and not (api_keys or secret or jwks):
            raise ConfigError(
                "GATEWAY_AUTH", "is required but no GATEWAY_API_KEYS or JWT settings are set"
            )
        rps_text = env.raw("GATEWAY_RATE_LIMIT_RPS")
        rps = env.seconds("GATEWAY_RATE_LIMIT_RPS", 1.0) if rps_text else None
        burst = env.integer(
            "GATEWAY_RATE_LIMIT_BURST", max(1, int(2 * (rps or 1))), low=1, high=1_000_000
        )
        request_timeout = env.seconds("GATEWAY_REQUEST_TIMEOUT", 30.0)
        max_timeout = env.seconds("GATEWAY_MAX_TIMEOUT", 60.0)
        if request_timeout > max_timeout:
            raise ConfigError("GATEWAY_REQUEST_TIMEOUT", "exceeds GATEWAY_MAX_TIMEOUT")
        redis_url = env.raw("REDIS_URL")
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL", f"{mask_password(redis_url)!r} is not a redis:// URL")
        origins = tuple(o.strip() for o in (env.raw("GATEWAY_CORS_ORIGINS") or "").split(","))
        return cls(
            host=env.string("GATEWAY_HOST", "0.0.0.0"),  # noqa: S104
            port=env.integer("GATEWAY_PORT", 8080, low=0, high=65535),
            upstreams=upstreams,
            descriptors=env.raw("GATEWAY_DESCRIPTORS"),
            request_timeout=request_timeout,
            max_timeout=max_timeout,
            max_body_bytes=env.integer("GATEWAY_MAX_BODY_BYTES", 1 << 20, low=1, high=1 << 30),
            cors_origins=tuple(o for o in origins if o),
            auth_required=auth == "required",
            api_keys=api_keys,
            jwt_secret=secret,
            jwks_url=jwks,
            jwt_issuer=env.raw("GATEWAY_JWT_ISSUER"),
            jwt_audience=env.raw("GATEWAY_JWT_AUDIENCE"),
            rate_limit_rps=rps,
            rate_limit_burst=burst,
            cache_ttls=_cache_ttls(env),
            redis_url=redis_url,
            health_interval=env.seconds("GATEWAY_HEALTH_INTERVAL", 5.0),
            log_level=env.choice("LOG_LEVEL", LOG_LEVELS, "info"),
            static_dir=_static_dir(env),
        )

    def __repr__(self) -> str:
        # The JWT secret and a Redis password must never reach logs.
        return (
            f"GatewaySettings(port={self.port}, upstreams={dict(self.upstreams)!r}, "
            f"auth_required={self.auth_required}, api_keys={len(self.api_keys)}, "
            f"jwt_secret={'***' if self.jwt_secret else None}, jwks_url={self.jwks_url!r}, "
            f"rate_limit_rps={self.rate_limit_rps}, cache_ttls={self.cache_ttls!r}, "
            f"redis_url={mask_password(self.redis_url or '')!r})"
        )
