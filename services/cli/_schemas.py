"""``shopmq schemas check``: the compatibility gate over every published schema version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from broker import compat
from broker.registry import SchemaRegistry

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "schemas",
        help="inspect event schemas and run the compatibility gate",
        description="Event schemas live in schemas/<area>/<Event>/v<N>.avsc.",
    )
    sub = parser.add_subparsers(dest="schemas_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="fail if any schema version breaks its configured compatibility mode",
        description="Check every version of every schema against schemas/compatibility.json.",
    )
    check.set_defaults(handler=_check)
    listing = sub.add_parser("list", help="list event types, versions and fingerprints")
    listing.set_defaults(handler=_list)


def _check(_args: argparse.Namespace) -> int:
    registry = SchemaRegistry.default()
    violations = compat.check_registry(registry, compat.load_modes())
    for violation in violations:
        print(violation)
    print(
        f"{len(registry)} schema versions of {len(registry.names)} event types: "
        + ("compatible" if not violations else f"{len(violations)} violation(s)")
    )
    return 1 if violations else 0


def _list(_args: argparse.Namespace) -> int:
    for version in SchemaRegistry.default():
        print(f"{version.name}  v{version.version}  {version.fingerprint.hex()}  {version.path}")
    return 0
