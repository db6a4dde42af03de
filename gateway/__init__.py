"""REST edge gateway: REST/JSON -> gRPC, driven by ``google.api.http`` annotations.

:func:`build_app` reads a FileDescriptorSet at start-up and serves every annotated RPC of
every service it has an upstream for: transcoding with the proto3 JSON mapping, grpc-gateway's
error table, OpenAPI 3.1 at ``/openapi.json`` and ``/docs``, SSE/NDJSON for server streams,
API keys and JWTs, rate limits and a response cache (in memory or Redis). See docs/gateway.md.
"""

from gateway._auth import hash_key
from gateway._errors import HTTP_STATUS, ApiError
from gateway._routes import RouteError
from gateway.app import build_app, load_descriptors
from gateway.errors import GatewayError
from gateway.settings import ApiKey, GatewaySettings

__all__ = [
    "HTTP_STATUS",
    "ApiError",
    "ApiKey",
    "GatewayError",
    "GatewaySettings",
    "RouteError",
    "build_app",
    "hash_key",
    "load_descriptors",
]
