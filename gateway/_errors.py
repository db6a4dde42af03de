"""gRPC status -> HTTP status and the ``google.rpc.Status`` JSON body every error carries.

The table is grpc-gateway's (``runtime.HTTPStatusFromCode``), so REST clients of this gateway
see the same statuses as clients of a Go gateway in front of the same services.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from google.protobuf.descriptor_pool import DescriptorPool

__all__ = [
    "HTTP_STATUS",
    "ApiError",
    "bad_request",
    "from_rpc_error",
    "http_status",
    "status_json",
]

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status grpc-gateway answers for ``code``."""
    return HTTP_STATUS.get(code, 500)


class ApiError(GatewayError):
    """An error answered to the REST client as a ``google.rpc.Status`` body.

    ``http`` overrides the table for the few HTTP-only cases (413 oversize, 405 method).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        details: Iterable[Any] = (),
        http: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status_pb2.Status(code=code.value[0], message=message)
        for detail in details:
            self.status.details.add().Pack(detail)
        self.http = http if http is not None else http_status(code)
        self.headers = headers or {}


def bad_request(message: str, violations: Iterable[tuple[str, str]] = ()) -> ApiError:
    """INVALID_ARGUMENT (400) with one BadRequest field violation per (field, description)."""
    pairs = list(violations)
    details = []
    if pairs:
        request = error_details_pb2.BadRequest()
        for field, description in pairs:
            request.field_violations.add(field=field, description=description)
        details.append(request)
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message, details=details)


def from_rpc_error(error: grpc.aio.AioRpcError) -> ApiError:
    """The upstream's status, with its rich details when it sent any."""
    code = error.code()
    result = ApiError(code, error.details() or code.name)
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            rich = status_pb2.Status.FromString(value)
            if rich.code == code.value[0]:
                result.status = rich
            break
    return result


def code_of(number: int) -> grpc.StatusCode:
    """The StatusCode for a numeric code (UNKNOWN for numbers gRPC does not define)."""
    return _BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def status_json(status: status_pb2.Status, pool: DescriptorPool | None = None) -> dict[str, Any]:
    """``status`` in proto3 JSON; details of types nobody registered keep their raw bytes."""
    result: dict[str, Any] = {"code": status.code, "message": status.message, "details": []}
    for detail in status.details:
        try:
            result["details"].append(json_format.MessageToDict(detail, descriptor_pool=pool))
        except (TypeError, KeyError, json_format.Error):
            try:
                result["details"].append(json_format.MessageToDict(detail))
            except (TypeError, KeyError, json_format.Error):
                raw = base64.b64encode(detail.value).decode()
                result["details"].append({"@type": detail.type_url, "value": raw})
    return result
