"""services.discovery against a real moto_server: Cloud Map instances become gRPC addresses."""

from __future__ import annotations

import uuid

import pytest

from services.discovery import DiscoveryError, discover, discover_upstreams, grpc_target
from tests.support.moto_server import moto_server, session
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def namespace(endpoint):
    """A fresh Cloud Map namespace (unique name) in the moto server."""
    client = session().client("servicediscovery", endpoint_url=endpoint)
    name = f"shop-{uuid.uuid4().hex[:10]}.local"
    client.create_http_namespace(Name=name)
    namespace_id = next(
        ns["Id"] for ns in client.list_namespaces()["Namespaces"] if ns["Name"] == name
    )
    return name, namespace_id


def _register(endpoint, namespace_id, service, instances):
    client = session().client("servicediscovery", endpoint_url=endpoint)
    service_id = client.create_service(Name=service, NamespaceId=namespace_id)["Service"]["Id"]
    for attributes in instances:
        client.register_instance(
            ServiceId=service_id, InstanceId=uuid.uuid4().hex, Attributes=attributes
        )


def test_every_registered_task_is_an_address_with_its_port(endpoint, namespace):
    """Two ECS-style registrations (IPv4 + port attributes) come back as two host:port."""
    name, namespace_id = namespace
    _register(
        endpoint,
        namespace_id,
        "orders",
        [
            {"AWS_INSTANCE_IPV4": "10.0.1.5", "AWS_INSTANCE_PORT": "50051"},
            {"AWS_INSTANCE_IPV4": "10.0.2.7", "AWS_INSTANCE_PORT": "50051"},
        ],
    )
    addresses = discover(name, "orders", session=session(), endpoint_url=endpoint)
    assert sorted(addresses) == ["10.0.1.5:50051", "10.0.2.7:50051"]
    assert grpc_target(sorted(addresses)) == "ipv4:10.0.1.5:50051,10.0.2.7:50051"


def test_instance_without_port_takes_the_services_default_port(endpoint, namespace):
    """An A-record-only registration (no AWS_INSTANCE_PORT) uses the known service port."""
    name, namespace_id = namespace
    _register(endpoint, namespace_id, "inventory", [{"AWS_INSTANCE_IPV4": "10.0.3.9"}])
    assert discover(
        name, "inventory", default_port=50052, session=session(), endpoint_url=endpoint
    ) == ["10.0.3.9:50052"]
    with pytest.raises(DiscoveryError, match="has no AWS_INSTANCE_IPV4/IPV6 or AWS_INSTANCE_PORT"):
        discover(name, "inventory", session=session(), endpoint_url=endpoint)


def test_ipv6_instances_are_bracketed(endpoint, namespace):
    """An IPv6 registration is written [addr]:port, and a target of them uses the ipv6 scheme."""
    name, namespace_id = namespace
    _register(
        endpoint,
        namespace_id,
        "audit",
        [
            {"AWS_INSTANCE_IPV6": "fd00::5", "AWS_INSTANCE_PORT": "50055"},
            {"AWS_INSTANCE_IPV6": "fd00::6", "AWS_INSTANCE_PORT": "50055"},
        ],
    )
    addresses = sorted(discover(name, "audit", session=session(), endpoint_url=endpoint))
    assert addresses == ["[fd00::5]:50055", "[fd00::6]:50055"]
    assert grpc_target(addresses) == "ipv6:[fd00::5]:50055,[fd00::6]:50055"


def test_upstreams_map_each_service_to_one_target(endpoint, namespace):
    """discover_upstreams gives what <NAME>_ADDR would: a gRPC target per upstream."""
    name, namespace_id = namespace
    _register(
        endpoint,
        namespace_id,
        "payments",
        [{"AWS_INSTANCE_IPV4": "10.0.4.1", "AWS_INSTANCE_PORT": "50053"}],
    )
    _register(endpoint, namespace_id, "inventory", [{"AWS_INSTANCE_IPV4": "10.0.4.2"}])
    upstreams = discover_upstreams(
        name,
        [("payments", 50053), ("inventory", 50052)],
        session=session(),
        endpoint_url=endpoint,
    )
    assert upstreams == {"payments": "10.0.4.1:50053", "inventory": "10.0.4.2:50052"}


def test_service_with_no_instances_is_a_discovery_error(endpoint, namespace):
    """A registered service with nobody in it fails with one line naming namespace/service."""
    name, namespace_id = namespace
    _register(endpoint, namespace_id, "notifications", [])
    with pytest.raises(DiscoveryError, match=f"{name}/notifications: no instance registered"):
        discover(name, "notifications", session=session(), endpoint_url=endpoint)


def test_bad_port_attribute_is_a_discovery_error(endpoint, namespace):
    """A registration whose port attribute is not a port is reported, not passed on."""
    name, namespace_id = namespace
    _register(
        endpoint,
        namespace_id,
        "orders",
        [{"AWS_INSTANCE_IPV4": "10.0.5.1", "AWS_INSTANCE_PORT": "grpc"}],
    )
    with pytest.raises(DiscoveryError, match="'grpc' is not a port"):
        discover(name, "orders", session=session(), endpoint_url=endpoint)


def test_unreachable_cloud_map_is_a_discovery_error():
    """No server at the endpoint is a DiscoveryError (a LookupError), not a botocore one."""
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LookupError, match="no answer"):
        discover("shop.local", "orders", session=session(), endpoint_url=closed)


def test_mixed_families_cannot_share_a_target():
    """IPv4 and IPv6 addresses in one target are refused (gRPC takes one scheme per target)."""
    with pytest.raises(DiscoveryError, match="cannot mix"):
        grpc_target(["10.0.0.1:50051", "[fd00::1]:50051"])
    with pytest.raises(DiscoveryError, match="no address"):
        grpc_target([])
