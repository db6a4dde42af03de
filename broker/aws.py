"""Amazon MQ: a broker URL from a broker id and a Secrets Manager secret, through boto3.

On AWS a service is configured with ``AMAZON_MQ_BROKER_ID`` and ``BROKER_SECRET_ARN`` instead of
a ``BROKER_URL`` (the CloudFormation in ``deploy/aws`` does that), so no endpoint or password is
written into a task definition. At start-up :func:`resolve_amazon_mq`:

1. calls ``mq.describe_broker``; an ActiveMQ active/standby pair has two broker instances, each
   with its own endpoint list (``ssl://…-1…:61617``, ``amqp+ssl://…-1…:5671``,
   ``stomp+ssl://…-1…:61614``, …); a RabbitMQ broker (single instance or cluster) has one
   ``amqps://`` endpoint;
2. keeps, from every instance in order, the endpoint of the wanted protocol, so an
   active/standby pair becomes ``failover:(stomp+ssl://…-1…:61614,stomp+ssl://…-2…:61614)`` and
   the broker's reconnect supervisor moves to the standby when the active one goes away;
3. reads the credentials from ``secretsmanager.get_secret_value``: a JSON SecretString
   ``{"username": "…", "password": "…"}``.

Anything missing or malformed is a :class:`~broker.errors.ConfigurationError` with one line that
says what and where; AWS not answering at all is a :class:`~broker.errors.BrokerConnectionError`.
boto3 is synchronous: call these before the event loop starts, or through
``asyncio.to_thread``. The password never appears in a message, a log line or a ``repr``.

``python -m broker.aws -- COMMAND [ARG…]`` is the same resolution as a container entry point:
it reads ``BROKER_URL`` or ``AMAZON_MQ_BROKER_ID`` + ``BROKER_SECRET_ARN`` (+ ``BROKER_PROTOCOL``)
from the environment, then replaces itself with COMMAND, whose environment has ``BROKER_URL``
set to the resolved URL and no longer the Amazon MQ variables. A process that only knows
``BROKER_URL`` runs unchanged on Amazon MQ that way (the ECS task definitions do this).
"""

from __future__ import annotations

import json
import os
import re
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, NoReturn
from urllib.parse import quote

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from broker.errors import BrokerConnectionError, BrokerError, ConfigurationError
from broker.url import BrokerURL

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from mypy_boto3_mq.type_defs import DescribeBrokerResponseTypeDef

__all__ = [
    "PROTOCOLS",
    "broker_url_from_env",
    "failover_url",
    "main",
    "resolve_amazon_mq",
    "url_with_credentials",
]

#: protocol preference -> (engine it needs, scheme of its endpoint in describe_broker)
PROTOCOLS: Final[dict[str, tuple[str, str]]] = {
    "stomp": ("ACTIVEMQ", "stomp+ssl"),
    "amqp10": ("ACTIVEMQ", "amqp+ssl"),
    "amqp091": ("RABBITMQ", "amqps"),
}
#: the protocol used when none is asked for, by engine (STOMP: the local default, too)
DEFAULT_PROTOCOL: Final[dict[str, str]] = {"ACTIVEMQ": "stomp", "RABBITMQ": "amqp091"}
_SECRET_ARN = re.compile(r"^arn:aws[\w-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:.+$")


def failover_url(
    description: Mapping[str, object] | DescribeBrokerResponseTypeDef,
    *,
    protocol: str | None = None,
) -> BrokerURL:
    """The broker URL (no credentials) of ``protocol`` from a ``describe_broker`` response.

    Every broker instance contributes its endpoint of that protocol, in the order AWS lists
    them (the active/standby pair's two instances, or a RabbitMQ broker's one); repeated
    endpoints are kept once.
    """
    name = str(description.get("BrokerName") or description.get("BrokerId") or "broker")
    engine = str(description.get("EngineType", "")).upper()
    if engine not in DEFAULT_PROTOCOL:
        raise ConfigurationError(f"Amazon MQ broker {name!r} has unknown engine {engine!r}")
    wanted = protocol or DEFAULT_PROTOCOL[engine]
    if wanted not in PROTOCOLS:
        raise ConfigurationError(
            f"broker protocol {wanted!r} unknown; use one of {', '.join(sorted(PROTOCOLS))}"
        )
    needs, scheme = PROTOCOLS[wanted]
    if needs != engine:
        raise ConfigurationError(
            f"Amazon MQ broker {name!r} runs {engine}, which does not speak {wanted} "
            f"(use {DEFAULT_PROTOCOL[engine]})"
        )
    instances = description.get("BrokerInstances") or []
    endpoints: list[str] = []
    for instance in instances if isinstance(instances, list) else []:
        for endpoint in instance.get("Endpoints", []) if isinstance(instance, dict) else []:
            if str(endpoint).startswith(f"{scheme}://") and endpoint not in endpoints:
                endpoints.append(str(endpoint))
    if not endpoints:
        state = description.get("BrokerState", "unknown")
        raise ConfigurationError(
            f"Amazon MQ broker {name!r} (state {state}) lists no {scheme}:// endpoint"
        )
    return BrokerURL.parse(f"failover:({','.join(endpoints)})")


def resolve_amazon_mq(
    broker_id: str,
    secret_arn: str,
    *,
    protocol: str | None = None,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
) -> BrokerURL:
    """The broker URL, with credentials, of Amazon MQ broker ``broker_id``.

    ``protocol`` is ``stomp`` or ``amqp10`` for the ActiveMQ engine (default ``stomp``) and
    ``amqp091`` for RabbitMQ (its default). ``session`` supplies region and credentials (the
    default session otherwise; the region falls back to the secret ARN's); ``endpoint_url``
    points both clients at another endpoint (a VPC endpoint, or moto in tests).
    """
    if not broker_id.strip():
        raise ConfigurationError("Amazon MQ broker id is empty")
    match = _SECRET_ARN.match(secret_arn.strip())
    if match is None:
        raise ConfigurationError(f"{secret_arn!r} is not a Secrets Manager secret ARN")
    session = session or boto3.Session()
    region = session.region_name or match.group("region")
    mq = session.client("mq", region_name=region, endpoint_url=endpoint_url)
    secrets = session.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    with _aws_errors(f"Amazon MQ broker {broker_id!r} cannot be described"):
        description = mq.describe_broker(BrokerId=broker_id.strip())
    url = failover_url(description, protocol=protocol)
    with _aws_errors(f"broker secret {secret_arn!r} cannot be read"):
        secret = secrets.get_secret_value(SecretId=secret_arn.strip())
    username, password = _credentials(secret_arn, secret.get("SecretString"))
    return url.with_credentials(username, password)


def broker_url_from_env(
    environ: Mapping[str, str],
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
) -> BrokerURL:
    """The broker URL a process is configured with: ``BROKER_URL``, or an Amazon MQ broker.

    ``AMAZON_MQ_BROKER_ID`` + ``BROKER_SECRET_ARN`` (and optionally ``BROKER_PROTOCOL``:
    ``stomp``, ``amqp10`` or ``amqp091``) are resolved through :func:`resolve_amazon_mq`.
    Setting both forms, or neither, or only half of the Amazon MQ pair, is an error.
    """

    def value(name: str) -> str | None:
        return environ.get(name, "").strip() or None

    url, broker_id, secret_arn = (
        value("BROKER_URL"),
        value("AMAZON_MQ_BROKER_ID"),
        value("BROKER_SECRET_ARN"),
    )
    if url is not None:
        if broker_id or secret_arn:
            raise ConfigurationError(
                "set BROKER_URL or AMAZON_MQ_BROKER_ID + BROKER_SECRET_ARN, not both"
            )
        return BrokerURL.parse(url)
    if broker_id is None or secret_arn is None:
        missing = "AMAZON_MQ_BROKER_ID" if broker_id is None else "BROKER_SECRET_ARN"
        if broker_id is None and secret_arn is None:
            raise ConfigurationError(
                "no broker configured: set BROKER_URL, or AMAZON_MQ_BROKER_ID + BROKER_SECRET_ARN"
            )
        raise ConfigurationError(f"{missing} is not set (the Amazon MQ broker needs both)")
    return resolve_amazon_mq(
        broker_id,
        secret_arn,
        protocol=value("BROKER_PROTOCOL"),
        session=session,
        endpoint_url=endpoint_url,
    )


def url_with_credentials(url: BrokerURL) -> str:
    """``url`` as text *with* its password, for handing to a child process's environment.

    ``str(url)`` masks the password, as every log and message should; this is the one place
    that writes it out, percent-encoded so that ``BrokerURL.parse`` reads back the same URL.
    """
    user = ""
    if url.username is not None:
        user = quote(url.username, safe="")
        if url.password is not None:
            user += ":" + quote(url.password, safe="")
        user += "@"
    parts = [f"{e.scheme}://{user}{e.host}:{e.port}{e.path}" for e in url.endpoints]
    text = parts[0] if len(parts) == 1 else f"failover:({','.join(parts)})"
    if url.options:
        text += "?" + "&".join(
            f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(url.options.items())
        )
    return text


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """``python -m broker.aws -- COMMAND…``: resolve the broker, then exec COMMAND with it."""
    command = list(sys.argv[1:] if argv is None else argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("usage: python -m broker.aws -- COMMAND [ARG...]", file=sys.stderr)  # noqa: T201
        sys.exit(2)
    try:
        url = broker_url_from_env(os.environ)
    except BrokerError as exc:
        # One clear line, like every other start-up configuration failure.
        print(f"broker: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(1)
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"AMAZON_MQ_BROKER_ID", "BROKER_SECRET_ARN", "BROKER_PROTOCOL"}
    }
    environment["BROKER_URL"] = url_with_credentials(url)
    os.execvpe(command[0], command, environment)  # noqa: S606 - the operator's own command


def _credentials(secret_arn: str, text: str | None) -> tuple[str, str]:
    # The message names the secret and the problem, never the secret's content.
    if text is None:
        raise ConfigurationError(f"broker secret {secret_arn!r} has no SecretString")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigurationError(f"broker secret {secret_arn!r} is not a JSON object") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"broker secret {secret_arn!r} is not a JSON object")
    missing = [
        key
        for key in ("username", "password")
        if not isinstance(document.get(key), str) or not document[key]
    ]
    if missing:
        raise ConfigurationError(
            f"broker secret {secret_arn!r} lacks {' and '.join(missing)} (a non-empty string)"
        )
    return document["username"], document["password"]


@contextmanager
def _aws_errors(what: str) -> Iterator[None]:
    # An AWS answer that says no (not found, access denied) is configuration; no answer at all
    # is a connection problem a restart may cure.
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        reason = f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        raise ConfigurationError(f"{what}: {reason}") from None
    except NoCredentialsError:
        raise ConfigurationError(f"{what}: no AWS credentials found") from None
    except BotoCoreError as exc:
        raise BrokerConnectionError(f"{what}: AWS did not answer ({exc})") from None


if __name__ == "__main__":
    main()
