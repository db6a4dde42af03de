"""Broker-side names: one place deciding exchanges, queues, DLQs and topic matching."""

from __future__ import annotations

import pytest

from broker import naming
from broker.errors import ConfigurationError


def test_rabbit_names() -> None:
    """Group queue, DLQ and retry queue derive from the group and prefix."""
    assert naming.DEFAULT_EXCHANGE == "shop.events"
    assert naming.rabbit_group_queue("payments") == "shop.payments"
    assert naming.rabbit_group_queue("payments", prefix="test") == "test.payments"
    assert naming.rabbit_dead_letter_queue("payments") == "shop.payments.dlq"
    assert naming.rabbit_retry_queue("payments", 1.5) == "shop.payments.retry.1500"
    assert naming.rabbit_retry_queue("payments", 0.0004) == "shop.payments.retry.0"


def test_activemq_names() -> None:
    """Virtual topics for producers, Consumer.<group>.VirtualTopic.<pattern> for groups."""
    assert naming.activemq_topic("shop.orders.v1.OrderPlaced") == (
        "VirtualTopic.shop.orders.v1.OrderPlaced"
    )
    assert naming.activemq_consumer_queue("audit", "shop.#") == "Consumer.audit.VirtualTopic.shop.>"
    assert naming.activemq_consumer_queue("pay", "shop.*.v1.OrderPlaced") == (
        "Consumer.pay.VirtualTopic.shop.*.v1.OrderPlaced"
    )
    assert naming.activemq_dead_letter_queue("audit") == "shop.audit.dlq"
    assert naming.activemq_retry_queue("audit") == "shop.audit.retry"


def test_activemq_hash_only_last() -> None:
    """ActiveMQ's '>' only ends a pattern, so '#' elsewhere is refused there."""
    assert naming.activemq_pattern("#") == ">"
    with pytest.raises(ConfigurationError, match="'#' must be last"):
        naming.activemq_pattern("shop.#.OrderPlaced")


@pytest.mark.parametrize("group", ["", "a b", "a.b", "a/b", "a*"])
def test_bad_group_names_are_refused(group: str) -> None:
    """Group names become queue names: only letters, digits, '-' and '_'."""
    with pytest.raises(ConfigurationError, match="consumer group"):
        naming.validate_group(group)


def test_good_group_names_pass_through() -> None:
    """Valid group names are returned unchanged."""
    assert naming.validate_group("order-saga_2") == "order-saga_2"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("", "empty word"), ("shop..x", "empty word"), ("shop.", "empty word"), ("shop.a*", "whole")],
)
def test_bad_patterns_are_refused(pattern: str, message: str) -> None:
    """Empty words and partial-word wildcards are configuration errors."""
    with pytest.raises(ConfigurationError, match=message):
        naming.validate_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("shop.orders.v1.OrderPlaced", "shop.orders.v1.OrderPlaced", True),
        ("shop.orders.v1.OrderPlaced", "shop.orders.v1.OrderConfirmed", False),
        ("shop.*.v1.OrderPlaced", "shop.orders.v1.OrderPlaced", True),
        ("shop.*", "shop.orders.v1", False),
        ("shop.#", "shop.orders.v1.OrderPlaced", True),
        ("shop.#", "shop", True),
        ("#", "anything.at.all", True),
        ("shop.#.OrderPlaced", "shop.orders.v1.OrderPlaced", True),
        ("shop.#.OrderPlaced", "shop.OrderPlaced", True),
        ("shop.#.OrderPlaced", "shop.orders.v1.OrderCancelled", False),
        ("*.orders.#", "shop.orders", True),
        ("*", "", True),
    ],
)
def test_topic_matching(pattern: str, topic: str, matches: bool) -> None:
    """'*' matches exactly one word and '#' zero or more, as on a RabbitMQ topic exchange."""
    assert naming.topic_matches(pattern, topic) is matches
