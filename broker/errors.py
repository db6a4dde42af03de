"""Exceptions raised by the broker toolkit.

Every error derives from :class:`BrokerError`, and each also derives from the builtin that a
generic handler would catch, so ``except ConnectionError`` still sees a lost broker::

    BrokerError
    ├── ConfigurationError (ValueError)      bad URL, unknown scheme, bad option
    ├── SchemaError (ValueError)             unknown event type, invalid schema file
    │   └── EncodeError                      a record does not match its schema (names the field)
    ├── DecodeError (ValueError)             body is not single-object Avro, or unknown fingerprint
    ├── BrokerConnectionError (ConnectionError)   no endpoint answered, or the connection was lost
    ├── PublishError (ConnectionError)       the broker did not confirm a publish
    │   └── UnroutableError                  confirmed, but no queue was bound for it
    └── DeadLetter                           raised by a handler: skip retries, dead-letter now
"""

from __future__ import annotations

__all__ = [
    "BrokerConnectionError",
    "BrokerError",
    "ConfigurationError",
    "DeadLetter",
    "DecodeError",
    "EncodeError",
    "PublishError",
    "SchemaError",
    "UnroutableError",
]


class BrokerError(Exception):
    """Root of every error the toolkit raises."""


class ConfigurationError(BrokerError, ValueError):
    """The broker URL or an option is wrong; raised at start-up, before any I/O."""


class SchemaError(BrokerError, ValueError):
    """An event type has no schema, or a schema file is invalid."""


class EncodeError(SchemaError):
    """A record does not match its schema; nothing was sent."""

    def __init__(self, event_type: str, field: str, reason: str) -> None:
        super().__init__(f"{event_type}: field {field!r} {reason}")
        self.event_type = event_type
        self.field = field
        self.reason = reason


class DecodeError(BrokerError, ValueError):
    """A message body cannot be decoded; such messages go to the dead-letter queue at once."""


class BrokerConnectionError(BrokerError, ConnectionError):
    """No broker endpoint could be reached, or the connection was lost."""


class PublishError(BrokerError, ConnectionError):
    """The broker did not confirm a publish (nack, timeout, or connection lost)."""


class UnroutableError(PublishError):
    """The broker returned the message: no queue is bound for its routing key."""


class DeadLetter(BrokerError):  # noqa: N818 - an outcome a handler raises, not an error condition
    """Raise from a handler to send the message to the dead-letter queue without retrying."""
