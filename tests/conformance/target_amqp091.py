"""AMQP 0-9-1 (aio-pika) against RabbitMQ: the machine's broker, and private nodes to restart."""

from __future__ import annotations

from tests.conformance.targets import Target
from tests.support.rabbitmq_node import private_rabbitmq

TARGET = Target(
    id="amqp091",
    url="amqp://guest:guest@127.0.0.1:5672/",
    private=lambda path: private_rabbitmq(path, scheme="amqp"),
    unroutable_detected=True,
)
