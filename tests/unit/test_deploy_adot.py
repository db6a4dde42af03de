"""deploy/adot and deploy/activemq: collector configs wire their receivers to their exporters,
and the ActiveMQ container listens with the protocols the transports speak."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("collector-aws.yaml", "collector-local.yaml")


def _config(name: str) -> dict:
    return yaml.safe_load((ROOT / "deploy/adot" / name).read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_every_pipeline_names_only_declared_components(name):
    """Pipelines use declared receivers/processors/exporters, and every one declared is used."""
    config = _config(name)
    pipelines = config["service"]["pipelines"]
    for kind in ("receivers", "processors", "exporters"):
        used = {item for pipeline in pipelines.values() for item in pipeline.get(kind, [])}
        assert used == set(config.get(kind, {})), (name, kind)
    assert set(config["service"].get("extensions", [])) == set(config.get("extensions", {}))


def test_aws_collector_sends_traces_to_xray_and_metrics_to_amp_signed():
    """OTLP -> X-Ray; Prometheus scrape of the task's /metrics -> AMP remote write with SigV4."""
    config = _config("collector-aws.yaml")
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert pipelines["traces"]["exporters"] == ["awsxray"]
    assert "prometheus" in pipelines["metrics"]["receivers"]
    assert pipelines["metrics"]["exporters"] == ["prometheusremotewrite"]
    remote_write = config["exporters"]["prometheusremotewrite"]
    assert remote_write["auth"]["authenticator"] == "sigv4auth"
    assert config["extensions"]["sigv4auth"]["service"] == "aps"
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    (scrape,) = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert scrape["static_configs"][0]["targets"] == ["127.0.0.1:${env:METRICS_PORT}"]
    assert config["extensions"]["health_check"]["endpoint"].endswith(":13133")


def test_local_collector_sends_traces_to_the_compose_trace_ui():
    """The compose variant exports OTLP to Jaeger's collector port."""
    config = _config("collector-local.yaml")
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"


def test_activemq_container_listens_with_stomp_amqp_and_openwire_on_all_interfaces():
    """STOMP 61613 and AMQP 1.0 5672 (plus OpenWire) bound to 0.0.0.0, with a per-queue DLQ."""
    tree = ET.parse(ROOT / "deploy/activemq/activemq.xml")
    core = "{http://activemq.apache.org/schema/core}"
    connectors = {c.get("name"): c.get("uri", "") for c in tree.iter(f"{core}transportConnector")}
    assert connectors["stomp"].startswith("stomp://0.0.0.0:61613")
    assert connectors["amqp"].startswith("amqp://0.0.0.0:5672")
    assert connectors["openwire"].startswith("tcp://0.0.0.0:61616")
    (dlq,) = tree.iter(f"{core}individualDeadLetterStrategy")
    assert dlq.get("queuePrefix") == "DLQ."
    (broker,) = tree.iter(f"{core}broker")
    assert broker.get("schedulerSupport") == "true"
