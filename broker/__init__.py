"""Transport-neutral messaging toolkit for Amazon MQ (RabbitMQ and ActiveMQ engines).

Events are Avro records in single-object encoding with CloudEvents 1.0 attributes in the
transport's headers; delivery is at-least-once with confirms, retries with backoff, and
per-group dead-letter queues; trace context crosses every hop through the global propagator.
"""

from broker._broker import Broker
from broker._subscription import ATTEMPT_HEADER, ERROR_HEADERS, Subscription
from broker.codec import AvroCodec
from broker.errors import (
    BrokerConnectionError,
    BrokerError,
    ConfigurationError,
    DeadLetter,
    DecodeError,
    EncodeError,
    PublishError,
    SchemaError,
    UnroutableError,
)
from broker.event import EncodedEvent, Event
from broker.registry import SchemaRegistry, SchemaVersion
from broker.retry import RetryPolicy
from broker.url import BrokerURL

__all__ = [
    "ATTEMPT_HEADER",
    "ERROR_HEADERS",
    "AvroCodec",
    "Broker",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerURL",
    "ConfigurationError",
    "DeadLetter",
    "DecodeError",
    "EncodeError",
    "EncodedEvent",
    "Event",
    "PublishError",
    "RetryPolicy",
    "SchemaError",
    "SchemaRegistry",
    "SchemaVersion",
    "Subscription",
    "UnroutableError",
]
