"""The repository's event schemas: the compatibility gate and the conventions every event keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from broker import compat
from broker.codec import AvroCodec
from broker.registry import SchemaRegistry, SchemaVersion

NOW = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
LINES = [{"sku": "SKU-MUG", "quantity": 2, "unit_price_minor": 1250}]
STOCK = [{"sku": "SKU-MUG", "quantity": 2}]

#: the domain's events (DESIGN.md) with one realistic record each
SAMPLES: dict[str, dict[str, Any]] = {
    "shop.orders.v1.OrderPlaced": {
        "order_id": "ord-1",
        "customer_id": "cus-1",
        "lines": LINES,
        "total_minor": 2500,
        "currency": "EUR",
        "payment_method_id": "pm-1",
        "placed_at": NOW,
    },
    "shop.orders.v1.OrderConfirmed": {
        "order_id": "ord-1",
        "payment_id": "pay-1",
        "confirmed_at": NOW,
    },
    "shop.orders.v1.OrderCancelled": {
        "order_id": "ord-1",
        "reason": "payment declined: insufficient funds",
        "compensated": True,
        "cancelled_at": NOW,
    },
    "shop.inventory.v1.StockReserved": {
        "order_id": "ord-1",
        "reservation_id": "res-1",
        "lines": STOCK,
        "reserved_at": NOW,
    },
    "shop.inventory.v1.StockReleased": {
        "order_id": "ord-1",
        "reservation_id": "res-1",
        "lines": STOCK,
        "reason": "order cancelled",
        "released_at": NOW,
    },
    "shop.inventory.v1.StockLow": {"sku": "SKU-MUG", "available": 3, "threshold": 5, "at": NOW},
    "shop.payments.v1.PaymentAuthorized": {
        "payment_id": "pay-1",
        "order_id": "ord-1",
        "amount_minor": 2500,
        "currency": "EUR",
        "authorized_at": NOW,
    },
    "shop.payments.v1.PaymentDeclined": {
        "payment_id": "pay-1",
        "order_id": "ord-1",
        "amount_minor": 2500,
        "currency": "EUR",
        "reason": "insufficient funds",
        "declined_at": NOW,
    },
    "shop.payments.v1.PaymentRefunded": {
        "payment_id": "pay-1",
        "order_id": "ord-1",
        "amount_minor": 2500,
        "currency": "EUR",
        "refunded_at": NOW,
    },
}
SENSITIVE = ("card", "pan", "cvv", "cvc", "token", "password", "secret")


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.default()


def every_version() -> list[SchemaVersion]:
    return list(SchemaRegistry.default())


def walk(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every named type and field of a schema as JSON, with its path (inline definitions only)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, list):
        for branch in schema:
            found += walk(branch, path)
    elif isinstance(schema, dict):
        kind = schema["type"]
        if kind in {"record", "enum", "fixed"}:
            found.append((path or schema["name"], schema))
        for field in schema.get("fields", []):
            field_path = f"{path or schema['name']}.{field['name']}"
            found.append((field_path, field))
            found += walk(field["type"], field_path)
        if kind == "array":
            found += walk(schema["items"], f"{path}[]")
        if kind == "map":
            found += walk(schema["values"], f"{path}{{}}")
    return found


def test_repository_schemas_pass_their_configured_modes(registry: SchemaRegistry) -> None:
    """The build gate: every version of every event satisfies schemas/compatibility.json."""
    violations = compat.check_registry(registry, compat.load_modes())
    assert violations == [], "\n".join(str(v) for v in violations)


def test_every_domain_event_has_a_schema(registry: SchemaRegistry) -> None:
    """The nine events of DESIGN.md's domain table, and nothing else, are published."""
    assert registry.names == sorted(SAMPLES)


def test_order_placed_demonstrates_evolution(registry: SchemaRegistry) -> None:
    """OrderPlaced keeps v1 and publishes v2, whose added fields all carry defaults."""
    v1, v2 = registry.history("shop.orders.v1.OrderPlaced")
    old = {f["name"] for f in v1.schema["fields"]}
    added = [f for f in v2.schema["fields"] if f["name"] not in old]
    assert (v1.version, v2.version) == (1, 2)
    assert [f["name"] for f in added] == ["channel", "promo_code"]
    assert all("default" in f for f in added)


@pytest.mark.parametrize("version", every_version(), ids=lambda v: v.path)
def test_layout_matches_the_type_name(version: SchemaVersion) -> None:
    """schemas/<area>/<EventName>/v<N>.avsc holds shop.<area>.v1.<EventName>."""
    area, event, file = version.path.split("/")
    assert version.name == f"shop.{area}.v1.{event}"
    assert file == f"v{version.version}.avsc"


@pytest.mark.parametrize("version", every_version(), ids=lambda v: v.path)
def test_every_record_enum_and_field_is_documented(version: SchemaVersion) -> None:
    """Outside consumers read the docs in the files: none may be missing or empty."""
    undocumented = [path for path, node in walk(version.schema) if not node.get("doc")]
    assert undocumented == []


@pytest.mark.parametrize("version", every_version(), ids=lambda v: v.path)
def test_field_conventions(version: SchemaVersion) -> None:
    """Ids are strings, times timestamp-micros longs, money long minor units beside a currency."""
    for path, node in walk(version.schema):
        name = path.rsplit(".", 1)[-1]
        if "fields" in node or "symbols" in node:
            continue
        assert not any(word in name for word in SENSITIVE), f"{path}: no payment secrets"
        if name.endswith("_id") or name == "sku":
            assert node["type"] == "string", path
        if name.endswith("_at") or name == "at":
            assert node["type"] == {"type": "long", "logicalType": "timestamp-micros"}, path
        if name.endswith("_minor"):
            assert node["type"] == "long", path
        assert node["type"] not in ("float", "double"), f"{path}: no floating point in events"
    top = {f["name"] for f in version.schema["fields"]}
    if any(name.endswith("_minor") for name in top):
        assert "currency" in top


@pytest.mark.parametrize("version", every_version(), ids=lambda v: v.path)
def test_enums_have_a_default_symbol(version: SchemaVersion) -> None:
    """Every enum names a default, so adding a symbol later stays forward compatible."""
    for path, node in walk(version.schema):
        if node.get("type") == "enum":
            assert node.get("default") in node["symbols"], path


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_sample_record_round_trips(registry: SchemaRegistry, event_type: str) -> None:
    """A realistic record of each event encodes with every version and decodes unchanged."""
    codec = AvroCodec(registry)
    for version in registry.history(event_type):
        body, _ = codec.encode(event_type, SAMPLES[event_type], version=version.version)
        _, record = codec.decode(body, reader=version)
        assert {k: record[k] for k in SAMPLES[event_type]} == SAMPLES[event_type]


def test_readme_documents_every_event_type(registry: SchemaRegistry) -> None:
    """schemas/README.md lists every event type, so outside consumers can find each one."""
    readme = resources.files("schemas").joinpath("README.md").read_text(encoding="utf-8")
    missing = [name for name in registry.names if name not in readme]
    assert missing == []
