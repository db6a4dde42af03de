"""Avro event schemas, loaded once from the ``schemas`` package (every published version kept).

Layout: ``schemas/<area>/<EventName>/v<N>.avsc``. Each file holds one record schema whose Avro
full name (``shop.orders.v1.OrderPlaced``) is the event type; ``N`` orders the versions. Consumers
read with the newest version they hold and resolve any older or newer writer version against it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from broker.errors import SchemaError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from importlib.resources.abc import Traversable

__all__ = ["SchemaRegistry", "SchemaVersion"]

_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One published version of one event schema."""

    name: str
    """Avro full name, which is also the CloudEvents ``type``."""
    version: int
    schema: dict[str, Any] = field(repr=False)
    """The schema as written in its file (JSON object)."""
    parsed: Any = field(repr=False)
    """fastavro's parsed form, used for encoding and decoding."""
    fingerprint: bytes
    """CRC-64-AVRO of the parsing canonical form, little-endian: the single-object header."""
    path: str

    @property
    def uri(self) -> str:
        """The CloudEvents ``dataschema`` value naming this version."""
        return f"urn:avro:{self.name}:v{self.version}"


class SchemaRegistry:
    """Every version of every event schema, indexed by name and by fingerprint."""

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_name: dict[str, list[SchemaVersion]] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for version in versions:
            self._by_name.setdefault(version.name, []).append(version)
            self._by_fingerprint[version.fingerprint] = version
        for name, history in self._by_name.items():
            history.sort(key=lambda v: v.version)
            numbers = [v.version for v in history]
            if len(set(numbers)) != len(numbers):
                raise SchemaError(f"{name}: two files claim the same version in {numbers}")

    @classmethod
    def default(cls) -> SchemaRegistry:
        """The project's own ``schemas/`` package, read through package resources."""
        return cls.from_traversable(resources.files("schemas"))

    @classmethod
    def from_directory(cls, root: str | Path) -> SchemaRegistry:
        """Schemas from a directory laid out like ``schemas/`` (used by tests and tools)."""
        return cls.from_traversable(Path(root))

    @classmethod
    def from_traversable(cls, root: Traversable) -> SchemaRegistry:
        return cls(_load(file, _path(root, file)) for file in _walk(root))

    @property
    def names(self) -> list[str]:
        """Every event type, sorted."""
        return sorted(self._by_name)

    def history(self, name: str) -> list[SchemaVersion]:
        """All versions of ``name``, oldest first."""
        try:
            return list(self._by_name[name])
        except KeyError:
            raise SchemaError(f"no schema for event type {name!r}") from None

    def latest(self, name: str) -> SchemaVersion:
        """The newest version of ``name``: what producers write and consumers read with."""
        return self.history(name)[-1]

    def get(self, name: str, version: int) -> SchemaVersion:
        for candidate in self.history(name):
            if candidate.version == version:
                return candidate
        raise SchemaError(f"no version {version} of {name!r}")

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fp)

    def __iter__(self) -> Iterator[SchemaVersion]:
        for name in self.names:
            yield from self._by_name[name]

    def __len__(self) -> int:
        return len(self._by_fingerprint)


def _walk(root: Traversable) -> Iterator[Traversable]:
    for entry in root.iterdir():
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.name.endswith(".avsc"):
            yield entry


def _path(root: Traversable, file: Traversable) -> str:
    try:
        return str(Path(str(file)).relative_to(Path(str(root))))
    except ValueError:
        return file.name


def _load(file: Traversable, path: str) -> SchemaVersion:
    match = _VERSION_FILE.match(file.name)
    if match is None:
        raise SchemaError(f"{path}: schema files are named v<N>.avsc")
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
        parsed = fastavro.parse_schema(schema)
    except (ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"{path}: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaError(f"{path}: an event schema must be a record")
    canonical = to_parsing_canonical_form(parsed)
    return SchemaVersion(
        name=parsed["name"],
        version=int(match.group(1)),
        schema=schema,
        parsed=parsed,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        path=path,
    )
