"""AMQP 1.0 transport vs raw python-qpid-proton: publish and consume rates, same broker, same run.

    .venv/bin/python bench/amqp10_vs_proton.py [--rounds 5] [--messages 5000] [--window 256]
        [--url amqp10://guest:guest@127.0.0.1:5672?dialect=rabbitmq&queue_type=classic]

Both sides send the same message (Data body, CloudEvents application-properties) to the same
address, ``/exchange/<exchange>/<topic>``, bound to one queue, and read that queue back from
``/amq/queue/<queue>`` (RabbitMQ's AMQP 1.0 plugin, the broker this machine runs).

* ours: :class:`broker.transports.amqp10.Amqp10Transport` on the event loop; ``--window``
  publishes in flight, each awaiting its *accepted* outcome; consuming with prefetch
  ``--window`` and an ``ack`` per delivery (a task each, as the broker core does).
* raw: proton's own ``Container`` + ``MessagingHandler`` (its blocking reactor, run in a
  thread): sends whenever the link has credit with at most ``--window`` unsettled, counts
  accepted outcomes; receives with prefetch ``--window`` and auto-accept.

Publish rate = messages / time from the first send to the last accepted outcome (connection
and link set-up excluded on both sides). Consume rate = (messages - 1) / time from the first to
the last delivery. Each round publishes N then consumes those N, for ours and raw in turn; the
order alternates every round so drift hits both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import TYPE_CHECKING, Any

import aio_pika
from _transport import BODY, ours_consume, ours_publish, outgoing
from proton.handlers import MessagingHandler
from proton.reactor import Container

from broker import BrokerURL
from broker.transport import SubscriptionSpec, TransportOptions
from broker.transports._amqp10_messages import to_message
from broker.transports._amqp10_topology import RabbitTopology
from broker.transports.amqp10 import Amqp10Transport

if TYPE_CHECKING:
    import proton

URL = "amqp10://guest:guest@127.0.0.1:5672?dialect=rabbitmq&queue_type=classic"


# -- raw proton --------------------------------------------------------------------------------


def raw_url(url: BrokerURL) -> str:
    endpoint = url.endpoints[0]
    return f"amqp://{url.username}:{url.password}@{endpoint.host}:{endpoint.port}"


class RawSender(MessagingHandler):  # type: ignore[misc]
    def __init__(self, url: str, address: str, message: proton.Message, count: int, window: int):
        super().__init__(auto_settle=True)
        self.url, self.address, self.message = url, address, message
        self.count, self.window = count, window
        self.sent = self.accepted = 0
        self.started = self.finished = 0.0

    def on_start(self, event: Any) -> None:
        conn = event.container.connect(self.url, allowed_mechs="PLAIN", allow_insecure_mechs=True)
        event.container.create_sender(conn, self.address)

    def on_sendable(self, event: Any) -> None:
        if not self.started:
            self.started = time.perf_counter()
        sender = event.sender
        while sender.credit and self.sent < self.count and self.sent - self.accepted < self.window:
            self.message.id = f"{self.sent:08d}-{uuid.uuid4().hex}"
            sender.send(self.message)
            self.sent += 1

    def on_accepted(self, event: Any) -> None:
        self.accepted += 1
        if self.accepted == self.count:
            self.finished = time.perf_counter()
            event.connection.close()
        else:
            self.on_sendable(event)

    def on_rejected(self, event: Any) -> None:
        raise RuntimeError(f"raw publish refused: {event.delivery.remote_state}")


class RawReceiver(MessagingHandler):  # type: ignore[misc]
    def __init__(self, url: str, address: str, count: int, window: int):
        super().__init__(prefetch=window, auto_accept=True)
        self.url, self.address, self.count = url, address, count
        self.stamps: list[float] = []

    def on_start(self, event: Any) -> None:
        conn = event.container.connect(self.url, allowed_mechs="PLAIN", allow_insecure_mechs=True)
        event.container.create_receiver(conn, self.address)

    def on_message(self, event: Any) -> None:
        self.stamps.append(time.perf_counter())
        if len(self.stamps) == self.count:
            event.connection.close()


def raw_publish(url: str, address: str, message: proton.Message, count: int, window: int) -> float:
    handler = RawSender(url, address, message, count, window)
    Container(handler).run()
    return count / (handler.finished - handler.started)


def raw_consume(url: str, address: str, count: int, window: int) -> float:
    handler = RawReceiver(url, address, count, window)
    Container(handler).run()
    return (count - 1) / (handler.stamps[-1] - handler.stamps[0])


async def delete_queues(url: BrokerURL, names: dict[str, str]) -> None:
    endpoint = url.endpoints[0]
    amqp091 = f"amqp://{url.username}:{url.password}@{endpoint.host}:{endpoint.port}/"
    connection = await aio_pika.connect(amqp091)
    async with connection:
        channel = await connection.channel()
        for queue in (names["queue"], names["dead_letter"]):
            await channel.queue_delete(queue)


# -- the run -----------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--url", default=URL)
    args = parser.parse_args()
    count, window = args.messages, args.window

    url = BrokerURL.parse(args.url)
    uid = uuid.uuid4().hex[:8]
    topic = f"bench.amqp10.{uid}.v1.Ping"
    spec = SubscriptionSpec(group=f"bench-amqp10-{uid}", topics=(topic,), prefetch=window)
    options = TransportOptions(connection_name="bench-amqp10")
    transport = Amqp10Transport(url, url.endpoints[0], options)
    await transport.connect()
    topology = RabbitTopology(url, url.endpoints[0], connection_name="bench-amqp10")
    await topology.declare_group(spec)
    publish_to = transport.addresses.publish(topic)
    consume_from = transport.addresses.group_sources(spec)[0]
    # The same message ours builds for n=0 (raw gives each send a fresh id).
    message = to_message(
        body=BODY,
        attributes=outgoing(topic, 0).attributes,
        headers=outgoing(topic, 0).headers,
        content_type="application/avro",
        topic=topic,
    )
    plain = raw_url(url)
    rates: dict[str, list[float]] = {k: [] for k in ("ours pub", "raw pub", "ours con", "raw con")}

    async def ours() -> None:
        rates["ours pub"].append(await ours_publish(transport, topic, count, window))
        rates["ours con"].append(await ours_consume(transport, spec, count))

    async def raw() -> None:
        rates["raw pub"].append(
            await asyncio.to_thread(raw_publish, plain, publish_to, message, count, window)
        )
        rates["raw con"].append(
            await asyncio.to_thread(raw_consume, plain, consume_from, count, window)
        )

    try:
        await ours()  # warm-up (JIT-less, but the broker's queue and our caches warm up)
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
        await delete_queues(url, transport.queue_names(spec))

    median = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\n{count} messages x {args.rounds} rounds, window {window}, {args.url}")
    print(f"{'':10}{'ours':>12}{'raw proton':>12}{'ours/raw':>10}")
    for what, key in (("publish", "pub"), ("consume", "con")):
        ours_rate, raw_rate = median[f"ours {key}"], median[f"raw {key}"]
        print(f"{what:10}{ours_rate:>10,.0f}/s{raw_rate:>10,.0f}/s{ours_rate / raw_rate:>10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
