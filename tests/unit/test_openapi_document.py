"""The committed openapi.json is what the protos generate, and a valid OpenAPI 3.1 document."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from services.cli._docs import openapi_json

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_matches_generated():
    """Regenerating openapi.json from the descriptors changes nothing (run `make gen`)."""
    committed = (ROOT / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi_json(), "openapi.json is stale: run `make gen`"


def test_openapi_document_is_valid_and_covers_every_route():
    """The document validates against the OpenAPI 3.1 schema and lists the shop's routes."""
    document = json.loads(openapi_json())
    validate(document)
    assert {"/v1/orders", "/v1/orders/{order_id}:watch", "/v1/products"} <= set(document["paths"])
