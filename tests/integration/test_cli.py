"""`shopmq` as a user runs it: real subprocesses against the real local brokers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from broker import Broker, DeadLetter
from tests.support.names import unique_hex

SHOPMQ = [sys.executable, "-m", "services.cli"]
ENGINES = {
    "stomp": "stomp://127.0.0.1:61613",
    "amqp091": "amqp://guest:guest@127.0.0.1:5672/",
    "amqp10": "amqp10://guest:guest@127.0.0.1:5672?dialect=rabbitmq",
}
ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_minor": 100}],
    "total_minor": 100,
    "currency": "EUR",
    "payment_method_id": "pm_ok",
    "placed_at": 0,
    "channel": "WEB",
    "promo_code": None,
}


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOPMQ, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(os.environ),
    )


def test_help_teaches_the_commands():
    """--help lists every command with a one-line purpose."""
    result = _run("--help")
    assert result.returncode == 0
    for command in ("up", "demo", "events", "dlq", "schemas", "asyncapi", "openapi"):
        assert command in result.stdout


def test_schemas_check_passes_on_the_repository():
    """The compatibility gate is green for the committed schemas."""
    result = _run("schemas", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "compatible" in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1", "unknown scheme"),
        ("stomp://127.0.0.1:1", "cannot connect to broker"),
    ],
)
def test_broker_errors_are_one_line(url, message):
    """A wrong or unreachable broker URL gives one clear line and a non-zero exit."""
    result = _run("dlq", "list", "payments", "--broker", url)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("engine", sorted(ENGINES))
async def test_events_tail_prints_decoded_events_with_trace_ids(engine):
    """`events tail --json` prints each published event, decoded, with its trace id."""
    url = ENGINES[engine]
    process = await asyncio.create_subprocess_exec(
        *SHOPMQ,
        "events",
        "tail",
        "shop.orders.v1.OrderPlaced",
        "--json",
        "--count",
        "1",
        "--broker",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    await asyncio.wait_for(process.stderr.readline(), 20)  # "tailing ..." once subscribed
    async with Broker(url, source="//tests/cli", name="cli-tail") as broker:
        sent = await broker.publish(
            "shop.orders.v1.OrderPlaced", ORDER, subject="o-1", mandatory=False
        )
    out, _ = await asyncio.wait_for(process.communicate(), 20)
    line = json.loads(out.decode().strip().splitlines()[-1])
    assert line["id"] == sent.id
    assert line["type"] == "shop.orders.v1.OrderPlaced"
    assert line["data"]["order_id"] == "o-1"
    assert "trace_id" in line


@pytest.mark.parametrize("engine", sorted(ENGINES))
async def test_dlq_list_and_replay(engine):
    """`dlq list` shows a dead letter and why; `dlq replay --id` sends it back once."""
    url = ENGINES[engine]
    group = f"cli{unique_hex()}"
    handled = []
    broken = {"yes": True}

    async def handler(event):
        if broken["yes"]:
            raise DeadLetter("bad order")
        handled.append(event.id)

    async with Broker(url, source="//tests/cli", name="cli-dlq") as broker:
        await broker.subscribe(group, ["shop.orders.v1.OrderPlaced"], handler)
        sent = await broker.publish("shop.orders.v1.OrderPlaced", ORDER, mandatory=False)
        await asyncio.sleep(1.0)
        topic = ["--topic", "shop.orders.v1.OrderPlaced", "--broker", url]
        listed = await asyncio.to_thread(_run, "dlq", "list", group, *topic)
        assert listed.returncode == 0, listed.stderr
        assert sent.id in listed.stdout
        assert "x-error-type=DeadLetter" in listed.stdout
        assert "1 dead letter(s)" in listed.stdout
        broken["yes"] = False
        replayed = await asyncio.to_thread(_run, "dlq", "replay", group, "--id", sent.id, *topic)
        assert "replayed 1 of 1" in replayed.stdout, replayed.stdout + replayed.stderr
        for _ in range(100):
            if handled:
                break
            await asyncio.sleep(0.05)
    assert handled == [sent.id]
