"""``shopmq asyncapi``: write the AsyncAPI document generated from schemas/ and the topology."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.asyncapi import build_asyncapi, dump_yaml
from broker.registry import SchemaRegistry
from services.topology import TOPOLOGY

if TYPE_CHECKING:
    import argparse

__all__ = ["asyncapi_yaml", "register"]


def asyncapi_yaml(registry: SchemaRegistry | None = None) -> str:
    """The project's AsyncAPI document, as committed at ``asyncapi.yaml``."""
    document = build_asyncapi(
        registry or SchemaRegistry.default(),
        publishers={t.service: t.publishes for t in TOPOLOGY if t.publishes},
        consumers={t.service: t.consumes for t in TOPOLOGY if t.consumes},
        title="shop events",
    )
    return dump_yaml(document)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "asyncapi",
        help="write the AsyncAPI 3.0 document (channels per engine, messages, Avro schemas)",
        description="Generate the AsyncAPI document from schemas/ and services/topology.py.",
    )
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    text = asyncapi_yaml()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
