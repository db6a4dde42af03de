"""Broker-side names: one place, so transports, tools and the AsyncAPI document agree.

RabbitMQ (AMQP 0-9-1, and AMQP 1.0 on RabbitMQ):
    exchange            ``shop.events``  (durable topic exchange; URL option ``exchange``)
    group queue         ``shop.<group>``  (quorum by default; options ``prefix``, ``queue_type``)
    dead-letter queue   ``shop.<group>.dlq``
    retry queue         ``shop.<group>.retry.<ms>``  (TTL, dead-letters back to the group queue)

ActiveMQ (STOMP, and AMQP 1.0 on ActiveMQ), AWS-recommended virtual destinations:
    producer topic      ``VirtualTopic.<event type>``
    group queue         ``Consumer.<group>.VirtualTopic.<pattern>``  (``#`` becomes ``>``)
    dead-letter queue   ``shop.<group>.dlq``   (a plain queue: one per group, as on RabbitMQ)
    retry queue         ``shop.<group>.retry`` (scheduled redelivery; the group consumes it too)

Why plain per-group queues for retries and dead letters on ActiveMQ: a group's consumer queue
may carry a wildcard (``Consumer.audit.VirtualTopic.shop.>``), and a SEND to a wildcard name is
a wildcard send in ActiveMQ, so copies cannot be addressed back to it.
"""

from __future__ import annotations

from broker.errors import ConfigurationError

__all__ = [
    "DEFAULT_EXCHANGE",
    "DEFAULT_PREFIX",
    "activemq_consumer_queue",
    "activemq_dead_letter_queue",
    "activemq_pattern",
    "activemq_retry_queue",
    "activemq_topic",
    "rabbit_dead_letter_queue",
    "rabbit_group_queue",
    "rabbit_retry_queue",
    "topic_matches",
    "validate_group",
    "validate_pattern",
]

DEFAULT_EXCHANGE = "shop.events"
DEFAULT_PREFIX = "shop"
VIRTUAL_TOPIC = "VirtualTopic"


def validate_group(group: str) -> str:
    """Group names become queue names on every broker: letters, digits, ``-`` and ``_``."""
    if not group or not all(c.isalnum() or c in "-_" for c in group):
        raise ConfigurationError(
            f"consumer group {group!r} must be non-empty letters, digits, '-' or '_'"
        )
    return group


def validate_pattern(pattern: str) -> str:
    """A topic pattern: dot-separated words, ``*`` one word, ``#`` zero or more words."""
    words = pattern.split(".")
    if not pattern or any(not w for w in words):
        raise ConfigurationError(f"topic pattern {pattern!r} has an empty word")
    for word in words:
        if word not in {"*", "#"} and any(c in word for c in "*#>"):
            raise ConfigurationError(f"topic pattern {pattern!r}: wildcards must be whole words")
    return pattern


def rabbit_group_queue(group: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{validate_group(group)}"


def rabbit_dead_letter_queue(group: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{rabbit_group_queue(group, prefix)}.dlq"


def rabbit_retry_queue(group: str, delay: float, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{rabbit_group_queue(group, prefix)}.retry.{round(delay * 1000)}"


def activemq_pattern(pattern: str) -> str:
    """AMQP topic syntax to ActiveMQ wildcards (``*`` stays, ``#`` becomes ``>``).

    ActiveMQ's ``>`` matches one or more trailing words, so ``#`` is only accepted last.
    """
    words = validate_pattern(pattern).split(".")
    if "#" in words[:-1]:
        raise ConfigurationError(f"topic pattern {pattern!r}: on ActiveMQ '#' must be last")
    return ".".join(">" if w == "#" else w for w in words)


def activemq_topic(event_type: str) -> str:
    return f"{VIRTUAL_TOPIC}.{event_type}"


def activemq_consumer_queue(group: str, pattern: str) -> str:
    return f"Consumer.{validate_group(group)}.{VIRTUAL_TOPIC}.{activemq_pattern(pattern)}"


def activemq_dead_letter_queue(group: str, prefix: str = DEFAULT_PREFIX) -> str:
    return rabbit_dead_letter_queue(group, prefix)


def activemq_retry_queue(group: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{rabbit_group_queue(group, prefix)}.retry"


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches ``pattern`` (``*`` one word, ``#`` zero or more words)."""
    return _match(validate_pattern(pattern).split("."), topic.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in {"*", words[0]}) and _match(rest, words[1:])
