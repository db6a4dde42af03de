"""The committed asyncapi.yaml is what the code generates, and valid AsyncAPI 3.0."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from broker import SchemaError, SchemaRegistry, naming
from broker.asyncapi import build_asyncapi
from services.cli import main
from services.cli._docs import asyncapi_yaml
from services.topology import TOPOLOGY

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests/fixtures/asyncapi/asyncapi-3.0.0.schema.json"


def test_committed_document_matches_generated():
    """Regenerating asyncapi.yaml from schemas/ and the topology changes nothing
    (run `make gen` after changing either)."""
    committed = (ROOT / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == asyncapi_yaml(), "asyncapi.yaml is stale: run `make gen`"


def test_document_validates_against_the_asyncapi_3_schema():
    """The document satisfies the official AsyncAPI 3.0.0 JSON schema."""
    document = yaml.safe_load(asyncapi_yaml())
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(document)


def test_every_reference_resolves():
    """Every $ref points at something that exists in the document."""
    document = yaml.safe_load(asyncapi_yaml())

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        target = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in target, f"dangling $ref {ref}"
            target = target[part]


def test_channels_name_the_real_topology():
    """Channel addresses are the names the transports use, for every event and group."""
    document = yaml.safe_load(asyncapi_yaml())
    addresses = {c["address"] for c in document["channels"].values()}
    registry = SchemaRegistry.default()
    for service in TOPOLOGY:
        for event_type in service.publishes:
            assert event_type in addresses
            assert naming.activemq_topic(event_type) in addresses
        if service.consumes:
            assert naming.rabbit_group_queue(service.service) in addresses
            assert naming.rabbit_dead_letter_queue(service.service) in addresses
            for pattern in service.consumes:
                assert naming.activemq_consumer_queue(service.service, pattern) in addresses
    audit = document["channels"]["rabbitmq.queue.shop.audit"]["messages"]
    assert set(audit) == set(registry.names), "audit's shop.# must list every event"


def test_publishing_an_unknown_type_is_refused():
    """A topology naming an event without a schema cannot be documented."""
    with pytest.raises(SchemaError):
        build_asyncapi(SchemaRegistry.default(), publishers={"x": ["shop.x.v1.Nope"]}, consumers={})


def test_cli_writes_the_document(tmp_path, capsys):
    """`shopmq asyncapi -o FILE` writes the same document."""
    out = tmp_path / "a.yaml"
    assert main(["asyncapi", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == asyncapi_yaml()
