"""Connection lifecycle: broker restarts lose nothing; failover lists skip dead endpoints."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from broker import BrokerConnectionError, BrokerURL
from tests.conformance._support import Inbox, eventually, ping
from tests.support.ports import free_port


@pytest.mark.slow
async def test_broker_restart_mid_stream_loses_nothing(
    make_broker, target, tmp_path, namespace, uid
):
    """While events flow, the broker stops and starts again: the publisher waits and resends,
    the consumer reconnects and resubscribes, and every event is handled (duplicates allowed,
    losses not)."""
    async with target.private(tmp_path / "broker") as private:
        producer = make_broker(private.url, publish_timeout=60.0)
        consumer = make_broker(private.url)
        await producer.start()
        await consumer.start()
        inbox = Inbox()
        await consumer.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox, prefetch=20)
        total = 400

        async def publish_all() -> None:
            for n in range(total):
                await producer.publish(f"{namespace}.Ping", ping(n))
                await asyncio.sleep(0.005)

        publishing = asyncio.create_task(publish_all())
        await eventually(lambda: len(inbox.events) >= 50, timeout=30, what="traffic flowing")
        await private.stop()
        await asyncio.sleep(1.0)
        await private.start()
        await asyncio.wait_for(publishing, timeout=90)

        await eventually(
            lambda: set(inbox.seqs) == set(range(total)),
            timeout=60,
            what=f"all {total} events after restart",
        )
        assert producer.reconnects >= 1
        assert consumer.reconnects >= 1


async def test_failover_url_skips_a_dead_endpoint(make_broker, target, namespace, uid):
    """With a dead endpoint listed first, the broker connects to the live one."""
    parsed = BrokerURL.parse(target.url)
    live = parsed.endpoints[0]
    dead = dataclasses.replace(live, port=free_port())
    url = dataclasses.replace(parsed, endpoints=(dead, live))
    broker = make_broker(url)
    await broker.start()
    inbox = Inbox()
    await broker.subscribe(f"g{uid}", [f"{namespace}.Ping"], inbox)
    await broker.publish(f"{namespace}.Ping", ping(1))
    await eventually(lambda: len(inbox.events) == 1)
    assert broker.transport.endpoint == live


async def test_unreachable_broker_fails_start_with_one_clear_error(make_broker, target):
    """Start-up against nothing listening raises BrokerConnectionError naming the URL."""
    scheme = target.url.split("://", 1)[0]
    broker = make_broker(f"{scheme}://127.0.0.1:{free_port()}", connect_timeout=1.0)
    with pytest.raises(BrokerConnectionError, match="cannot connect to broker"):
        await broker.start()
