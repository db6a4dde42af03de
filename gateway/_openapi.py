"""OpenAPI 3.1 from the same routes and descriptors the gateway serves.

Every route is one operation (``operationId`` = ``Service_Method``, plus ``_<n>`` for
additional bindings); path variables are path parameters, fields neither the path nor the body
binds are query parameters (nested ones dotted: ``filter.color``), and every message becomes a
schema under ``components/schemas`` named by its full name, in canonical proto3 JSON: int64 as
strings, enums as names, Timestamps as RFC 3339 ``date-time``. Every operation documents its
errors as ``google.rpc.Status``. Leading comments in the protos become descriptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import FieldDescriptor

from gateway._streaming import NDJSON, SSE
from gateway._transcode import LEAF_MESSAGES

if TYPE_CHECKING:
    from google.protobuf import descriptor_pb2
    from google.protobuf.descriptor import Descriptor

    from gateway._routes import Route

__all__ = ["STATUS_SCHEMA", "openapi_document"]

_INT64 = {"type": "string", "pattern": "^-?[0-9]{1,19}$", "format": "int64"}
_UINT64 = {"type": "string", "pattern": "^[0-9]{1,20}$", "format": "uint64"}
_FLOAT = {
    "oneOf": [
        {"type": "number"},
        {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
    ]
}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: _FLOAT,
    FieldDescriptor.TYPE_FLOAT: _FLOAT,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.DoubleValue": _FLOAT,
    "google.protobuf.FloatValue": _FLOAT,
    "google.protobuf.Int64Value": _INT64,
    "google.protobuf.UInt64Value": _UINT64,
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "uint32", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "contentEncoding": "base64"},
}
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "google.rpc.Status: gRPC code, message and typed details.",
    "properties": {
        "code": {"type": "integer", "format": "int32"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"]},
    },
    "required": ["code", "message"],
}
_ERROR_RESPONSE = {
    "description": "An error as google.rpc.Status (gRPC codes mapped as by grpc-gateway).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
}


def _walk_messages(
    messages: Any, path: tuple[int, ...], scope: str, paths: dict[tuple[int, ...], str]
) -> None:
    # SourceCodeInfo paths: 4 = message_type, 2 = field, 3 = nested_type, 4 = enum_type.
    for i, message in enumerate(messages):
        name = scope + message.name
        paths[(*path, i)] = name
        for j, field in enumerate(message.field):
            paths[(*path, i, 2, j)] = f"{name}.{field.name}"
        _walk_messages(message.nested_type, (*path, i, 3), name + ".", paths)
        for j, enum in enumerate(message.enum_type):
            paths[(*path, i, 4, j)] = f"{name}.{enum.name}"


def _element_paths(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    prefix = f"{file.package}." if file.package else ""
    paths: dict[tuple[int, ...], str] = {}
    _walk_messages(file.message_type, (4,), prefix, paths)
    for i, enum in enumerate(file.enum_type):
        paths[(5, i)] = prefix + enum.name
    for i, service in enumerate(file.service):
        paths[(6, i)] = prefix + service.name
        for j, method in enumerate(service.method):
            paths[(6, i, 2, j)] = f"{prefix}{service.name}.{method.name}"
    return paths


def _comments(descriptors: list[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Leading comments by element full name (messages, fields, services, methods, enums)."""
    found: dict[str, str] = {}
    for file in descriptors:
        paths = _element_paths(file)
        for location in file.source_code_info.location:
            name = paths.get(tuple(location.path))
            if name and location.leading_comments.strip():
                found[name] = " ".join(location.leading_comments.split())
    return found


class _Schemas:
    def __init__(self, comments: dict[str, str]) -> None:
        self.comments = comments
        self.components: dict[str, Any] = {"Status": STATUS_SCHEMA}

    def message_ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name not in self.components:
            self.components[message.full_name] = {}  # placeholder: recursion stops here
            self.components[message.full_name] = self._message(message)
        return {"$ref": f"#/components/schemas/{message.full_name}"}

    def _message(self, message: Descriptor) -> dict[str, Any]:
        properties = {
            field.json_name: self.field(field, f"{message.full_name}.{field.name}")
            for field in message.fields
        }
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if message.full_name in self.comments:
            schema["description"] = self.comments[message.full_name]
        return schema

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.enum_type is not None:
            names = [value.name for value in field.enum_type.values]
            return {"type": "string", "enum": names}
        if field.message_type is not None:
            return self.message_ref(field.message_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor, name: str) -> dict[str, Any]:
        message = field.message_type
        if field.is_repeated and message is not None and message.GetOptions().map_entry:
            value = self.single(message.fields_by_name["value"])
            schema: dict[str, Any] = {"type": "object", "additionalProperties": value}
        elif field.is_repeated:
            schema = {"type": "array", "items": self.single(field)}
        else:
            schema = self.single(field)
        if name in self.comments:
            schema = {**schema, "description": self.comments[name]}
        return schema


def _query_parameters(
    route: Route, schemas: _Schemas, message: Descriptor, prefix: str, depth: int
) -> list[dict[str, Any]]:
    bound = {v.name for v in route.variables} | ({route.body} if route.body else set())
    params: list[dict[str, Any]] = []
    for field in message.fields:
        name = prefix + field.name
        if name in bound or depth > 3:  # noqa: PLR2004  -- deeper nesting is not URL-friendly
            continue
        nested = field.message_type
        if nested is not None and nested.full_name not in LEAF_MESSAGES:
            if not field.is_repeated:
                params += _query_parameters(route, schemas, nested, name + ".", depth + 1)
            continue
        if nested is not None:
            schema: dict[str, Any] = dict(_WELL_KNOWN[nested.full_name])
        else:
            schema = schemas.single(field)
        if field.is_repeated:
            schema = {"type": "array", "items": schema}
        param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
        if field.is_repeated:
            param.update(style="form", explode=True)
        comment = schemas.comments.get(f"{message.full_name}.{field.name}")
        if comment:
            param["description"] = comment
        params.append(param)
    return params


def _path_parameter(route: Route, variable: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if variable.pattern == "*":
        schema["pattern"] = "^[^/]+$"
    # A multi-segment variable ({name=shelves/*/things/*}) holds slashes, which path
    # parameters cannot express as a pattern clients (and schemathesis) can satisfy, so its
    # shape is given in the description; sent percent-encoded or not, it matches the same.
    return {
        "name": variable.openapi_name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": f"Field {variable.name}: {variable.pattern!r} in {route.template}",
    }


def _request_body(route: Route, schemas: _Schemas) -> dict[str, Any]:
    method = route.method
    if route.body == "*":
        schema = schemas.message_ref(method.input_type)
    else:
        field = method.input_type.fields_by_name[route.body]
        schema = schemas.field(field, f"{method.input_type.full_name}.{route.body}")
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _ok_response(route: Route, schemas: _Schemas) -> dict[str, Any]:
    method = route.method
    if route.response_body:
        field = method.output_type.fields_by_name[route.response_body]
        schema = schemas.field(field, f"{method.output_type.full_name}.{route.response_body}")
    else:
        schema = schemas.message_ref(method.output_type)
    if not route.server_streaming:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}
    line = {
        "type": "object",
        "properties": {"result": schema, "error": {"$ref": "#/components/schemas/Status"}},
    }
    return {
        "description": "A stream of messages (NDJSON lines, or SSE with Accept: text/event-stream)",
        "content": {NDJSON: {"schema": line}, SSE: {"schema": {"type": "string"}}},
    }


def _operation(route: Route, schemas: _Schemas, *, secured: bool) -> dict[str, Any]:
    method = route.method
    service = method.containing_service
    operation_id = f"{service.name}_{method.name}"
    if route.binding_index:
        operation_id += f"_{route.binding_index}"
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [service.full_name],
        "summary": method.full_name,
        "parameters": [_path_parameter(route, v) for v in route.variables],
    }
    if method.full_name in schemas.comments:
        operation["description"] = schemas.comments[method.full_name]
    if route.body != "*":
        operation["parameters"] += _query_parameters(route, schemas, method.input_type, "", 0)
    if route.body:
        operation["requestBody"] = _request_body(route, schemas)
    operation["responses"] = {"200": _ok_response(route, schemas), "default": _ERROR_RESPONSE}
    if route.http_method == "GET":
        operation["responses"]["304"] = {"description": "Not modified (If-None-Match)"}
    if not secured:
        operation["security"] = []
    return operation


def openapi_document(
    routes: list[Route],
    files: list[descriptor_pb2.FileDescriptorProto],
    *,
    title: str = "REST gateway",
    version: str = "v1",
    auth: bool = True,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes`` (``files`` supply the comments)."""
    schemas = _Schemas(_comments(files))
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.openapi_path, r.http_method)):
        item = paths.setdefault(route.openapi_path, {})
        item[route.http_method.lower()] = _operation(route, schemas, secured=auth)
    open_ops = {"security": [], "responses": {"200": {"description": "OK"}}}
    paths["/healthz"] = {"get": {"operationId": "gateway_health", **open_ops}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }
    if auth:
        document["security"] = [{"apiKey": []}, {"bearer": []}]
    return document
