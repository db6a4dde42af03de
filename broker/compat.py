"""Schema compatibility: may a reader holding one version decode data written with another?

The rules are Avro's schema resolution (the specification's "Schema Resolution" section), checked
statically on fastavro's parsed form so every problem comes back with the field path it concerns.
One rule goes further than resolution: a changed logical type (``timestamp-micros`` to
``timestamp-millis``, a decimal's scale) resolves byte-for-byte but changes what the value means,
so it is reported too.

Modes, as in Confluent's schema registry, for a new version *N* of one event type:

=======================  ====================================================================
``BACKWARD``             a reader on *N* reads data written with *N-1*
``FORWARD``              a reader on *N-1* reads data written with *N*
``FULL``                 both
``*_TRANSITIVE``         the same against *every* earlier version, not only the previous one
``NONE``                 not checked
=======================  ====================================================================

The configured modes live in ``schemas/compatibility.json``, read by :func:`load_modes`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import fastavro

from broker.errors import ConfigurationError, SchemaError
from broker.registry import SchemaVersion

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from importlib.resources.abc import Traversable
    from pathlib import Path

    from broker.registry import SchemaRegistry

__all__ = [
    "Mode",
    "Modes",
    "Violation",
    "check_compatibility",
    "check_history",
    "check_registry",
    "load_modes",
    "parse_modes",
]

MODES_FILE = "compatibility.json"

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
#: reader type -> writer types it also accepts (the specification's promotions)
_PROMOTIONS: dict[str, frozenset[str]] = {
    "long": frozenset({"int"}),
    "float": frozenset({"int", "long"}),
    "double": frozenset({"int", "long", "float"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


class Mode(StrEnum):
    """A compatibility mode; see the module docstring."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def backward(self) -> bool:
        """New readers must read old data."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """Old readers must read new data."""
        return self.value.startswith(("FORWARD", "FULL"))

    @property
    def transitive(self) -> bool:
        """Checked against every earlier version, not only the previous one."""
        return self.value.endswith("_TRANSITIVE")


@dataclass(frozen=True, slots=True)
class Modes:
    """The configured mode of every event type: a default and per-type overrides."""

    default: Mode = Mode.FULL_TRANSITIVE
    overrides: Mapping[str, Mode] = field(default_factory=dict)

    def for_type(self, event_type: str) -> Mode:
        return self.overrides.get(event_type, self.default)


@dataclass(frozen=True, slots=True)
class Violation:
    """Version ``version`` of ``event_type`` breaks ``mode`` against the earlier ``against``."""

    event_type: str
    mode: Mode
    version: int
    against: int
    direction: Literal["backward", "forward"]
    """``backward``: the new version cannot read ``against`` data; ``forward``: the reverse."""
    problems: tuple[str, ...]

    @property
    def reader(self) -> int:
        return self.version if self.direction == "backward" else self.against

    @property
    def writer(self) -> int:
        return self.against if self.direction == "backward" else self.version

    def __str__(self) -> str:
        return (
            f"{self.event_type} v{self.version} breaks {self.mode} against v{self.against} "
            f"({self.direction}: a v{self.reader} reader cannot read v{self.writer} data): "
            + "; ".join(self.problems)
        )


def check_compatibility(
    reader: SchemaVersion | Mapping[str, Any], writer: SchemaVersion | Mapping[str, Any]
) -> list[str]:
    """Every reason a ``reader`` schema cannot read data written with ``writer``; empty if it can.

    Each schema is a :class:`SchemaVersion` or a schema as JSON (a ``.avsc`` file's object).
    """
    reader_schema, writer_schema = _parsed(reader), _parsed(writer)
    checker = _Checker(reader_schema["__named_schemas"], writer_schema["__named_schemas"])
    root = _short(str(reader_schema.get("name", "")) or "$")
    return checker.problems(reader_schema, writer_schema, root, frozenset())


def check_history(history: Sequence[SchemaVersion], mode: Mode) -> list[Violation]:
    """Check each version of one event type (oldest first) against its predecessors."""
    violations: list[Violation] = []
    for index in range(1, len(history)):
        new = history[index]
        earlier = history[:index] if mode.transitive else history[index - 1 : index]
        for old in earlier:
            if mode.backward and (problems := check_compatibility(new, old)):
                violations.append(_violation(new, old, mode, "backward", problems))
            if mode.forward and (problems := check_compatibility(old, new)):
                violations.append(_violation(new, old, mode, "forward", problems))
    return violations


def check_registry(registry: SchemaRegistry, modes: Modes | Mode) -> list[Violation]:
    """Check every event type in ``registry`` against its configured mode.

    Raises :class:`ConfigurationError` if an override names an event type that has no schema,
    which is almost always a typo that would silently leave the type on the default mode.
    """
    if isinstance(modes, Mode):
        modes = Modes(default=modes)
    unknown = sorted(set(modes.overrides) - set(registry.names))
    if unknown:
        raise ConfigurationError(f"compatibility overrides name unknown event types {unknown}")
    violations: list[Violation] = []
    for name in registry.names:
        violations.extend(check_history(registry.history(name), modes.for_type(name)))
    return violations


def load_modes(root: Traversable | Path | None = None) -> Modes:
    """Read ``compatibility.json`` from the ``schemas`` package (or from ``root``)."""
    base = resources.files("schemas") if root is None else root
    file = base.joinpath(MODES_FILE)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{MODES_FILE}: {exc}") from exc
    return parse_modes(data)


def parse_modes(data: Any) -> Modes:
    """Validate the JSON object of ``compatibility.json``; one clear error if it is wrong."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{MODES_FILE}: expected a JSON object")
    unknown = sorted(set(data) - {"$comment", "default", "overrides"})
    if unknown:
        raise ConfigurationError(f"{MODES_FILE}: unknown keys {unknown}")
    default = _mode(data.get("default", Mode.FULL_TRANSITIVE.value), "default")
    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict):
        raise ConfigurationError(f"{MODES_FILE}: 'overrides' must map event types to modes")
    return Modes(
        default=default,
        overrides={str(name): _mode(value, name) for name, value in overrides.items()},
    )


def _mode(value: Any, where: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise ConfigurationError(
            f"{MODES_FILE}: {where}: {value!r} is not a mode; use one of {[m.value for m in Mode]}"
        ) from None


def _violation(
    new: SchemaVersion,
    old: SchemaVersion,
    mode: Mode,
    direction: Literal["backward", "forward"],
    problems: list[str],
) -> Violation:
    return Violation(new.name, mode, new.version, old.version, direction, tuple(problems))


def _parsed(schema: SchemaVersion | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(schema, SchemaVersion):
        parsed: Any = schema.parsed
    else:
        try:
            parsed = fastavro.parse_schema(dict(schema))
        except (ValueError, TypeError, fastavro.schema.SchemaParseException) as exc:
            raise SchemaError(f"invalid schema: {exc}") from exc
    if not isinstance(parsed, dict):
        raise SchemaError("compatibility is checked between record (or other named) schemas")
    return parsed


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Checker:
    """Walks a reader and a writer schema together, collecting problems with their paths."""

    def __init__(self, reader_names: Mapping[str, Any], writer_names: Mapping[str, Any]) -> None:
        self._reader_names = reader_names
        self._writer_names = writer_names

    def problems(
        self, reader: Any, writer: Any, path: str, seen: frozenset[tuple[str, str]]
    ) -> list[str]:
        r = _resolve(reader, self._reader_names)
        w = _resolve(writer, self._writer_names)
        if isinstance(w, list):
            return self._writer_union(r, w, path, seen)
        if isinstance(r, list):
            # Resolution picks the first reader branch that matches the writer's type.
            readable = any(not self.problems(branch, w, path, seen) for branch in r)
            return (
                []
                if readable
                else [f"{path}: reader union {_describe(r)} has no branch for {_describe(w)}"]
            )
        reader_type, writer_type = r["type"], w["type"]
        if reader_type in _PRIMITIVES or writer_type in _PRIMITIVES:
            if reader_type != writer_type and writer_type not in _PROMOTIONS.get(reader_type, ()):
                return [f"{path}: writer {_describe(w)} cannot be read as {_describe(r)}"]
            return _logical(r, w, path)
        if reader_type != writer_type:
            return [f"{path}: writer {_describe(w)} cannot be read as {_describe(r)}"]
        return self._complex(r, w, path, seen)

    def _complex(
        self,
        reader: Mapping[str, Any],
        writer: Mapping[str, Any],
        path: str,
        seen: frozenset[tuple[str, str]],
    ) -> list[str]:
        """Two arrays, maps, records, enums or fixeds."""
        kind = reader["type"]
        if kind == "array":
            return self.problems(reader["items"], writer["items"], f"{path}[]", seen)
        if kind == "map":
            return self.problems(reader["values"], writer["values"], f"{path}{{}}", seen)
        if not _same_name(reader, writer):
            return [f"{path}: writer type {writer['name']} cannot be read as {reader['name']}"]
        if kind == "record":
            return self._record(reader, writer, path, seen)
        if kind == "enum":
            return _enum(reader, writer, path)
        return _fixed(reader, writer, path)

    def _writer_union(
        self, reader: Any, writer: list[Any], path: str, seen: frozenset[tuple[str, str]]
    ) -> list[str]:
        # Every branch the writer may pick must be readable, whatever the reader is.
        found: list[str] = []
        for branch in writer:
            if isinstance(reader, list):
                if all(self.problems(option, branch, path, seen) for option in reader):
                    written = _describe(_resolve(branch, self._writer_names))
                    found.append(
                        f"{path}: writer union branch {written} has no match in reader union "
                        f"{_describe(reader)}"
                    )
            else:
                found.extend(self.problems(reader, branch, path, seen))
        return found

    def _record(
        self,
        reader: Mapping[str, Any],
        writer: Mapping[str, Any],
        path: str,
        seen: frozenset[tuple[str, str]],
    ) -> list[str]:
        pair = (str(reader["name"]), str(writer["name"]))
        if pair in seen:  # a recursive type: this pair is already being checked further up
            return []
        seen |= {pair}
        written = {f["name"]: f for f in writer["fields"]}
        found: list[str] = []
        for reader_field in reader["fields"]:
            name = reader_field["name"]
            field_path = f"{path}.{name}"
            candidates = [name, *reader_field.get("aliases", ())]
            match = next((written[c] for c in candidates if c in written), None)
            if match is not None:
                found.extend(self.problems(reader_field["type"], match["type"], field_path, seen))
            elif "default" not in reader_field:
                found.append(f"{field_path}: not written by the writer and has no default")
        return found


def _resolve(schema: Any, names: Mapping[str, Any]) -> Any:
    """A schema node as a dict (or a list for a union), following named references."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return {"type": schema}
        try:
            return names[schema]
        except KeyError:
            raise SchemaError(f"unknown named type {schema!r}") from None
    if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)):
        return _resolve(schema["type"], names)
    if isinstance(schema, dict) and "name" not in schema and schema.get("type") in names:
        return names[schema["type"]]  # {"type": "some.Named"}: a reference written as an object
    return schema


def _same_name(reader: Mapping[str, Any], writer: Mapping[str, Any]) -> bool:
    """The specification compares unqualified names; a reader alias may name the writer's type."""
    aliases = {str(a) for a in reader.get("aliases", ())}
    return _short(reader["name"]) == _short(writer["name"]) or bool(
        {writer["name"], _short(writer["name"])} & aliases
    )


def _enum(reader: Mapping[str, Any], writer: Mapping[str, Any], path: str) -> list[str]:
    missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
    if not missing or reader.get("default") in reader["symbols"]:
        return []
    return [f"{path}: writer enum symbols {missing} are unknown to the reader (no enum default)"]


def _fixed(reader: Mapping[str, Any], writer: Mapping[str, Any], path: str) -> list[str]:
    if reader["size"] == writer["size"]:
        return []
    return [f"{path}: fixed size {writer['size']} cannot be read as size {reader['size']}"]


def _logical(reader: Mapping[str, Any], writer: Mapping[str, Any], path: str) -> list[str]:
    """Same bytes, different meaning: a logical type that changed is a break of its own."""
    before, after = writer.get("logicalType"), reader.get("logicalType")
    if before != after:
        return [f"{path}: logical type {before} cannot be read as {after}"]
    if after != "decimal":
        return []
    found: list[str] = []
    scale, written_scale = reader.get("scale", 0), writer.get("scale", 0)
    if scale != written_scale:
        found.append(f"{path}: decimal scale {written_scale} cannot be read as scale {scale}")
    if reader["precision"] < writer["precision"]:
        found.append(
            f"{path}: decimal precision {writer['precision']} exceeds the reader's "
            f"{reader['precision']}"
        )
    return found


def _describe(schema: Any) -> str:
    if isinstance(schema, list):
        return "[" + ", ".join(_describe(s) for s in schema) + "]"
    if isinstance(schema, str):
        return schema
    text = str(schema.get("name") or schema["type"])
    if schema.get("logicalType"):
        text += f" ({schema['logicalType']})"
    return text
