"""STOMP 1.2 against ActiveMQ Classic: the local instance, and private instances to restart."""

from __future__ import annotations

from tests.conformance.targets import Target
from tests.support.activemq_instance import private_activemq

TARGET = Target(
    id="stomp",
    url="stomp://127.0.0.1:61613",
    private=private_activemq,
    unroutable_detected=False,
)
