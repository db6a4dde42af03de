"""Names unique to one test run, so that the run can tell its own RabbitMQ queues from those
of another run on the same machine (a second ``pytest`` in another terminal, or CI)."""

from __future__ import annotations

import re
import secrets
import subprocess
import uuid

RUN = secrets.token_hex(3)
"""Six hex digits for this pytest process, at the start of every :func:`unique_hex`."""


def unique_hex() -> str:
    """Fourteen hex digits: this run's :data:`RUN`, then eight random ones."""
    return RUN + uuid.uuid4().hex[:8]


RUN_QUEUE = re.compile(rf"^(shop\.[a-z]+{RUN}[0-9a-f]{{8}}(\.|$)|t{RUN}[0-9a-f]{{8}}\.)")
"""Queues this run's test groups (``shop.<word><unique_hex>`` with their ``.dlq`` and
``.retry.<ms>`` companions) and isolated systems (``t<unique_hex>.``: ``isolated_broker_url``)
declare on the machine's RabbitMQ."""


def local_rabbitmq_queues() -> list[str]:
    """The name of every queue on the machine's RabbitMQ (``rabbitmqctl``; none if it fails)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, check=False
    )
    return listed.stdout.split()
