"""Avro single-object encoding: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + binary payload.

Any consumer that holds the ``schemas/`` files can decode a body: the fingerprint names the
writer's schema version, and the reader resolves it against the version it was built with.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import fastavro
from fastavro.validation import validate

from broker.errors import DecodeError, EncodeError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from broker.registry import SchemaRegistry, SchemaVersion

__all__ = ["MAGIC", "AvroCodec"]

MAGIC = b"\xc3\x01"
_HEADER_LEN = len(MAGIC) + 8


class AvroCodec:
    """Encodes and decodes event records; resolves any known writer version to the reader's.

    ``versions`` pins the schema version this code speaks per event type (default: the newest
    in the registry). A pinned service keeps writing that version, and reads every other
    version resolved to it, while its ``schemas/`` package already holds the newer ones —
    which is how producers and consumers are upgraded one at a time.
    """

    def __init__(self, registry: SchemaRegistry, versions: Mapping[str, int] | None = None) -> None:
        self.registry = registry
        self._pinned = {
            name: registry.get(name, number) for name, number in (versions or {}).items()
        }

    def version_for(self, event_type: str) -> SchemaVersion:
        """The version this codec writes, and reads into, for ``event_type``."""
        return self._pinned.get(event_type) or self.registry.latest(event_type)

    def encode(
        self, event_type: str, data: Mapping[str, Any], *, version: int | None = None
    ) -> tuple[bytes, SchemaVersion]:
        """Validate ``data`` against the schema and return the encoded body.

        Raises :class:`EncodeError` naming the offending field before anything is sent.
        """
        writer = (
            self.version_for(event_type)
            if version is None
            else self.registry.get(event_type, version)
        )
        problem = _mismatch(writer.parsed, data, "", writer.parsed["__named_schemas"])
        if problem is not None:
            raise EncodeError(event_type, *problem)
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(writer.fingerprint)
        fastavro.schemaless_writer(buffer, writer.parsed, dict(data))
        return buffer.getvalue(), writer

    def decode(
        self, body: bytes, *, reader: SchemaVersion | None = None
    ) -> tuple[SchemaVersion, Any]:
        """Decode ``body`` and resolve it to ``reader`` (default: :meth:`version_for` its type).

        Raises :class:`DecodeError` for anything that is not a known single-object Avro body.
        """
        if len(body) < _HEADER_LEN or body[:2] != MAGIC:
            raise DecodeError("body is not Avro single-object encoded (no C3 01 header)")
        writer = self.registry.by_fingerprint(body[2:_HEADER_LEN])
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {body[2:_HEADER_LEN].hex()}")
        target = reader or self.version_for(writer.name)
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(body[_HEADER_LEN:]), writer.parsed, target.parsed
            )
        except Exception as exc:
            raise DecodeError(f"{writer.name} v{writer.version}: {exc}") from exc
        return writer, record


def _mismatch(
    schema: Any, datum: Any, path: str, names: Mapping[str, Any]
) -> tuple[str, str] | None:
    """The first place ``datum`` does not match ``schema``, as (field path, reason).

    fastavro's validator ignores keys a record does not declare (they would be dropped without a
    word) and names nested fields by type, not by path; this walk reports both, e.g.
    ``lines[1].quantity``. Leaves (primitives, logical types, enums, fixed) are left to fastavro.
    """
    if isinstance(schema, str) and schema in names:
        schema = names[schema]
    if isinstance(schema, list):
        return _union_mismatch(schema, datum, path, names)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    if kind == "record":
        return _record_mismatch(schema, datum, path, names)
    if kind in {"array", "map"}:
        return _container_mismatch(schema, datum, path, names)
    if validate(datum, schema, raise_errors=False):
        return None
    expected = kind if isinstance(kind, str) else "?"
    if isinstance(schema, dict) and schema.get("logicalType"):
        expected = f"{expected} ({schema['logicalType']})"
    elif kind == "enum":
        expected = f"one of {schema['symbols']}"
    return path, f"expected {expected}, got {datum!r}"


def _record_mismatch(
    schema: Mapping[str, Any], datum: Any, path: str, names: Mapping[str, Any]
) -> tuple[str, str] | None:
    prefix = f"{path}." if path else ""
    if not isinstance(datum, dict):
        return path or "?", f"expected record {schema['name']}, got {datum!r}"
    for f in schema["fields"]:
        if f["name"] not in datum:
            if "default" in f:
                continue
            return prefix + f["name"], "is required"
        if found := _mismatch(f["type"], datum[f["name"]], prefix + f["name"], names):
            return found
    known = {f["name"] for f in schema["fields"]}
    extra = sorted(str(key) for key in datum if key not in known)
    if extra:
        return prefix + extra[0], "is not in the schema"
    return None


def _container_mismatch(
    schema: Mapping[str, Any], datum: Any, path: str, names: Mapping[str, Any]
) -> tuple[str, str] | None:
    if schema["type"] == "array":
        if not isinstance(datum, (list, tuple)):
            return path, f"expected array, got {datum!r}"
        items = [(f"{path}[{index}]", item) for index, item in enumerate(datum)]
        element = schema["items"]
    else:
        if not isinstance(datum, dict) or not all(isinstance(k, str) for k in datum):
            return path, f"expected map with string keys, got {datum!r}"
        items = [(f"{path}[{key!r}]", value) for key, value in datum.items()]
        element = schema["values"]
    for where, item in items:
        if found := _mismatch(element, item, where, names):
            return found
    return None


def _union_mismatch(
    branches: list[Any], datum: Any, path: str, names: Mapping[str, Any]
) -> tuple[str, str] | None:
    found = [_mismatch(branch, datum, path, names) for branch in branches]
    if any(problem is None for problem in found):
        return None
    others = [(b, p) for b, p in zip(branches, found, strict=True) if b != "null"]
    if datum is not None and len(others) == 1:  # an optional value: say what is wrong inside it
        return others[0][1]
    listed = ", ".join(
        b if isinstance(b, str) else str(b.get("name", b.get("type"))) for b in branches
    )
    return path, f"expected one of [{listed}], got {datum!r}"
