"""Session set-up shared by every test tier: the local brokers are running.

Starting them is idempotent and quick when they already run (`make test` starts them first);
this makes a bare `pytest` work too.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import aio_pika
import pytest

from tests.support.names import RUN_QUEUE, local_rabbitmq_queues

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _local_brokers() -> None:
    """RabbitMQ (AMQP 0-9-1 and 1.0) on 5672 and ActiveMQ (STOMP) on 61613 are up."""
    for script in ("rabbitmq.sh", "activemq.sh"):
        subprocess.run(
            ["bash", str(ROOT / "deploy/local" / script), "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session", autouse=True)
def _delete_test_queues_on_shared_rabbitmq() -> Iterator[None]:
    """Remove the durable queues this run's test groups and isolated systems left on the
    machine's RabbitMQ: only this run's (``tests/support/names.py``), so another run going on
    at the same time keeps its own."""
    yield
    names = [n for n in local_rabbitmq_queues() if RUN_QUEUE.match(n)]
    if names:
        asyncio.run(_delete_queues(names))


async def _delete_queues(names: list[str]) -> None:
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


@pytest.fixture
async def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Parametrize indirectly with an engine: ``rabbitmq`` is the machine's RabbitMQ (a
    test isolates itself by exchange and queue prefix); ``activemq`` is a private ActiveMQ
    instance for the test, since virtual topic names come from the event types alone."""
    from tests.e2e.support import RABBIT  # noqa: PLC0415 - the tiers' helpers load on use
    from tests.support.activemq_instance import private_activemq  # noqa: PLC0415

    if request.param == "rabbitmq":
        yield RABBIT
        return
    async with private_activemq(tmp_path / "activemq") as instance:
        yield instance.url
