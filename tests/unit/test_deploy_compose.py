"""deploy/: the compose file is a valid Compose Specification document wired as documented,
and the image is multi-stage, non-root, with a health probe (there is no Docker engine here to
run them, so they are checked by validation)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/docker-compose.yml"
SCHEMA = ROOT / "tests/fixtures/compose/compose-spec.json"
SHOP = ("orders", "inventory", "payments", "notifications", "audit", "gateway")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_validates_against_the_compose_specification(compose):
    """The file (anchors and merge keys resolved) satisfies the Compose Specification schema."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator(schema).validate(compose)


def test_every_service_the_mission_names_is_there(compose):
    """Both Amazon MQ engines, the stores, the collector, a trace UI, five services, gateway."""
    expected = {"activemq", "rabbitmq", "postgres", "redis", "adot", "jaeger", *SHOP}
    assert expected <= set(compose["services"])


def test_shop_processes_wait_for_healthy_dependencies(compose):
    """Every shop process has a health probe and starts only after what it needs is healthy."""
    services = compose["services"]
    for name in SHOP:
        service = services[name]
        assert service["healthcheck"]["test"][-1] == "services.runtime.healthcheck", name
        for dependency, rule in service["depends_on"].items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if "healthcheck" in services[dependency]:
                assert rule["condition"] == "service_healthy", (name, dependency)
    assert services["orders"]["depends_on"]["inventory"]["condition"] == "service_healthy"
    assert set(SHOP) - {"gateway"} <= set(services["gateway"]["depends_on"])


def test_brokers_offer_the_protocols_the_transports_speak(compose):
    """ActiveMQ exposes STOMP (and AMQP 1.0); RabbitMQ enables its AMQP 1.0 plugin."""
    services = compose["services"]
    assert "61613:61613" in services["activemq"]["ports"]
    assert "rabbitmq_amqp1_0" in " ".join(services["rabbitmq"]["command"])
    for name in SHOP[:-1]:
        environment = services[name]["environment"]
        assert environment["BROKER_URL"].startswith("${SHOP_BROKER_URL:-stomp://activemq:61613}")
        assert environment["SERVICE_NAME"] == name
        assert environment["DATABASE_URL"].endswith(f"/{name}")
    init = (ROOT / "deploy/postgres/init.sql").read_text()
    assert all(f"CREATE DATABASE {name};" in init for name in SHOP[:-1])


def test_gateway_routes_to_every_service(compose):
    """The gateway's upstream map names each service at its compose address and port."""
    upstreams = dict(
        item.split("=")
        for item in compose["services"]["gateway"]["environment"]["GATEWAY_UPSTREAMS"].split(",")
    )
    ports = {
        "orders": 50051,
        "inventory": 50052,
        "payments": 50053,
        "notifications": 50054,
        "audit": 50055,
    }
    assert upstreams == {name: f"{name}:{port}" for name, port in ports.items()}


def test_dockerfile_is_multi_stage_non_root_with_a_health_probe():
    """Build tools stay in the build stage; the runtime stage runs as an unprivileged user."""
    text = (ROOT / "deploy/Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    user = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert user, "the runtime stage must set USER"
    assert user[-1].split(":")[0] not in {"root", "0"}
    assert "build-essential" not in runtime
    assert "services.runtime.healthcheck" in runtime


def test_local_collector_config_wires_receivers_to_exporters():
    """The local ADOT config sends OTLP traces to Jaeger and scrapes every process."""
    config = yaml.safe_load((ROOT / "deploy/adot/collector-local.yaml").read_text())
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert pipelines["traces"]["exporters"] == ["otlp/jaeger"]
    targets = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]["static_configs"][0][
        "targets"
    ]
    assert {t.split(":")[0] for t in targets} == set(SHOP)
