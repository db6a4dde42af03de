"""SchemaRegistry: loading the schemas package, lookups, and clear errors for bad trees."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from broker.errors import SchemaError
from broker.registry import SchemaRegistry

if TYPE_CHECKING:
    from pathlib import Path

ORDER_PLACED = "shop.orders.v1.OrderPlaced"


def record(name: str = "Thing", namespace: str = "t.area.v1", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": namespace, "fields": [], **extra}


def write(root: Path, relative: str, schema: Any) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))


def test_default_registry_loads_the_schemas_package() -> None:
    """The package resources hold nine event types in ten versions."""
    registry = SchemaRegistry.default()
    assert len(registry.names) == 9
    assert len(registry) == 10
    assert len(list(registry)) == 10


def test_history_is_ordered_and_latest_is_newest() -> None:
    """history() is oldest first; latest() is what producers write."""
    registry = SchemaRegistry.default()
    assert [v.version for v in registry.history(ORDER_PLACED)] == [1, 2]
    assert registry.latest(ORDER_PLACED).version == 2
    assert registry.get(ORDER_PLACED, 1).path == "orders/OrderPlaced/v1.avsc"


def test_lookup_by_fingerprint_and_uri() -> None:
    """Each version is found by its fingerprint and names itself in a dataschema URI."""
    registry = SchemaRegistry.default()
    v1 = registry.get(ORDER_PLACED, 1)
    assert registry.by_fingerprint(v1.fingerprint) is v1
    assert registry.by_fingerprint(bytes(8)) is None
    assert v1.uri == "urn:avro:shop.orders.v1.OrderPlaced:v1"
    assert len(v1.fingerprint) == 8


def test_unknown_type_or_version_is_a_schema_error() -> None:
    """Asking for a type or version that does not exist names it in the error."""
    registry = SchemaRegistry.default()
    with pytest.raises(SchemaError, match=r"no schema for event type 'shop\.nope\.v1\.X'"):
        registry.latest("shop.nope.v1.X")
    with pytest.raises(SchemaError, match="no version 9 of"):
        registry.get(ORDER_PLACED, 9)


def test_from_directory_ignores_other_files(tmp_path: Path) -> None:
    """Only .avsc files are schemas; READMEs and JSON config next to them are skipped."""
    write(tmp_path, "area/Thing/v1.avsc", record())
    write(tmp_path, "area/Thing/notes.md", "# notes")
    write(tmp_path, "compatibility.json", "{}")
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.names == ["t.area.v1.Thing"]
    assert registry.latest("t.area.v1.Thing").path == "area/Thing/v1.avsc"


@pytest.mark.parametrize("name", ["thing.avsc", "v1.0.avsc", "V1.avsc", "v.avsc", "v-1.avsc"])
def test_bad_file_name_is_a_schema_error(tmp_path: Path, name: str) -> None:
    """A schema file not named v<N>.avsc is rejected with the expected pattern."""
    write(tmp_path, f"area/Thing/{name}", record())
    with pytest.raises(SchemaError, match=r"named v<N>\.avsc"):
        SchemaRegistry.from_directory(tmp_path)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "enum", "name": "Colour", "symbols": ["RED"]}, "must be a record"),
        ({"type": "array", "items": "string"}, "must be a record"),
        ('"string"', "must be a record"),
        ("{not json", "area/Thing/v1.avsc"),
        (record(fields=[{"name": "a", "type": "no.such.Type"}]), "area/Thing/v1.avsc"),
    ],
    ids=["enum", "array", "primitive", "not-json", "unknown-type"],
)
def test_invalid_schema_file_is_a_schema_error(tmp_path: Path, schema: Any, message: str) -> None:
    """A file that is not a valid record schema fails loading with its path."""
    write(tmp_path, "area/Thing/v1.avsc", schema)
    with pytest.raises(SchemaError, match=message):
        SchemaRegistry.from_directory(tmp_path)


def test_duplicate_version_is_a_schema_error(tmp_path: Path) -> None:
    """Two files claiming the same version of one type are refused."""
    write(tmp_path, "area/Thing/v1.avsc", record())
    write(tmp_path, "other/Thing/v1.avsc", record(doc="a copy elsewhere"))
    with pytest.raises(SchemaError, match=r"t\.area\.v1\.Thing: two files claim the same version"):
        SchemaRegistry.from_directory(tmp_path)


def test_zero_padded_duplicate_is_caught(tmp_path: Path) -> None:
    """v01 and v1 are the same version number and so collide."""
    write(tmp_path, "area/Thing/v1.avsc", record())
    write(tmp_path, "area/Thing/v01.avsc", record())
    with pytest.raises(SchemaError, match="same version"):
        SchemaRegistry.from_directory(tmp_path)


def test_schema_error_is_a_value_error(tmp_path: Path) -> None:
    """Generic handlers catching ValueError also see schema errors."""
    write(tmp_path, "area/Thing/bad.avsc", record())
    with pytest.raises(ValueError, match="v<N>"):
        SchemaRegistry.from_directory(tmp_path)
