"""HTTP routes built from ``google.api.http`` annotations in a FileDescriptorSet.

Nothing here knows any service: every annotated method of every service the gateway has an
upstream for becomes one :class:`Route` per binding (the main rule and each of its
``additional_bindings``). Path templates follow ``google/api/http.proto``::

    Template = "/" Segments [ Verb ] ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;

A variable without segments matches one path segment (``*``); ``{name=things/*}`` binds the
whole matched text, slashes included, to ``name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor, MethodDescriptor
    from google.protobuf.descriptor_pool import DescriptorPool

__all__ = ["PathVariable", "Route", "RouteError", "Router", "build_routes", "parse_template"]

_METHODS = ("get", "put", "post", "delete", "patch")


class RouteError(GatewayError, ValueError):
    """An annotation the gateway cannot serve (bad template, unknown field)."""


@dataclass(frozen=True, slots=True)
class PathVariable:
    """A template variable: the request field path it fills and the group naming it."""

    field_path: tuple[str, ...]
    group: str
    pattern: str
    """The variable's own segments (``*`` or e.g. ``things/*``), for OpenAPI."""

    @property
    def name(self) -> str:
        """The dotted field path, as written in the template."""
        return ".".join(self.field_path)

    @property
    def openapi_name(self) -> str:
        """The OpenAPI parameter name: dots become ``_`` (``{thing.id}`` -> ``thing_id``),
        because URI-template and client generators treat dots as attribute access."""
        return "_".join(self.field_path)


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP binding of one RPC."""

    http_method: str
    template: str
    regex: re.Pattern[str]
    variables: tuple[PathVariable, ...]
    body: str
    """``""`` (no body), ``"*"`` (the whole request) or a top-level request field name."""
    response_body: str
    method: MethodDescriptor
    literal_segments: int
    has_verb: bool
    binding_index: int = 0
    openapi_path: str = field(default="")

    @property
    def rpc(self) -> str:
        """The RPC's full name, e.g. ``shop.orders.v1.OrderService.GetOrder``."""
        return self.method.full_name

    @property
    def grpc_path(self) -> str:
        """The gRPC method path, e.g. ``/shop.orders.v1.OrderService/GetOrder``."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        """True for ``returns (stream X)``."""
        return bool(self.method.server_streaming)

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key: verbs first, then more literal segments, then fewer variables."""
        return (int(self.has_verb), self.literal_segments, -len(self.variables))


def _split_segments(text: str) -> list[str]:
    # Split on "/" outside braces: "{name=things/*}/x" has two segments.
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == "/" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _segments_regex(segments: list[str], template: str) -> tuple[str, int]:
    pieces, literals = [], 0
    for segment in segments:
        if segment == "*":
            pieces.append("[^/]+")
        elif segment == "**":
            pieces.append(".+")
        elif not segment or any(c in segment for c in "{}*"):
            raise RouteError(f"bad segment {segment!r} in path template {template!r}")
        else:
            pieces.append(re.escape(segment))
            literals += 1
    return "/".join(pieces), literals


def parse_template(
    template: str,
) -> tuple[re.Pattern[str], tuple[PathVariable, ...], int, bool, str]:
    """Compile ``template``: (regex, variables, literal segment count, has verb, OpenAPI path)."""
    if not template.startswith("/"):
        raise RouteError(f"path template {template!r} must start with '/'")
    body, verb = template[1:], ""
    last = body.rsplit("/", 1)[-1]
    if ":" in last and "}" not in last[last.rfind(":") :]:
        body, verb = body[: body.rfind(":")], body[body.rfind(":") + 1 :]
    pieces: list[str] = []
    openapi: list[str] = []
    variables: list[PathVariable] = []
    literals = 0
    for segment in _split_segments(body):
        if segment.startswith("{") and segment.endswith("}"):
            inner = segment[1:-1]
            path_text, equals, sub = inner.partition("=")
            if equals and not sub:
                raise RouteError(f"empty segments in {segment!r} of path template {template!r}")
            sub = sub or "*"
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", path_text):
                raise RouteError(f"bad variable {segment!r} in path template {template!r}")
            group = f"v{len(variables)}"
            sub_regex, sub_literals = _segments_regex(_split_segments(sub), template)
            literals += sub_literals
            variables.append(PathVariable(tuple(path_text.split(".")), group, sub))
            pieces.append(f"(?P<{group}>{sub_regex})")
            openapi.append("{" + path_text.replace(".", "_") + "}")
        else:
            regex, count = _segments_regex([segment], template)
            pieces.append(regex)
            literals += count
            openapi.append(segment)
    regex_text = "^/" + "/".join(pieces) + (re.escape(":" + verb) if verb else "") + "$"
    openapi_path = "/" + "/".join(openapi) + (":" + verb if verb else "")
    return re.compile(regex_text), tuple(variables), literals, bool(verb), openapi_path


def _check_field_path(message: Descriptor, path: tuple[str, ...], where: str) -> None:
    current: Descriptor | None = message
    for i, name in enumerate(path):
        if current is None or name not in current.fields_by_name:
            raise RouteError(f"{where}: {message.full_name} has no field {'.'.join(path)!r}")
        fd = current.fields_by_name[name]
        last = i == len(path) - 1
        current = fd.message_type
        if not last and current is None:
            raise RouteError(f"{where}: {'.'.join(path[: i + 1])!r} is not a message field")


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule, index: int) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        http_method, template = rule.custom.kind.upper(), rule.custom.path
    elif kind in _METHODS:
        http_method, template = kind.upper(), getattr(rule, kind)
    else:
        raise RouteError(f"{method.full_name}: google.api.http rule without a pattern")
    regex, variables, literals, has_verb, openapi_path = parse_template(template)
    where = f"{method.full_name} {http_method} {template}"
    for variable in variables:
        _check_field_path(method.input_type, variable.field_path, where)
    if rule.body not in {"", "*"}:
        _check_field_path(method.input_type, (rule.body,), where)
    if rule.response_body:
        _check_field_path(method.output_type, (rule.response_body,), where)
    return Route(
        http_method=http_method,
        template=template,
        regex=regex,
        variables=variables,
        body=rule.body,
        response_body=rule.response_body,
        method=method,
        literal_segments=literals,
        has_verb=has_verb,
        binding_index=index,
        openapi_path=openapi_path,
    )


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    """The method's ``google.api.http`` option, or None when it has none."""
    options = method.GetOptions()
    # Options parsed by another pool come back as unknown fields; reparsing with the
    # default pool (where google.api.annotations registered the extension) recovers them.
    parsed = descriptor_pb2.MethodOptions.FromString(options.SerializeToString())
    if not parsed.HasExtension(annotations_pb2.http):
        return None
    return parsed.Extensions[annotations_pb2.http]


def build_routes(pool: DescriptorPool, services: list[str]) -> list[Route]:
    """Every binding of every annotated method of ``services`` (full names) in ``pool``."""
    routes: list[Route] = []
    for service_name in services:
        service = pool.FindServiceByName(service_name)
        for method in service.methods:
            rule = http_rule(method)
            if rule is None:
                continue
            if method.client_streaming:
                raise RouteError(f"{method.full_name}: client streaming has no REST mapping")
            routes.append(_route(method, rule, 0))
            for index, extra in enumerate(rule.additional_bindings, start=1):
                if extra.additional_bindings:
                    raise RouteError(f"{method.full_name}: nested additional_bindings")
                routes.append(_route(method, extra, index))
    return routes


class Router:
    """Finds the route for a method and path; most specific template first."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: r.specificity, reverse=True)

    def match(self, http_method: str, path: str) -> tuple[Route | None, dict[str, str], set[str]]:
        """(route, variables by group, methods allowed on this path when none matched)."""
        allowed: set[str] = set()
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.http_method == http_method:
                return route, found.groupdict(), set()
            allowed.add(route.http_method)
        return None, {}, allowed
