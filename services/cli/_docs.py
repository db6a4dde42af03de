"""``shopmq asyncapi``: write the AsyncAPI document generated from schemas/ and the topology."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.asyncapi import build_asyncapi, dump_yaml
from broker.registry import SchemaRegistry
from gateway.app import openapi_for
from services.topology import TOPOLOGY

if TYPE_CHECKING:
    import argparse

__all__ = ["asyncapi_yaml", "openapi_json", "register"]


def asyncapi_yaml(registry: SchemaRegistry | None = None) -> str:
    """The project's AsyncAPI document, as committed at ``asyncapi.yaml``."""
    document = build_asyncapi(
        registry or SchemaRegistry.default(),
        publishers={t.service: t.publishes for t in TOPOLOGY if t.publishes},
        consumers={t.service: t.consumes for t in TOPOLOGY if t.consumes},
        title="shop events",
    )
    return dump_yaml(document)


def openapi_json() -> str:
    """The REST API's OpenAPI 3.1 document, as committed at ``openapi.json``."""
    return json.dumps(openapi_for(), indent=2, ensure_ascii=False) + "\n"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "asyncapi",
        help="write the AsyncAPI 3.0 document (channels per engine, messages, Avro schemas)",
        description="Generate the AsyncAPI document from schemas/ and services/topology.py.",
    )
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    parser.set_defaults(handler=_run)
    openapi = commands.add_parser(
        "openapi",
        help="write the REST API's OpenAPI 3.1 document (from the protos' HTTP annotations)",
        description="Generate the OpenAPI document the gateway serves at /openapi.json.",
    )
    openapi.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    openapi.set_defaults(handler=_run_openapi)


def _write(text: str, output: Path | None) -> int:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    return 0


def _run_openapi(args: argparse.Namespace) -> int:
    return _write(openapi_json(), args.output)


def _run(args: argparse.Namespace) -> int:
    return _write(asyncapi_yaml(), args.output)
