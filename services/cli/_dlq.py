"""``shopmq dlq list`` / ``shopmq dlq replay``: inspect and re-publish dead-lettered messages."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from broker import ERROR_HEADERS, dead_letters
from broker.transport import SubscriptionSpec
from services.cli._common import add_broker_option, connect, run
from services.cli._events import describe
from services.topology import consumer_patterns

if TYPE_CHECKING:
    import argparse


__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dlq",
        help="inspect and replay dead-lettered messages of a consumer group",
        description=(
            "Each consumer group has its own dead-letter queue. Messages land there when a "
            "handler keeps failing, raises DeadLetter, or the body cannot be decoded; the "
            "x-error-* headers say why."
        ),
    )
    sub = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="show dead letters (they stay in the queue)")
    replay = sub.add_parser(
        "replay", help="send dead letters back to the group's queue, to be handled again"
    )
    for p in (listing, replay):
        p.add_argument("group", help="consumer group (a service name, e.g. payments)")
        p.add_argument(
            "--topic",
            action="append",
            dest="topics",
            metavar="PATTERN",
            help="the group's topic patterns (default: from services/topology.py)",
        )
        p.add_argument("--limit", type=int, default=100, help="at most N messages (100)")
        add_broker_option(p)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=lambda args: run(_list(args)))
    replay.add_argument(
        "--id",
        action="append",
        dest="ids",
        metavar="EVENT_ID",
        help="replay only these event ids (repeatable)",
    )
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    replay.set_defaults(handler=lambda args: run(_replay(args)))


def _spec(args: argparse.Namespace) -> SubscriptionSpec:
    topics = args.topics or list(_known_patterns(args.group))
    return SubscriptionSpec(group=args.group, topics=tuple(topics), prefetch=args.limit)


def _known_patterns(group: str) -> tuple[str, ...]:
    try:
        return consumer_patterns(group)
    except KeyError:
        raise SystemExit(
            f"shopmq: error: unknown group {group!r}: pass its patterns with --topic"
        ) from None


async def _list(args: argparse.Namespace) -> int:
    async with connect(args.broker) as broker:
        letters = await dead_letters.collect(broker.transport, _spec(args))
        for letter in letters:
            reason = {h: letter.headers[h] for h in ERROR_HEADERS if h in letter.headers}
            if args.json:
                print(describe(broker, letter, as_json=True, extra={"dead_letter": reason}))
            else:
                print(describe(broker, letter, as_json=False))
                print("    " + ", ".join(f"{h}={value}" for h, value in reason.items()))
        await asyncio.gather(*(letter.release() for letter in letters))
        if not args.json:  # the output stays one JSON object per line
            print(f"{len(letters)} dead letter(s) in group {args.group!r}")
    return 0


async def _replay(args: argparse.Namespace) -> int:
    if not args.all and not args.ids:
        raise SystemExit("shopmq: error: say which: --id EVENT_ID (repeatable) or --all")
    async with connect(args.broker) as broker:
        letters = await dead_letters.collect(broker.transport, _spec(args))
        replayed = 0
        for letter in letters:
            if args.all or letter.attributes.get("id") in args.ids:
                await dead_letters.replay(letter)
                replayed += 1
            else:
                await letter.release()
        print(f"replayed {replayed} of {len(letters)} dead letter(s) in group {args.group!r}")
    return 0
