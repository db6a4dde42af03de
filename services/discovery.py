"""AWS Cloud Map service discovery through boto3: upstream addresses without DNS.

Inside a VPC the services find each other by DNS names that Cloud Map keeps up to date
(``orders.shop.local:50051``; ``deploy/aws`` registers them). DNS answers are cached by
resolvers and carry no port, so a process may instead ask Cloud Map's API directly
(``servicediscovery.discover_instances``): every registered, healthy instance with the port it
registered. ECS registers a task with the attributes ``AWS_INSTANCE_IPV4`` and
``AWS_INSTANCE_PORT``.

:func:`discover` returns ``host:port`` strings; :func:`grpc_target` turns them into one gRPC
target (``ipv4:10.0.1.5:50051,10.0.2.7:50051``) that a channel with the ``round_robin`` policy
spreads calls over. boto3 is synchronous: call these at start-up or through
``asyncio.to_thread``.

``discover_instances`` is served from the ``data-servicediscovery`` host, which botocore
reaches by prefixing the endpoint's host name; pass ``endpoint_url`` (a VPC endpoint, or a local
moto server in tests) to turn that prefix off.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Final, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.runtime.errors import ServiceError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["DiscoveryError", "HealthFilter", "discover", "discover_upstreams", "grpc_target"]

HealthFilter = Literal["HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL"]
_MAX_PORT: Final = 65535


class DiscoveryError(ServiceError, LookupError):
    """Cloud Map named no usable instance: unknown namespace or service, none registered, an
    instance without an address or port, or Cloud Map did not answer."""


def discover(
    namespace: str,
    service: str,
    *,
    default_port: int | None = None,
    health: HealthFilter = "HEALTHY_OR_ELSE_ALL",
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
) -> list[str]:
    """``host:port`` of every instance of ``service`` in Cloud Map ``namespace``.

    The port is the instance's ``AWS_INSTANCE_PORT`` attribute, or ``default_port`` for
    instances registered without one (an A-record-only service). ``health`` is Cloud Map's
    filter; the default answers with the healthy instances, or all of them when none is
    healthy, so a failing health check does not leave a caller with nothing to try.
    """
    session = session or boto3.Session()
    client = session.client(
        "servicediscovery",
        endpoint_url=endpoint_url,
        # The data-plane host prefix only exists on AWS's own endpoint.
        config=Config(inject_host_prefix=endpoint_url is None),
    )
    try:
        reply = client.discover_instances(
            NamespaceName=namespace, ServiceName=service, HealthStatus=health
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DiscoveryError(
            f"Cloud Map {namespace}/{service}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise DiscoveryError(f"Cloud Map {namespace}/{service}: no answer ({exc})") from None
    addresses: list[str] = []
    for instance in reply.get("Instances", []):
        attributes = instance.get("Attributes", {})
        host = attributes.get("AWS_INSTANCE_IPV4") or attributes.get("AWS_INSTANCE_IPV6")
        port_text = attributes.get("AWS_INSTANCE_PORT")
        port = default_port if port_text is None else _port(port_text)
        if not host or port is None:
            raise DiscoveryError(
                f"Cloud Map {namespace}/{service}: instance {instance.get('InstanceId')!r} "
                "has no AWS_INSTANCE_IPV4/IPV6 or AWS_INSTANCE_PORT"
            )
        addresses.append(_join(host, port))
    if not addresses:
        raise DiscoveryError(f"Cloud Map {namespace}/{service}: no instance registered")
    return addresses


def grpc_target(addresses: Sequence[str]) -> str:
    """One gRPC target naming every address: ``ipv4:a:p,b:p`` (or ``ipv6:[a]:p,…``)."""
    if not addresses:
        raise DiscoveryError("no address to build a gRPC target from")
    if len(addresses) == 1:
        return addresses[0]
    families = {"ipv6" if address.startswith("[") else "ipv4" for address in addresses}
    if len(families) != 1:
        raise DiscoveryError(f"cannot mix IPv4 and IPv6 in one gRPC target: {list(addresses)}")
    return f"{families.pop()}:{','.join(addresses)}"


def discover_upstreams(
    namespace: str,
    services: Iterable[tuple[str, int]],
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
) -> dict[str, str]:
    """A gRPC target per upstream, from ``(service, default port)`` pairs; the alternative to
    the ``<NAME>_ADDR`` variables."""
    return {
        name: grpc_target(
            discover(
                namespace,
                name,
                default_port=port,
                session=session,
                endpoint_url=endpoint_url,
            )
        )
        for name, port in services
    }


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise DiscoveryError(f"AWS_INSTANCE_PORT {text!r} is not a port") from None
    if not 0 < port <= _MAX_PORT:
        raise DiscoveryError(f"AWS_INSTANCE_PORT {port} is outside 1..{_MAX_PORT}")
    return port


def _join(host: str, port: int) -> str:
    try:
        is_v6 = ipaddress.ip_address(host).version == 6  # noqa: PLR2004 - the IP version
    except ValueError:
        is_v6 = False  # a host name
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"
