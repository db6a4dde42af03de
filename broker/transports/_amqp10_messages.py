"""Events as AMQP 1.0 messages, per the CloudEvents AMQP protocol binding (binary mode).

The Avro body is one Data section; ``datacontenttype`` is the ``content-type`` property, the
event id the ``message-id``, and the other CloudEvents attributes are application-properties
named ``cloudEvents:<attr>``. Every other header (``traceparent``, ``x-attempt``, ...) is an
application-property under its own name. ``subject`` (an AMQP property the binding leaves free)
carries the event type, so a delivery names its topic even when read from a wildcard queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import proton

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CE_PREFIX", "Received", "from_message", "to_message"]

CE_PREFIX = "cloudEvents:"


def to_message(
    *,
    body: bytes,
    attributes: Mapping[str, str],
    headers: Mapping[str, str],
    content_type: str | None,
    topic: str,
    annotations: Mapping[str, int] | None = None,
) -> proton.Message:
    """A durable message with ``body`` as a Data section and the event's attributes."""
    properties: dict[str, str] = {CE_PREFIX + k: v for k, v in attributes.items()}
    properties.update(headers)
    message = proton.Message(
        body=bytes(body),
        inferred=True,  # bytes travel as a Data section, not an AMQP binary value
        durable=True,
        id=attributes.get("id"),
        subject=topic,
        properties=properties,
    )
    if content_type:
        message.content_type = content_type
    if annotations:
        message.annotations = {proton.symbol(k): v for k, v in annotations.items()}
    return message


@dataclass(frozen=True, slots=True)
class Received:
    """The parts of a received message the transport hands on."""

    body: bytes
    attributes: dict[str, str]
    headers: dict[str, str]
    content_type: str | None
    topic: str
    redelivered: bool


def from_message(message: proton.Message) -> Received:
    """Split a received message back into body, CloudEvents attributes and headers."""
    attributes: dict[str, str] = {}
    headers: dict[str, str] = {}
    properties: Mapping[Any, Any] = message.properties or {}
    for key, value in properties.items():
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = str(key)
        if name.startswith(CE_PREFIX):
            attributes[name[len(CE_PREFIX) :]] = text
        else:
            headers[name] = text
    if "id" not in attributes and message.id is not None:
        attributes["id"] = str(message.id)
    raw = message.body
    if isinstance(raw, bytes | bytearray | memoryview):
        body = bytes(raw)
    elif raw is None:
        body = b""
    else:  # an AmqpValue section from a foreign producer: keep its text form
        body = str(raw).encode()
    content_type = str(message.content_type) if message.content_type else None
    return Received(
        body=body,
        attributes=attributes,
        headers=headers,
        content_type=content_type,
        topic=str(message.subject or attributes.get("type", "")),
        redelivered=bool(message.delivery_count),
    )
