"""Request validation against the rules written in the contracts (protovalidate annotations).

:func:`validate` raises :class:`~services.runtime.errors.InvalidArgument` with one field
violation per broken rule; :class:`~services.runtime.interceptors.ValidationInterceptor` runs it
on every request before the handler, so handlers receive only requests the contract allows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import protovalidate

from services.runtime.errors import FieldViolation, InvalidArgument

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = ["field_path", "validate", "violations"]


def violations(
    message: Message, validator: protovalidate.Validator | None = None
) -> list[FieldViolation]:
    """Every rule ``message`` breaks, as field violations (empty when it is valid)."""
    found = (validator or _DEFAULT).collect_violations(message)
    return [
        FieldViolation(
            field=field_path(v),
            description=v.proto.message or v.proto.rule_id,
            reason=v.proto.rule_id,
        )
        for v in found
    ]


def validate(message: Message, validator: protovalidate.Validator | None = None) -> None:
    """Raise :class:`InvalidArgument` listing every broken rule; return if ``message`` is valid."""
    found = violations(message, validator)
    if found:
        raise InvalidArgument(found)


def field_path(violation: protovalidate.Violation) -> str:
    """The violation's field as a path: ``lines[1].quantity``, ``labels["k"]``; ``""`` for
    message-level rules."""
    path = violation.proto.field
    if path is None:
        return ""
    parts: list[str] = []
    for element in path.elements:
        text = element.field_name
        subscript = element.subscript
        if subscript is not None:
            key = subscript.value
            text += f"[{key}]" if subscript.field == "index" else f"[{json.dumps(key)}]"
        parts.append(text)
    return ".".join(parts)


_DEFAULT = protovalidate.Validator()
"""One shared validator: it caches the compiled rules of every message type it has seen."""
