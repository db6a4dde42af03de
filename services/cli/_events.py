"""``shopmq events tail``: print events as they are published, decoded, with their trace ids."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from broker.errors import DecodeError
from broker.transport import SubscriptionSpec
from services.audit.domain import trace_id_of
from services.cli._common import add_broker_option, connect, run, to_json

if TYPE_CHECKING:
    import argparse

    from broker import Broker
    from broker.transport import Delivery

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("events", help="watch events on the broker")
    sub = parser.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    tail = sub.add_parser(
        "tail",
        help="print events as they are published (decoded, with trace ids)",
        description=(
            "Subscribe with a temporary subscription (nothing is left on the broker) and print "
            "every matching event until Ctrl-C. Patterns: '*' matches one word, '#' any."
        ),
    )
    tail.add_argument(
        "patterns",
        nargs="*",
        default=["shop.#"],
        metavar="PATTERN",
        help="topic patterns (default: shop.#)",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--count", type=int, default=0, help="stop after N events (0: never)")
    add_broker_option(tail)
    tail.set_defaults(handler=lambda args: run(_tail(args)))


def describe(
    broker: Broker, delivery: Delivery, *, as_json: bool, extra: dict[str, Any] | None = None
) -> str:
    """One delivery for people (two lines) or as one JSON object, ``extra`` keys added."""
    attrs = delivery.attributes
    try:
        _writer, data = broker.codec.decode(delivery.body)
        payload: Any = data
    except DecodeError as exc:
        payload = {"undecodable": str(exc)}
    record = {
        "time": attrs.get("time"),
        "type": attrs.get("type", delivery.topic),
        "subject": attrs.get("subject"),
        "id": attrs.get("id"),
        "trace_id": trace_id_of(delivery.headers.get("traceparent")) or "-",
        "data": payload,
        **(extra or {}),
    }
    if as_json:
        return to_json(record)
    return (
        f"{record['time']}  {record['type']}  subject={record['subject']}  id={record['id']}  "
        f"trace={record['trace_id']}\n    {to_json(payload)}"
    )


async def _tail(args: argparse.Namespace) -> int:
    async with connect(args.broker) as broker:
        seen = 0
        done = asyncio.Event()

        def on_delivery(delivery: Delivery) -> None:
            nonlocal seen
            print(describe(broker, delivery, as_json=args.json), flush=True)
            asyncio.get_running_loop().create_task(delivery.ack())
            seen += 1
            if args.count and seen >= args.count:
                done.set()

        spec = SubscriptionSpec(group="tail", topics=tuple(args.patterns), durable=False)
        await broker.transport.subscribe(spec, on_delivery)
        print(
            f"tailing {', '.join(args.patterns)} on {broker.url} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        await done.wait()
    return 0
