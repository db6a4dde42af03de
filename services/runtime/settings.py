"""Typed, frozen service settings read once from environment variables (twelve-factor).

A missing or bad value raises :class:`~services.runtime.errors.ConfigError` whose message is
one line naming the variable; :func:`services.runtime.entrypoint.run` prints that line and exits
non-zero. Nothing falls back silently: the only defaults are harmless local ones (a SQLite file
under ``var/``, port numbers, timeouts), and there is no default broker URL or password.

============================  ==========================================================
variable                      meaning (default)
============================  ==========================================================
``SERVICE_NAME``              service name in logs, health and CloudEvents source
                              (the entry point's own name)
``GRPC_HOST``                 interface to listen on (``[::]``: every interface)
``GRPC_PORT``                 gRPC port, 0 picks a free one (the service's own port)
``DATABASE_URL``              SQLAlchemy async URL (``sqlite+aiosqlite:///var/<service>.db``)
``BROKER_URL``                broker URL, see ``broker.url`` (required when the service uses it)
``<UPSTREAM>_ADDR``           ``host:port`` of each upstream gRPC service (required per upstream)
``LOG_LEVEL``                 debug, info, warning, error or critical (``info``)
``SHUTDOWN_GRACE``            seconds in-flight RPCs get to finish on SIGTERM (``10``)
``METRICS_PORT``              Prometheus port; unset or empty disables the endpoint
``GRPC_MAX_MESSAGE_BYTES``    largest gRPC message received; bigger ones are refused with
                              RESOURCE_EXHAUSTED (``4194304``, 4 MiB)
============================  ==========================================================
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from broker.errors import BrokerError, ConfigurationError
from broker.url import BrokerURL
from services.runtime.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["LOG_LEVELS", "Env", "Settings", "mask_password"]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_ADDRESS = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_MAX_PORT = 65535
_PASSWORD = re.compile(r"(?<=://)([^:/@]*):([^@]*)@")


def mask_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for reprs and logs)."""
    return _PASSWORD.sub(r"\1:***@", url)


class Env:
    """Reads and checks environment variables; every failure is a one-line ConfigError.

    The gateway and the services share these readers, so every process reports bad
    configuration the same way.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        """The stripped value, or None when the variable is unset or empty."""
        value = self._environ.get(name, "").strip()
        return value or None

    def string(self, name: str, default: str | None = None) -> str:
        """A required string (``default`` when unset)."""
        value = self.raw(name)
        if value is None:
            if default is None:
                raise ConfigError(name, "is required but not set")
            return default
        return value

    def integer(self, name: str, default: int | None = None, *, low: int, high: int) -> int:
        """An integer within ``[low, high]``."""
        text = self.raw(name)
        if text is None:
            if default is None:
                raise ConfigError(name, "is required but not set")
            return default
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(name, f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise ConfigError(name, f"{value} is outside {low}..{high}")
        return value

    def optional_int(self, name: str, *, low: int, high: int) -> int | None:
        """An integer within ``[low, high]``, or None when unset."""
        return None if self.raw(name) is None else self.integer(name, low=low, high=high)

    def seconds(self, name: str, default: float) -> float:
        """A positive, finite number of seconds."""
        text = self.raw(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(name, f"{text!r} is not a number of seconds") from None
        if not 0 < value < float("inf"):
            raise ConfigError(name, f"{text!r} must be a positive number of seconds")
        return value

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        """One of ``choices``, compared case-insensitively and returned in lower case."""
        allowed = tuple(choices)
        value = self.string(name, default).lower()
        if value not in allowed:
            raise ConfigError(name, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def address(self, name: str) -> str:
        """A required ``host:port`` (IPv6 hosts in brackets)."""
        value = self.string(name)
        match = _ADDRESS.match(value)
        if match is None or not 0 < int(match.group(1)) <= _MAX_PORT:
            raise ConfigError(name, f"{value!r} is not host:port")
        return value

    def broker_url(self, name: str = "BROKER_URL") -> str:
        """A required broker URL that ``broker.url`` accepts (checked without connecting).

        On AWS, ``AMAZON_MQ_BROKER_ID`` + ``BROKER_SECRET_ARN`` (and optionally
        ``BROKER_PROTOCOL``) may stand instead of ``BROKER_URL``: the broker's endpoints (both
        of an active/standby pair, as a failover URL) and its credentials are then resolved
        with boto3 at start-up."""
        if self.raw(name) is None and self.raw("AMAZON_MQ_BROKER_ID") is not None:
            return self._amazon_mq()
        value = self.string(name)
        try:
            BrokerURL.parse(value)
        except ConfigurationError as exc:
            raise ConfigError(name, str(exc)) from None
        return value

    def _amazon_mq(self) -> str:
        # Imported here: boto3 is only needed by processes configured for Amazon MQ.
        from broker import aws  # noqa: PLC0415

        try:
            url = aws.broker_url_from_env(self._environ)
        except BrokerError as exc:
            raise ConfigError("AMAZON_MQ_BROKER_ID", str(exc)) from None
        return aws.url_with_credentials(url)

    def database_url(self, name: str, default: str) -> str:
        """An async SQLAlchemy URL: ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``."""
        value = self.string(name, default)
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ConfigError(
                name,
                f"{mask_password(value)!r} is not sqlite+aiosqlite:// or postgresql+asyncpg://",
            )
        if value.startswith("sqlite") and "?" in value:
            # The services open the file themselves (WAL, one connection on the loop's
            # thread: services/common/store.py); an option here would be silently dropped.
            raise ConfigError(name, f"{value!r}: a SQLite URL takes a path only, no ?options")
        return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What one service process needs to run, read once at start-up and passed down."""

    service_name: str
    grpc_host: str = "[::]"
    grpc_port: int
    database_url: str
    broker_url: str | None = None
    upstreams: Mapping[str, str] = field(default_factory=dict)
    """``host:port`` of each upstream gRPC service by service name (from ``<NAME>_ADDR``)."""
    log_level: str = "info"
    shutdown_grace: float = 10.0
    metrics_port: int | None = None
    grpc_max_message_bytes: int = 4 << 20
    """``grpc.max_receive_message_length`` of the server: bounds the memory one call can take."""

    @classmethod
    def from_env(
        cls,
        service: str,
        *,
        grpc_port: int,
        needs_broker: bool = True,
        upstreams: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings for ``service`` from ``environ`` (default ``os.environ``).

        ``grpc_port`` is the service's default port; ``upstreams`` names the services it
        calls, each of which must have ``<NAME>_ADDR`` set.
        """
        env = Env(environ)
        name = env.string("SERVICE_NAME", service)
        return cls(
            service_name=name,
            grpc_host=env.string("GRPC_HOST", "[::]"),
            grpc_port=env.integer("GRPC_PORT", grpc_port, low=0, high=65535),
            database_url=env.database_url("DATABASE_URL", f"sqlite+aiosqlite:///var/{name}.db"),
            broker_url=env.broker_url() if needs_broker else env.raw("BROKER_URL"),
            upstreams={up: env.address(f"{up.upper()}_ADDR") for up in upstreams},
            log_level=env.choice("LOG_LEVEL", LOG_LEVELS, "info"),
            shutdown_grace=env.seconds("SHUTDOWN_GRACE", 10.0),
            metrics_port=env.optional_int("METRICS_PORT", low=0, high=65535),
            grpc_max_message_bytes=env.integer(
                "GRPC_MAX_MESSAGE_BYTES", 4 << 20, low=1024, high=1 << 30
            ),
        )

    @property
    def grpc_address(self) -> str:
        """``host:port`` to bind the gRPC server to."""
        return f"{self.grpc_host}:{self.grpc_port}"

    def upstream(self, service: str) -> str:
        """The ``host:port`` of an upstream service declared in :meth:`from_env`."""
        try:
            return self.upstreams[service]
        except KeyError:
            variable = f"{service.upper()}_ADDR"
            raise ConfigError(variable, "was not declared as an upstream") from None

    def __repr__(self) -> str:
        # Database and broker URLs may carry passwords; logs and tracebacks must not.
        return (
            f"Settings(service_name={self.service_name!r}, grpc={self.grpc_address!r}, "
            f"database_url={mask_password(self.database_url)!r}, "
            f"broker_url={mask_password(self.broker_url or '')!r}, "
            f"upstreams={dict(self.upstreams)!r}, log_level={self.log_level!r}, "
            f"shutdown_grace={self.shutdown_grace}, metrics_port={self.metrics_port})"
        )
