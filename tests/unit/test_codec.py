"""The Avro single-object codec: header bytes, round trips, evolution both ways, clear errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from fastavro.schema import to_parsing_canonical_form

from broker.codec import MAGIC, AvroCodec
from broker.errors import DecodeError, EncodeError, SchemaError
from broker.registry import SchemaRegistry

ORDER_PLACED = "shop.orders.v1.OrderPlaced"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "schemas" / "evolution"
PLACED_AT = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)


def order_placed(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "order_id": "ord-1",
        "customer_id": "cus-7",
        "lines": [
            {"sku": "SKU-RED-MUG", "quantity": 2, "unit_price_minor": 1250},
            {"sku": "SKU-TEAPOT", "quantity": 1, "unit_price_minor": 3999},
        ],
        "total_minor": 6499,
        "currency": "EUR",
        "payment_method_id": "pm-42",
        "placed_at": PLACED_AT,
    }
    record.update(changes)
    return record


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec(SchemaRegistry.default())


def crc64_avro(data: bytes) -> bytes:
    """The Avro specification's reference CRC-64-AVRO, written out independently of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def test_round_trip_returns_the_record(codec: AvroCodec) -> None:
    """A record encoded with the newest version decodes to the same values plus v2's defaults."""
    body, writer = codec.encode(ORDER_PLACED, order_placed(channel="WEB", promo_code="SPRING"))
    version, record = codec.decode(body)
    assert (writer.version, version.version) == (2, 2)
    assert record == order_placed(channel="WEB", promo_code="SPRING")


def test_header_is_magic_and_fingerprint_of_the_writer_schema(codec: AvroCodec) -> None:
    """Bytes 0-1 are C3 01 and bytes 2-9 the little-endian CRC-64-AVRO of the canonical form."""
    body, writer = codec.encode(ORDER_PLACED, order_placed())
    canonical = to_parsing_canonical_form(writer.parsed)
    assert body[:2] == MAGIC == b"\xc3\x01"
    assert body[2:10] == writer.fingerprint == crc64_avro(canonical.encode())
    # The avro package agrees on the fingerprint of the parsing canonical form itself.
    assert body[2:10] == avro.schema.parse(canonical).fingerprint("CRC-64-AVRO")


def test_fingerprint_equals_the_avro_package_for_schemas_without_logical_types() -> None:
    """With no logical types the avro package's fingerprint of the file equals the header."""
    registry = SchemaRegistry.from_directory(FIXTURES)
    version = registry.latest("fixture.cases.v1.AddOptionalField")
    body, _ = AvroCodec(registry).encode(version.name, {"id": "x", "note": None})
    expected = avro.schema.parse(json.dumps(version.schema)).fingerprint("CRC-64-AVRO")
    assert body[2:10] == expected


def test_canonical_form_drops_logical_types_as_the_specification_says(codec: AvroCodec) -> None:
    """A timestamp-micros long is "long" in the canonical form, as in Java (avro-python differs)."""
    version = codec.registry.get(ORDER_PLACED, 1)
    canonical = to_parsing_canonical_form(version.parsed)
    assert '"name":"placed_at","type":"long"' in canonical
    assert "logicalType" not in canonical
    assert "doc" not in canonical


def test_every_repository_schema_fingerprint_matches_the_reference_crc(codec: AvroCodec) -> None:
    """Every published version's fingerprint is the reference CRC-64-AVRO of its canonical form."""
    for version in codec.registry:
        canonical = to_parsing_canonical_form(version.parsed).encode()
        assert version.fingerprint == crc64_avro(canonical), version.path


def test_v1_writer_is_read_by_v2_reader_with_defaults(codec: AvroCodec) -> None:
    """Data written with v1 decodes under v2 with v2's new fields at their defaults."""
    body, writer = codec.encode(ORDER_PLACED, order_placed(), version=1)
    version, record = codec.decode(body)
    assert (writer.version, version.version) == (1, 1)
    assert record == order_placed(channel="UNKNOWN", promo_code=None)


def test_v2_writer_is_read_by_v1_reader_without_new_fields(codec: AvroCodec) -> None:
    """A consumer still on v1 decodes v2 data and simply does not see v2's fields."""
    body, _ = codec.encode(ORDER_PLACED, order_placed(channel="MOBILE", promo_code="X"))
    v1 = codec.registry.get(ORDER_PLACED, 1)
    version, record = codec.decode(body, reader=v1)
    assert version.version == 2
    assert record == order_placed()


def test_consumer_without_the_writer_version_cannot_decode(tmp_path: Path) -> None:
    """A consumer holding only v1 cannot decode v2's fingerprint: it must hold every version."""
    only_v1 = tmp_path / "schemas"
    target = only_v1 / "orders" / "OrderPlaced"
    target.mkdir(parents=True)
    source = Path(SchemaRegistry.default().get(ORDER_PLACED, 1).path)
    schemas_root = Path(__file__).parent.parent.parent / "schemas"
    (target / "v1.avsc").write_text((schemas_root / source).read_text())
    body, _ = AvroCodec(SchemaRegistry.default()).encode(ORDER_PLACED, order_placed())
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        AvroCodec(SchemaRegistry.from_directory(only_v1)).decode(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xc3",
        b"\xc3\x01\x00\x01",
        b'{"order_id": "ord-1"}',
        b"\x00\x01" + bytes(8) + b"payload",
    ],
    ids=["empty", "one-byte", "short-header", "json", "wrong-magic"],
)
def test_garbage_is_a_decode_error(codec: AvroCodec, body: bytes) -> None:
    """Anything without a full C3 01 header raises DecodeError."""
    with pytest.raises(DecodeError, match="C3 01"):
        codec.decode(body)


def test_unknown_fingerprint_is_a_decode_error(codec: AvroCodec) -> None:
    """A well-formed header naming no known schema raises DecodeError with the fingerprint."""
    with pytest.raises(DecodeError, match="unknown schema fingerprint 0102030405060708"):
        codec.decode(MAGIC + bytes(range(1, 9)) + b"\x02")


def test_truncated_payload_is_a_decode_error(codec: AvroCodec) -> None:
    """A known header followed by a cut-off payload raises DecodeError naming the type."""
    body, _ = codec.encode(ORDER_PLACED, order_placed())
    with pytest.raises(DecodeError, match=r"OrderPlaced v2"):
        codec.decode(body[:20])


def test_decode_error_is_a_value_error(codec: AvroCodec) -> None:
    """Generic handlers catching ValueError also catch undecodable bodies."""
    with pytest.raises(ValueError, match="C3 01"):
        codec.decode(b"nope")


def test_unknown_event_type_is_a_schema_error(codec: AvroCodec) -> None:
    """Encoding a type with no schema raises SchemaError naming it."""
    with pytest.raises(SchemaError, match=r"shop\.orders\.v1\.OrderShipped"):
        codec.encode("shop.orders.v1.OrderShipped", {})


def _drop(path: list[Any]) -> Any:
    def change(record: dict[str, Any]) -> None:
        target = record
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _set(path: list[Any], value: Any) -> Any:
    def change(record: dict[str, Any]) -> None:
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (_drop(["currency"]), "currency", "is required"),
        (_set(["colour"], "red"), "colour", "is not in the schema"),
        (_set(["total_minor"], "6499"), "total_minor", "expected long"),
        (_set(["order_id"], None), "order_id", "expected string"),
        (_set(["placed_at"], "yesterday"), "placed_at", "timestamp-micros"),
        (_set(["lines"], "SKU-1"), "lines", "expected array"),
        (_drop(["lines", 1, "quantity"]), "lines[1].quantity", "is required"),
        (_set(["lines", 0, "gift"], "yes"), "lines[0].gift", "is not in the schema"),
        (_set(["lines", 1, "quantity"], "two"), "lines[1].quantity", "expected int"),
        (_set(["lines", 0, "quantity"], 2**40), "lines[0].quantity", "expected int"),
        (_set(["channel"], "FAX"), "channel", "one of ['UNKNOWN', 'WEB', 'MOBILE', 'API']"),
        (_set(["promo_code"], 5), "promo_code", "expected string"),
    ],
    ids=[
        "missing",
        "extra",
        "wrong-type",
        "null",
        "bad-timestamp",
        "not-array",
        "nested-missing",
        "nested-extra",
        "nested-wrong-type",
        "nested-out-of-range",
        "enum-symbol",
        "optional-wrong-type",
    ],
)
def test_record_not_matching_schema_names_the_field(
    codec: AvroCodec, change: Any, field: str, reason: str
) -> None:
    """A mismatching record raises EncodeError with the field's path and why, before encoding."""
    record = copy.deepcopy(order_placed())
    change(record)
    with pytest.raises(EncodeError) as caught:
        codec.encode(ORDER_PLACED, record)
    assert caught.value.event_type == ORDER_PLACED
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert repr(field) in str(caught.value)


def test_not_a_record_is_an_encode_error(codec: AvroCodec) -> None:
    """Passing a non-mapping raises EncodeError rather than an AttributeError from fastavro."""
    with pytest.raises(EncodeError, match="expected record"):
        codec.encode(ORDER_PLACED, ["ord-1"])  # type: ignore[arg-type]


def test_fields_with_defaults_may_be_omitted(codec: AvroCodec) -> None:
    """v2's optional fields need not be given; the encoder writes their defaults."""
    body, _ = codec.encode(ORDER_PLACED, order_placed())
    _, record = codec.decode(body)
    assert record["channel"] == "UNKNOWN"
    assert record["promo_code"] is None
