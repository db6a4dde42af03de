"""Fixtures of the transport conformance suite: every test runs once per transport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from broker import Broker, SchemaRegistry
from tests.conformance.targets import Target, load_targets
from tests.support.names import unique_hex

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

TARGETS = load_targets()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=TARGETS, ids=[t.id for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Target:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def uid() -> str:
    """A short id unique to this test: event types and groups are built from it."""
    return unique_hex()


def _record(name: str, namespace: str, extra: list[dict[str, object]] | None = None) -> dict:
    fields: list[dict[str, object]] = [
        {"name": "seq", "type": "int"},
        {"name": "text", "type": "string"},
        {"name": "blob", "type": "bytes"},
        {
            "name": "nested",
            "type": {
                "type": "record",
                "name": f"{name}Nested",
                "fields": [
                    {"name": "amount_minor", "type": "long"},
                    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                ],
            },
        },
    ]
    return {
        "type": "record",
        "name": name,
        "namespace": namespace,
        "fields": fields + (extra or []),
    }


def write_schemas(root: Path, namespace: str, *, with_v2: bool) -> SchemaRegistry:
    """Test schemas in a namespace unique to the test, so its topics are its own."""
    for name in ("Ping", "Pong", "Other"):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "v1.avsc").write_text(json.dumps(_record(name, namespace)))
    if with_v2:
        v2 = _record(
            "Ping",
            namespace,
            [
                {"name": "note", "type": ["null", "string"], "default": None},
            ],
        )
        (root / "Ping" / "v2.avsc").write_text(json.dumps(v2))
    return SchemaRegistry.from_directory(root)


@pytest.fixture
def namespace(uid: str) -> str:
    return f"conf.t{uid}.v1"


@pytest.fixture
def registry(tmp_path: Path, namespace: str) -> SchemaRegistry:
    return write_schemas(tmp_path / "schemas", namespace, with_v2=False)


@pytest.fixture
async def make_broker(
    target: Target, registry: SchemaRegistry, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Broker]]:
    """Factory of started-on-demand brokers, named after the test, all closed at the end."""
    made: list[Broker] = []

    def factory(url: str | None = None, **kwargs: object) -> Broker:
        kwargs.setdefault("registry", registry)
        kwargs.setdefault("source", "//tests/conformance")
        kwargs.setdefault("name", f"{request.node.name}-{len(made)}")
        kwargs.setdefault("connect_timeout", 10.0)
        kwargs.setdefault("reconnect_delay", (0.1, 1.0))
        broker = Broker(url or target.url, **kwargs)  # type: ignore[arg-type]
        made.append(broker)
        return broker

    yield factory
    for broker in reversed(made):
        await broker.close(timeout=2.0)
