"""AMQP 1.0 (proton) against RabbitMQ's AMQP 1.0 plugin: the machine's broker, and private nodes
(with the plugin enabled) to restart. ActiveMQ's AMQP module is not in Debian's package, so the
ActiveMQ dialect is covered by tests/unit/test_amqp10_addresses.py."""

from __future__ import annotations

from tests.conformance.targets import Target
from tests.support.rabbitmq_node import private_rabbitmq

TARGET = Target(
    id="amqp10",
    url="amqp10://guest:guest@127.0.0.1:5672?dialect=rabbitmq",
    private=lambda path: private_rabbitmq(path, scheme="amqp10"),
    unroutable_detected=False,
)
