"""The compatibility gate: each mode accepts exactly the changes it should, with clear reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import avro.compatibility
import avro.schema
import pytest

from broker import compat
from broker.compat import Mode, Modes
from broker.errors import ConfigurationError, SchemaError
from broker.registry import SchemaRegistry

FIXTURES = Path(__file__).parent.parent / "fixtures" / "schemas" / "evolution"
B, BT, F, FT, FU, FUT = (
    Mode.BACKWARD,
    Mode.BACKWARD_TRANSITIVE,
    Mode.FORWARD,
    Mode.FORWARD_TRANSITIVE,
    Mode.FULL,
    Mode.FULL_TRANSITIVE,
)
ALL = frozenset({B, BT, F, FT, FU, FUT})

#: fixture event type -> the modes its history satisfies (every other mode must report it)
PASSES: dict[str, frozenset[Mode]] = {
    "AddOptionalField": ALL,
    "RemoveOptionalField": ALL,
    "AddEnumSymbolWithDefault": ALL,
    "AddRequiredField": frozenset({F, FT}),
    "RemoveRequiredField": frozenset({B, BT}),
    "PromoteIntToLong": frozenset({B, BT}),
    "AddEnumSymbol": frozenset({B, BT}),
    "RemoveEnumSymbol": frozenset({F, FT}),
    "NarrowUnion": frozenset({F, FT}),
    "ChangeFieldType": frozenset(),
    "ChangeNestedType": frozenset(),
    "ChangeLogicalType": frozenset(),
    "BackwardNotTransitive": frozenset({B, F, FT, FU}),
    "ForwardNotTransitive": frozenset({B, BT, F, FU}),
}


@pytest.fixture(scope="module")
def fixtures() -> SchemaRegistry:
    return SchemaRegistry.from_directory(FIXTURES)


def history(registry: SchemaRegistry, case: str) -> list[Any]:
    return registry.history(f"fixture.cases.v1.{case}")


def test_fixture_table_covers_every_fixture(fixtures: SchemaRegistry) -> None:
    """Every fixture history has a row in the table, so none goes unchecked."""
    assert {name.rsplit(".", 1)[-1] for name in fixtures.names} == set(PASSES)


@pytest.mark.parametrize("mode", sorted(ALL))
@pytest.mark.parametrize("case", sorted(PASSES))
def test_mode_accepts_exactly_the_changes_it_allows(
    fixtures: SchemaRegistry, case: str, mode: Mode
) -> None:
    """A history passes a mode iff the table says so; a failure names the type and mode."""
    violations = compat.check_history(history(fixtures, case), mode)
    if mode in PASSES[case]:
        assert violations == []
    else:
        assert violations, f"{case} should break {mode}"
        assert all(v.mode is mode and v.event_type.endswith(case) for v in violations)


def test_none_accepts_anything(fixtures: SchemaRegistry) -> None:
    """Mode NONE never reports, even for a type change."""
    assert compat.check_history(history(fixtures, "ChangeFieldType"), Mode.NONE) == []


def test_transitive_checks_against_every_earlier_version(fixtures: SchemaRegistry) -> None:
    """v3 reads v2 data (BACKWARD passes) but not v1 data (BACKWARD_TRANSITIVE fails)."""
    versions = history(fixtures, "BackwardNotTransitive")
    assert compat.check_history(versions, Mode.BACKWARD) == []
    [violation] = compat.check_history(versions, Mode.BACKWARD_TRANSITIVE)
    assert (violation.version, violation.against, violation.direction) == (3, 1, "backward")
    assert (violation.reader, violation.writer) == (3, 1)
    assert violation.problems == (
        "BackwardNotTransitive.note: not written by the writer and has no default",
    )


def test_forward_transitive_checks_old_readers_against_every_new_version(
    fixtures: SchemaRegistry,
) -> None:
    """A v2 reader reads v3 data (FORWARD passes); a v1 reader cannot (FORWARD_TRANSITIVE fails)."""
    versions = history(fixtures, "ForwardNotTransitive")
    assert compat.check_history(versions, Mode.FORWARD) == []
    [violation] = compat.check_history(versions, Mode.FORWARD_TRANSITIVE)
    assert (violation.version, violation.against, violation.direction) == (3, 1, "forward")
    assert (violation.reader, violation.writer) == (1, 3)


@pytest.mark.parametrize(
    ("case", "mode", "direction", "problem"),
    [
        ("AddRequiredField", B, "backward", "AddRequiredField.note: not written by the writer"),
        ("RemoveRequiredField", F, "forward", "RemoveRequiredField.note: not written by the"),
        ("ChangeFieldType", B, "backward", "ChangeFieldType.count: writer int cannot be read as"),
        ("ChangeNestedType", F, "forward", "ChangeNestedType.lines[].quantity: writer string"),
        ("PromoteIntToLong", F, "forward", "PromoteIntToLong.count: writer long cannot be read"),
        (
            "RemoveEnumSymbol",
            B,
            "backward",
            "RemoveEnumSymbol.colour: writer enum symbols ['BLUE']",
        ),
        ("AddEnumSymbol", F, "forward", "AddEnumSymbol.colour: writer enum symbols ['BLUE']"),
        ("NarrowUnion", B, "backward", "NarrowUnion.note: writer null cannot be read as string"),
        ("ChangeLogicalType", B, "backward", "logical type timestamp-micros cannot be read as"),
    ],
)
def test_violation_names_direction_and_field_path(
    fixtures: SchemaRegistry, case: str, mode: Mode, direction: str, problem: str
) -> None:
    """Each violation says which way it breaks and which field, by path."""
    [violation] = compat.check_history(history(fixtures, case), mode)
    assert violation.direction == direction
    assert any(p.startswith(problem) or problem in p for p in violation.problems)
    text = str(violation)
    assert text.startswith(f"fixture.cases.v1.{case} v2 breaks {mode.value} against v1")
    assert problem in text


def _avro_says_compatible(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    checker = avro.compatibility.ReaderWriterCompatibilityChecker()
    result = checker.get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    return bool(result.compatibility is avro.compatibility.SchemaCompatibilityType.compatible)


@pytest.mark.parametrize("case", sorted(PASSES))
def test_verdicts_agree_with_the_avro_reference_checker(
    fixtures: SchemaRegistry, case: str
) -> None:
    """Every reader/writer pair gets the avro package's verdict, except logical-type changes."""
    versions = history(fixtures, case)
    for reader in versions:
        for writer in versions:
            ours = not compat.check_compatibility(reader, writer)
            reference = _avro_says_compatible(reader.schema, writer.schema)
            if case == "ChangeLogicalType" and reader is not writer:
                # avro resolves the bytes; we also refuse a change of meaning.
                assert (ours, reference) == (False, True)
            else:
                assert ours == reference, (reader.version, writer.version)


def record(*fields: dict[str, Any], name: str = "R", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t.v1", "fields": list(fields), **extra}


def fld(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


@pytest.mark.parametrize(
    ("reader", "writer", "problem"),
    [
        (record(fld("a", "long")), record(fld("a", "int")), None),
        (record(fld("a", "double")), record(fld("a", "float")), None),
        (record(fld("a", "bytes")), record(fld("a", "string")), None),
        (record(fld("a", "float")), record(fld("a", "double")), "R.a: writer double cannot"),
        (record(fld("a", ["null", "long"])), record(fld("a", "int")), None),
        (
            record(fld("a", ["null", "string"])),
            record(fld("a", "int")),
            "reader union [null, string]",
        ),
        (record(fld("a", "string")), record(fld("a", ["string", "int"])), "R.a: writer int cannot"),
        (
            record(fld("a", ["null", "string"])),
            record(fld("a", ["null", "string", "int"])),
            "R.a: writer union branch int has no match",
        ),
        (record(fld("b", "string", aliases=["a"])), record(fld("a", "string")), None),
        (
            record(fld("a", "string"), name="S", aliases=["t.v1.R"]),
            record(fld("a", "string")),
            None,
        ),
        (record(fld("a", "string"), name="S"), record(fld("a", "string")), "writer type t.v1.R"),
        (
            record(fld("a", {"type": "fixed", "name": "F", "size": 4})),
            record(fld("a", {"type": "fixed", "name": "F", "size": 8})),
            "R.a: fixed size 8 cannot be read as size 4",
        ),
        (
            record(fld("m", {"type": "map", "values": "int"})),
            record(fld("m", {"type": "map", "values": "string"})),
            "R.m{}: writer string",
        ),
        (
            record(
                fld("d", {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2})
            ),
            record(
                fld("d", {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 3})
            ),
            "R.d: decimal scale 3 cannot be read as scale 2",
        ),
        (
            record(
                fld("d", {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2})
            ),
            record(
                fld("d", {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2})
            ),
            "R.d: decimal precision 9 exceeds the reader's 6",
        ),
        (
            record(fld("a", {"type": "array", "items": "int"})),
            record(fld("a", "int")),
            "R.a: writer int",
        ),
    ],
    ids=[
        "int-to-long",
        "float-to-double",
        "string-to-bytes",
        "double-to-float",
        "int-into-union",
        "int-not-in-union",
        "union-into-plain",
        "union-branch-missing",
        "field-alias",
        "record-alias",
        "record-renamed",
        "fixed-size",
        "map-values",
        "decimal-scale",
        "decimal-precision",
        "array-vs-int",
    ],
)
def test_pairwise_rules(
    reader: dict[str, Any], writer: dict[str, Any], problem: str | None
) -> None:
    """Avro resolution rules pair by pair: promotions, unions, aliases, fixed, maps, decimals."""
    problems = compat.check_compatibility(reader, writer)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_recursive_schemas_terminate() -> None:
    """A self-referencing record (a linked list) is checked without endless recursion."""
    node = record(fld("value", "int"), fld("next", ["null", "t.v1.R"], default=None))
    wider = record(fld("value", "long"), fld("next", ["null", "t.v1.R"], default=None))
    assert compat.check_compatibility(wider, node) == []
    assert compat.check_compatibility(node, wider) == ["R.value: writer long cannot be read as int"]


def test_invalid_schema_is_a_schema_error() -> None:
    """A schema fastavro cannot parse raises SchemaError, not a fastavro exception."""
    with pytest.raises(SchemaError, match="invalid schema"):
        compat.check_compatibility(record(fld("a", "no.such.Type")), record(fld("a", "int")))


def test_fixture_tree_passes_its_own_configuration(fixtures: SchemaRegistry) -> None:
    """Per-type overrides in compatibility.json let each fixture pass its strongest mode."""
    modes = compat.load_modes(FIXTURES)
    assert modes.default is FUT
    assert modes.for_type("fixture.cases.v1.AddRequiredField") is FT
    assert compat.check_registry(fixtures, modes) == []


def test_fixture_tree_fails_the_default_mode(fixtures: SchemaRegistry) -> None:
    """Under FULL_TRANSITIVE alone every breaking fixture is reported, the safe ones are not."""
    reported = {v.event_type.rsplit(".", 1)[-1] for v in compat.check_registry(fixtures, FUT)}
    assert reported == {case for case, modes in PASSES.items() if FUT not in modes}


def test_override_naming_an_unknown_type_is_rejected(fixtures: SchemaRegistry) -> None:
    """A typo in overrides fails loudly instead of leaving the type on the default."""
    modes = Modes(overrides={"fixture.cases.v1.Typo": Mode.NONE})
    with pytest.raises(
        ConfigurationError, match=r"unknown event types \['fixture.cases.v1.Typo'\]"
    ):
        compat.check_registry(fixtures, modes)


def test_mode_flags() -> None:
    """Each mode's direction and transitivity flags follow its name."""
    assert (B.backward, B.forward, B.transitive) == (True, False, False)
    assert (FT.backward, FT.forward, FT.transitive) == (False, True, True)
    assert (FUT.backward, FUT.forward, FUT.transitive) == (True, True, True)
    assert (Mode.NONE.backward, Mode.NONE.forward) == (False, False)


def test_repository_modes_load_from_the_package() -> None:
    """load_modes() reads schemas/compatibility.json through package resources."""
    assert compat.load_modes() == Modes(default=FUT, overrides={})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ({"defaults": "FULL"}, "unknown keys"),
        ({"default": "SIDEWAYS"}, "default: 'SIDEWAYS' is not a mode"),
        ({"overrides": ["a"]}, "'overrides' must map"),
        ({"overrides": {"t.v1.R": "full"}}, "t.v1.R: 'full' is not a mode"),
    ],
)
def test_bad_mode_files_are_configuration_errors(data: Any, message: str) -> None:
    """A malformed compatibility.json fails with one line saying what is wrong."""
    with pytest.raises(ConfigurationError, match=message):
        compat.parse_modes(data)


def test_missing_or_broken_mode_file_is_a_configuration_error(tmp_path: Path) -> None:
    """No file, or a file that is not JSON, raises ConfigurationError naming the file."""
    with pytest.raises(ConfigurationError, match=r"compatibility\.json"):
        compat.load_modes(tmp_path)
    (tmp_path / "compatibility.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"compatibility\.json"):
        compat.load_modes(tmp_path)


def test_defaults_apply_when_keys_are_absent() -> None:
    """An empty object means FULL_TRANSITIVE for every type."""
    assert compat.parse_modes({}) == Modes()
    assert Modes().for_type("anything") is FUT
