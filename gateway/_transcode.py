"""REST request -> protobuf request message, protobuf response -> JSON (proto3 JSON mapping).

The request message is assembled as one JSON object and parsed once by
``google.protobuf.json_format``, so every field gets the canonical mapping (lowerCamelCase or
original names, int64 as strings or numbers, enums as names or numbers, RFC 3339 Timestamps):

1. the body: the whole object (``body: "*"``) or the value of one field (``body: "field"``);
2. path variables, which win over the body for the fields they bind;
3. query parameters for the fields neither binds (``a.b=1``; repeated fields as ``t=x&t=y``).

Client mistakes (malformed JSON, unknown fields, wrong types, a query parameter that names no
field) become :class:`~gateway._errors.ApiError` 400s naming the field.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from gateway._errors import bad_request

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor
    from google.protobuf.descriptor_pool import DescriptorPool
    from google.protobuf.message import Message

    from gateway._routes import Route

__all__ = ["LEAF_MESSAGES", "build_request", "encode", "message_json", "response_json"]

LEAF_MESSAGES = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    }
)
"""Message types written as one JSON string/number, so a path or query value can fill them."""

_AT = re.compile(r' at "([^"]+)"')
_BOOLS = {"true": True, "false": False}


def _find_field(message: Descriptor, name: str) -> FieldDescriptor | None:
    found = message.fields_by_name.get(name)
    if found is not None:
        return found
    return next((f for f in message.fields if f.json_name == name), None)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_map(field: FieldDescriptor) -> bool:
    message = field.message_type
    return _is_repeated(field) and message is not None and message.GetOptions().map_entry


def _scalar(field: FieldDescriptor, text: str, where: str) -> Any:
    # json_format parses numbers, enums and leaf messages from strings, but not booleans.
    bool_type = field.type == FieldDescriptor.TYPE_BOOL or (
        field.message_type is not None
        and field.message_type.full_name == "google.protobuf.BoolValue"
    )
    if bool_type:
        if text not in _BOOLS:
            raise bad_request(f"{where}: {text!r} is not true or false", [(where, "not a bool")])
        return _BOOLS[text]
    return text


def _set(
    data: dict[str, Any],
    message: Descriptor,
    path: list[str],
    value: Any,
    *,
    where: str,
    append: bool = False,
) -> None:
    """Set ``data[path] = value`` under the fields' JSON names, checking the path exists."""
    field = _find_field(message, path[0])
    if field is None:
        raise bad_request(
            f"{where}: {message.full_name} has no field {path[0]!r}", [(where, "unknown field")]
        )
    # The body may have used the other spelling of the same field; one key must remain.
    key = field.json_name
    if field.name != key and field.name in data:
        data[key] = data.pop(field.name)
    if len(path) > 1:
        if field.message_type is None or _is_repeated(field):
            raise bad_request(
                f"{where}: {field.name!r} is not a singular message field",
                [(where, "not a message field")],
            )
        child = data.setdefault(key, {})
        if not isinstance(child, dict):
            raise bad_request(f"{where}: {field.name!r} must be an object", [(where, "wrong type")])
        _set(child, field.message_type, path[1:], value, where=where, append=append)
        return
    leaf_message = field.message_type is not None and field.message_type.full_name in (
        LEAF_MESSAGES
    )
    if _is_map(field) or (field.message_type is not None and not leaf_message):
        raise bad_request(
            f"{where}: {field.name!r} is a message and cannot be set from a URL",
            [(where, "not a scalar field")],
        )
    converted = _scalar(field, value, where)
    if _is_repeated(field):
        if append and isinstance(data.get(key), list):
            data[key].append(converted)
        else:
            data[key] = [converted]
        return
    if append and key in data:
        raise bad_request(f"{where}: given more than once", [(where, "not a repeated field")])
    data[key] = converted


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise bad_request("request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise bad_request("malformed JSON body: nested too deeply") from None


def _parse_error(exc: Exception, root: Descriptor) -> Exception:
    text = str(exc).split("\n", 1)[0]
    found = _AT.search(text)
    field = ""
    if found:
        # json_format reports "Type.field.sub"; clients know the field path, not the type.
        field = found.group(1).split(".", 1)[1] if "." in found.group(1) else ""
    if not field:
        named = re.search(r"Failed to parse (\w+) field", text) or re.search(
            r'no field named "([^"]+)"', text
        )
        field = named.group(1) if named else root.name
    return bad_request(f"invalid request: {text}", [(field, text)])


def _body_data(route: Route, descriptor: Descriptor, body: bytes) -> dict[str, Any]:
    has_body = bool(body.strip())
    if route.body == "*":
        parsed = _json_body(body) if has_body else {}
        if not isinstance(parsed, dict):
            raise bad_request("request body must be a JSON object")
        return parsed
    if route.body:
        field = descriptor.fields_by_name[route.body]
        return {field.json_name: _json_body(body)} if has_body else {}
    if has_body:
        raise bad_request(f"{route.http_method} {route.template} takes no request body")
    return {}


def _apply_query(
    route: Route, descriptor: Descriptor, data: dict[str, Any], query: list[tuple[str, str]]
) -> None:
    bound = {variable.name for variable in route.variables}
    if route.body:
        bound.add(route.body)
    for name, value in query:
        if route.body == "*":
            raise bad_request(
                f"query parameter {name!r}: the body carries every field of this request",
                [(name, "unexpected query parameter")],
            )
        if any(name == b or name.startswith(b + ".") for b in bound):
            raise bad_request(
                f"query parameter {name!r}: field is bound by the path or body",
                [(name, "field already bound")],
            )
        _set(data, descriptor, name.split("."), value, where=name, append=True)


def build_request(
    route: Route,
    message_class: type[Message],
    *,
    path_values: dict[str, str],
    query: list[tuple[str, str]],
    body: bytes,
    pool: DescriptorPool,
) -> Message:
    """The request message for ``route`` from the matched path, query string and body."""
    descriptor = route.method.input_type
    data = _body_data(route, descriptor, body)
    for variable in route.variables:
        value = path_values[variable.group]
        _set(data, descriptor, list(variable.field_path), value, where=variable.name)
    _apply_query(route, descriptor, data, query)
    message = message_class()
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False, descriptor_pool=pool)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise _parse_error(exc, descriptor) from None
    return message


def message_json(message: Message, pool: DescriptorPool) -> Any:
    """``message`` in canonical proto3 JSON (fields without presence included)."""
    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, descriptor_pool=pool
    )


def response_json(route: Route, message: Message, pool: DescriptorPool) -> Any:
    """The response body: the whole message, or its ``response_body`` field."""
    data = message_json(message, pool)
    if route.response_body:
        field = route.method.output_type.fields_by_name[route.response_body]
        return data.get(field.json_name)
    return data


def encode(data: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
