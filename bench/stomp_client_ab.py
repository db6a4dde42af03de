"""The STOMP client before and after a change, side by side in one process, same broker.

    .venv/bin/python bench/stomp_client_ab.py --before <git revision> [--rounds 5]
        [--messages 3000] [--window 64]

Loads ``broker/transports/_stomp_client.py`` as it was at ``--before`` (``git show``) next to
the working tree's, builds one :class:`~broker.transports.stomp.StompTransport` on each, and
alternates them round by round: publish N with ``--window`` RECEIPTs outstanding, then consume
them with that prefetch and an ACK each (as ``bench/stomp_vs_stomppy.py`` does). Reports the
median rate and client CPU per message (``time.process_time``) of each, and after / before.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _transport import ours_consume, ours_publish
from _util import Row, median, report

import broker.transports.stomp as stomp_module
from broker import BrokerURL
from broker.transport import SubscriptionSpec, TransportOptions

ROOT = Path(__file__).resolve().parent.parent
CLIENT = "broker/transports/_stomp_client.py"


def load_before(revision: str, directory: Path) -> Any:
    source = subprocess.run(
        ["git", "show", f"{revision}:{CLIENT}"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = directory / "stomp_client_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("stomp_client_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.StompClient


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--url", default="stomp://127.0.0.1:61613")
    args = parser.parse_args()
    count, window = args.messages, args.window
    url = BrokerURL.parse(args.url)

    with tempfile.TemporaryDirectory() as tmp:
        before_client = load_before(args.before, Path(tmp))
        sides: dict[str, tuple[Any, str, SubscriptionSpec]] = {}
        for name in ("after", "before"):
            current = stomp_module.StompClient
            if name == "before":
                stomp_module.StompClient = before_client  # the transport builds its client
            try:
                options = TransportOptions(connection_name=f"ab-{name}")
                transport = stomp_module.StompTransport(url, url.endpoints[0], options)
            finally:
                stomp_module.StompClient = current
            await transport.connect()
            uid = uuid.uuid4().hex[:8]
            topic = f"bench.stomp.t{uid}.v1.Ping"
            spec = SubscriptionSpec(group=f"benchab{uid}", topics=(topic,), prefetch=window)
            await (await transport.subscribe(spec, lambda _d: None)).cancel()
            sides[name] = (transport, topic, spec)

        figures: dict[str, list[float]] = {}

        def note(key: str, value: float) -> None:
            figures.setdefault(key, []).append(value)

        try:
            for index in range(args.rounds + 1):  # round 0 warms up and is left out
                order = ["after", "before"] if index % 2 == 0 else ["before", "after"]
                for name in order:
                    transport, topic, spec = sides[name]
                    used = time.process_time()
                    rate = await ours_publish(transport, topic, count, window)
                    cpu = (time.process_time() - used) / count * 1e6
                    if index:
                        note(f"{name} publish", rate)
                        note(f"{name} publish cpu", cpu)
                    used = time.process_time()
                    rate = await ours_consume(transport, spec, count)
                    cpu = (time.process_time() - used) / count * 1e6
                    if index:
                        note(f"{name} consume", rate)
                        note(f"{name} consume cpu", cpu)
                if index:
                    print(
                        f"round {index}: "
                        + "  ".join(f"{k} {v[-1]:,.0f}" for k, v in figures.items()),
                        flush=True,
                    )
        finally:
            for transport, _topic, _spec in sides.values():
                await transport.close()

    m = {key: median(values) for key, values in figures.items()}
    report(
        f"STOMP client, working tree vs {args.before}",
        [
            Row("publish rate", m["after publish"], m["before publish"], 1.0, "msg/s", "before"),
            Row("consume rate", m["after consume"], m["before consume"], 1.0, "msg/s", "before"),
            Row(
                "publish CPU per message",
                m["after publish cpu"],
                m["before publish cpu"],
                1.0,
                "us",
                "before",
                lower_is_better=True,
            ),
            Row(
                "consume CPU per message",
                m["after consume cpu"],
                m["before consume cpu"],
                1.0,
                "us",
                "before",
                lower_is_better=True,
            ),
        ],
        f"{count} messages x {args.rounds} rounds, window/prefetch {window}, {args.url}; medians",
    )


if __name__ == "__main__":
    asyncio.run(main())
