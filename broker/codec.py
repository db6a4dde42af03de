"""Avro single-object encoding: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + binary payload.

Any consumer that holds the ``schemas/`` files can decode a body: the fingerprint names the
writer's schema version, and the reader resolves it against the version it was built with.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import fastavro
from fastavro.validation import ValidationError, validate

from broker.errors import DecodeError, EncodeError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from broker.registry import SchemaRegistry, SchemaVersion

__all__ = ["MAGIC", "AvroCodec"]

MAGIC = b"\xc3\x01"
_HEADER_LEN = len(MAGIC) + 8


class AvroCodec:
    """Encodes records with the newest schema version and decodes any known version."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def encode(
        self, event_type: str, data: Mapping[str, Any], *, version: int | None = None
    ) -> tuple[bytes, SchemaVersion]:
        """Validate ``data`` against the schema and return the encoded body.

        Raises :class:`EncodeError` naming the offending field before anything is sent.
        """
        writer = (
            self.registry.latest(event_type)
            if version is None
            else self.registry.get(event_type, version)
        )
        _check_fields(event_type, writer.parsed, data)
        try:
            validate(data, writer.parsed, raise_errors=True)
        except ValidationError as exc:
            field, reason = _describe(event_type, exc)
            raise EncodeError(event_type, field, reason) from None
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(writer.fingerprint)
        fastavro.schemaless_writer(buffer, writer.parsed, dict(data))
        return buffer.getvalue(), writer

    def decode(
        self, body: bytes, *, reader: SchemaVersion | None = None
    ) -> tuple[SchemaVersion, Any]:
        """Decode ``body`` and resolve it to ``reader`` (default: newest version of its type).

        Raises :class:`DecodeError` for anything that is not a known single-object Avro body.
        """
        if len(body) < _HEADER_LEN or body[:2] != MAGIC:
            raise DecodeError("body is not Avro single-object encoded (no C3 01 header)")
        writer = self.registry.by_fingerprint(body[2:_HEADER_LEN])
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {body[2:_HEADER_LEN].hex()}")
        target = reader or self.registry.latest(writer.name)
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(body[_HEADER_LEN:]), writer.parsed, target.parsed
            )
        except Exception as exc:
            raise DecodeError(f"{writer.name} v{writer.version}: {exc}") from exc
        return writer, record


def _check_fields(event_type: str, schema: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """Name missing and unknown top-level fields, which fastavro reports without a field name."""
    fields = schema["fields"]
    known = {f["name"] for f in fields}
    for f in fields:
        if f["name"] not in data and "default" not in f:
            raise EncodeError(event_type, f["name"], "is required")
    for key in data:
        if key not in known:
            raise EncodeError(event_type, str(key), "is not in the schema")


def _describe(event_type: str, exc: ValidationError) -> tuple[str, str]:
    """Turn fastavro's validation error into (field path, reason)."""
    if not exc.errors:
        return "?", str(exc)
    first = exc.errors[0]
    field = str(getattr(first, "field", "") or "?")
    field = field.removeprefix(event_type + ".")
    expected = first.schema if isinstance(first.schema, str) else first.schema.get("type", "?")
    return field, f"expected {expected}, got {first.datum!r}"
