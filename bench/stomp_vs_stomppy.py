"""STOMP transport vs the stomp.py client: publish and consume rates on ActiveMQ, same run.

    bash deploy/local/activemq.sh start
    .venv/bin/python bench/stomp_vs_stomppy.py [--rounds 5] [--messages 3000] [--window 64]

Both sides send the same frame (the ~200-byte Avro body, ``cloudEvents_*`` headers,
``traceparent``, ``persistent:true``) to the same virtual topic and read the same consumer queue
``Consumer.<group>.VirtualTopic.<topic>`` back, on ActiveMQ at 127.0.0.1:61613.

* ours: :class:`broker.transports.stomp.StompTransport` (our asyncio STOMP 1.2 client):
  ``--window`` publishes in flight, each awaiting its RECEIPT; consuming with
  ``activemq.prefetchSize`` = window, ``client-individual`` ACK per delivery (a task each, as
  the broker core does).
* raw: stomp.py ``Connection12`` (its receiver thread; run in a worker thread here): sends with
  a ``receipt`` header, at most ``--window`` unconfirmed; consumes with the same prefetch and
  ``client-individual`` ACK from ``on_message``.

Publish rate = N / time from the first send to the last RECEIPT. Consume rate = (N - 1) / time
from the first to the N-th delivery. Each round: ours publishes N and consumes N, then raw does
(the order alternates per round); medians are reported. Connection set-up is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from typing import Any

import stomp
from _transport import BODY, ours_consume, ours_publish, outgoing
from _util import Row, median, report

from broker import BrokerURL, naming
from broker.transport import SubscriptionSpec, TransportOptions
from broker.transports.stomp import StompTransport, to_wire

URL = "stomp://127.0.0.1:61613"


# -- raw stomp.py ------------------------------------------------------------------------------


class RawListener(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self, connection: Any, count: int) -> None:
        self.connection, self.count = connection, count
        self.receipts = 0
        self.stamps: list[float] = []
        self.changed = threading.Condition()

    def on_receipt(self, frame: Any) -> None:
        del frame
        with self.changed:
            self.receipts += 1
            self.changed.notify_all()

    def on_message(self, frame: Any) -> None:
        self.stamps.append(time.perf_counter())
        self.connection.ack(frame.headers["ack"])
        if len(self.stamps) == self.count:
            with self.changed:
                self.changed.notify_all()


def raw_connection(count: int) -> tuple[Any, RawListener]:
    connection = stomp.Connection12([("127.0.0.1", 61613)], auto_decode=False)
    listener = RawListener(connection, count)
    connection.set_listener("", listener)
    connection.connect(wait=True)
    return connection, listener


def raw_publish(destination: str, headers: dict[str, str], count: int, window: int) -> float:
    connection, listener = raw_connection(count)
    started = time.perf_counter()
    sent = 0

    def has_room() -> bool:
        return sent - listener.receipts < window

    for n in range(count):
        with listener.changed:
            listener.changed.wait_for(has_room)
        sent += 1
        connection.send(
            destination,
            BODY,
            headers={**headers, "receipt": f"r{n}", "cloudEvents_id": f"{n:08d}"},
        )
    with listener.changed:
        listener.changed.wait_for(lambda: listener.receipts == count, timeout=120)
    rate = count / (time.perf_counter() - started)
    connection.disconnect()
    return rate


def raw_consume(destination: str, count: int, window: int) -> float:
    connection, listener = raw_connection(count)
    connection.subscribe(
        destination,
        id="bench",
        ack="client-individual",
        headers={"activemq.prefetchSize": str(window)},
    )
    with listener.changed:
        listener.changed.wait_for(lambda: len(listener.stamps) >= count, timeout=120)
    connection.unsubscribe("bench")
    connection.disconnect()
    return (count - 1) / (listener.stamps[count - 1] - listener.stamps[0])


# -- the run -----------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--url", default=URL)
    args = parser.parse_args()
    count, window = args.messages, args.window

    url = BrokerURL.parse(args.url)
    uid = uuid.uuid4().hex[:8]
    topic = f"bench.stomp.t{uid}.v1.Ping"
    spec = SubscriptionSpec(group=f"benchstomp{uid}", topics=(topic,), prefetch=window)
    transport = StompTransport(url, url.endpoints[0], TransportOptions(connection_name="bench"))
    await transport.connect()
    # Subscribing once creates the consumer queue, which then keeps what the topic receives.
    await (await transport.subscribe(spec, lambda _d: None)).cancel()
    publish_to = f"/topic/{naming.activemq_topic(topic)}"
    consume_from = f"/queue/{transport.queue_names(spec)['queue']}"
    wire = to_wire(outgoing(topic, 0).attributes, outgoing(topic, 0).headers)
    wire.update({"content-type": "application/avro", "persistent": "true"})
    rates: dict[str, list[float]] = {k: [] for k in ("ours pub", "raw pub", "ours con", "raw con")}

    async def ours() -> None:
        rates["ours pub"].append(await ours_publish(transport, topic, count, window))
        rates["ours con"].append(await ours_consume(transport, spec, count))

    async def raw() -> None:
        rates["raw pub"].append(
            await asyncio.to_thread(raw_publish, publish_to, wire, count, window)
        )
        rates["raw con"].append(await asyncio.to_thread(raw_consume, consume_from, count, window))

    try:
        await ours()  # warm-up round, discarded
        await raw()
        for values in rates.values():
            values.clear()
        for index in range(args.rounds):
            first, second = (ours, raw) if index % 2 == 0 else (raw, ours)
            await first()
            await second()
            print(
                f"round {index + 1}: " + "  ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()),
                flush=True,
            )
    finally:
        await transport.close()

    m = {k: median(v) for k, v in rates.items()}
    report(
        "STOMP on ActiveMQ: our transport vs stomp.py",
        [
            Row(
                "publish (RECEIPT per message)",
                m["ours pub"],
                m["raw pub"],
                0.9,
                "msg/s",
                "stomp.py",
            ),
            Row(
                "consume (client-individual ACK)",
                m["ours con"],
                m["raw con"],
                0.9,
                "msg/s",
                "stomp.py",
            ),
        ],
        f"{count} messages x {args.rounds} rounds, window/prefetch {window}, "
        f"{len(BODY)}-byte body, {args.url}; medians",
    )


if __name__ == "__main__":
    asyncio.run(main())
