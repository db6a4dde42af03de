"""Broker URLs: which transport, which endpoints (an active/standby pair), which options.

Forms accepted (credentials may be given in the URL or by the ``username``/``password`` options):

==========================================  ================================================
``amqp://user:pass@host:5672/vhost``        AMQP 0-9-1 (RabbitMQ engine), plain
``amqps://user:pass@host:5671/vhost``       AMQP 0-9-1 over TLS (Amazon MQ for RabbitMQ)
``stomp://user:pass@host:61613``            STOMP 1.2 (ActiveMQ engine), plain
``stomp+ssl://user:pass@host:61614``        STOMP 1.2 over TLS (Amazon MQ for ActiveMQ)
``amqp10://user:pass@host:5672``            AMQP 1.0, plain
``amqp+ssl://user:pass@host:5671``          AMQP 1.0 over TLS (Amazon MQ for ActiveMQ)
``failover:(URL1,URL2)?opt=v``              several endpoints of one transport, tried in turn
==========================================  ================================================

Query options common to every transport: ``dialect`` (``activemq`` or ``rabbitmq``), ``cafile``
(a CA bundle for TLS), ``heartbeat`` (seconds). Unknown options are rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from broker.errors import ConfigurationError

__all__ = ["BrokerURL", "Endpoint"]

#: scheme -> (transport name, TLS, default port)
SCHEMES: dict[str, tuple[str, bool, int]] = {
    "amqp": ("amqp091", False, 5672),
    "amqps": ("amqp091", True, 5671),
    "stomp": ("stomp", False, 61613),
    "stomp+ssl": ("stomp", True, 61614),
    "stomp+tls": ("stomp", True, 61614),
    "amqp10": ("amqp10", False, 5672),
    "amqp10+ssl": ("amqp10", True, 5671),
    "amqp+ssl": ("amqp10", True, 5671),
}

KNOWN_OPTIONS = frozenset(
    {
        "dialect",
        "cafile",
        "certfile",
        "keyfile",
        "verify",
        "heartbeat",
        "prefix",
        "exchange",
        "queue_type",
    }
)
_FAILOVER = re.compile(r"^failover:\((?P<urls>[^)]*)\)(?:\?(?P<query>.*))?$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One broker address."""

    scheme: str
    host: str
    port: int
    tls: bool
    path: str = ""

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class BrokerURL:
    """A parsed broker URL. ``str()`` and ``repr()`` never show the password."""

    transport: str
    endpoints: tuple[Endpoint, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> BrokerURL:
        """Parse ``url``; raise :class:`ConfigurationError` with one clear line if it is wrong."""
        text = url.strip()
        if not text:
            raise ConfigurationError("broker URL is empty")
        query = ""
        match = _FAILOVER.match(text)
        if match:
            parts = [p.strip() for p in match.group("urls").split(",") if p.strip()]
            query = match.group("query") or ""
        else:
            parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise ConfigurationError(f"broker URL {_mask(text)!r} names no endpoint")
        parsed = [_parse_one(part) for part in parts]
        transports = {p[0] for p in parsed}
        if len(transports) != 1:
            raise ConfigurationError(
                f"broker URL {_mask(text)!r} mixes transports {sorted(transports)}"
            )
        options: dict[str, str] = {}
        for *_, opts in parsed:
            options.update(opts)
        options.update(dict(parse_qsl(query)))
        unknown = set(options) - KNOWN_OPTIONS
        if unknown:
            raise ConfigurationError(
                f"broker URL option(s) {sorted(unknown)} unknown; known: {sorted(KNOWN_OPTIONS)}"
            )
        dialect = options.get("dialect")
        if dialect is not None and dialect not in {"activemq", "rabbitmq"}:
            raise ConfigurationError(f"dialect must be 'activemq' or 'rabbitmq', not {dialect!r}")
        user = next((p[2] for p in parsed if p[2] is not None), None)
        password = next((p[3] for p in parsed if p[3] is not None), None)
        return cls(
            transport=parsed[0][0],
            endpoints=tuple(p[1] for p in parsed),
            username=user,
            password=password,
            options=options,
        )

    def with_credentials(self, username: str | None, password: str | None) -> BrokerURL:
        return replace(self, username=username, password=password)

    @property
    def tls(self) -> bool:
        return self.endpoints[0].tls

    def __str__(self) -> str:
        user = f"{quote(self.username)}:***@" if self.username else ""
        urls = [f"{e.scheme}://{user}{e.host}:{e.port}{e.path}" for e in self.endpoints]
        text = urls[0] if len(urls) == 1 else f"failover:({','.join(urls)})"
        if self.options:
            text += "?" + "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return text


def _parse_one(url: str) -> tuple[str, Endpoint, str | None, str | None, dict[str, str]]:
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError as exc:
        raise ConfigurationError(f"broker URL {_mask(url)!r} is malformed: {exc}") from None
    scheme = split.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"broker URL {_mask(url)!r} has unknown scheme {scheme!r}; "
            f"use one of {', '.join(sorted(SCHEMES))}"
        )
    if not split.hostname:
        raise ConfigurationError(f"broker URL {_mask(url)!r} has no host")
    transport, tls, default_port = SCHEMES[scheme]
    endpoint = Endpoint(
        scheme=scheme,
        host=split.hostname,
        port=port or default_port,
        tls=tls,
        path=split.path,
    )
    user = unquote(split.username) if split.username else None
    password = unquote(split.password) if split.password else None
    return transport, endpoint, user, password, dict(parse_qsl(split.query))


def _mask(url: str) -> str:
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)
