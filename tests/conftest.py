"""Session set-up shared by every test tier: the local brokers are running.

Starting them is idempotent and quick when they already run (`make test` starts them first);
this makes a bare `pytest` work too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
