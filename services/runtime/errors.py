# ruff: noqa: N818  -- the names are the gRPC status codes they stand for, as in google.api_core
"""Errors raised by the shared service runtime and by the services' domain code.

Every error derives from :class:`ServiceError`, and each also derives from the builtin a
generic handler would catch. A :class:`StatusError` carries its gRPC status; the one place that
turns it into a rich ``google.rpc.Status`` on the wire is
:class:`services.runtime.interceptors.ErrorInterceptor`::

    ServiceError
    ├── ConfigError (ValueError)              a bad or missing environment variable (named)
    └── StatusError                           an error a client should see, with a gRPC code
        ├── InvalidArgument (ValueError)      INVALID_ARGUMENT + BadRequest.field_violations
        ├── NotFound (LookupError)            NOT_FOUND + ResourceInfo
        ├── AlreadyExists                     ALREADY_EXISTS + ResourceInfo
        ├── FailedPrecondition                FAILED_PRECONDITION + PreconditionFailure
        ├── Aborted                           ABORTED (a concurrent change won; retry)
        └── Unavailable (ConnectionError)     UNAVAILABLE (a dependency is down; retry later)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import grpc
from google.rpc import error_details_pb2, status_pb2

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ConfigError",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PreconditionViolation",
    "ServiceError",
    "StatusError",
    "Unavailable",
]


class ServiceError(Exception):
    """Root of every error the runtime defines."""


class ConfigError(ServiceError, ValueError):
    """An environment variable is missing or invalid; the message is one line naming it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: ``field`` is a path such as ``lines[1].quantity``."""

    field: str
    description: str
    reason: str = ""
    """A stable machine-readable reason, e.g. the protovalidate rule id ``string.min_len``."""


@dataclass(frozen=True, slots=True)
class PreconditionViolation:
    """One unmet precondition, e.g. type ``STOCK``, subject ``products/SKU-1``."""

    type: str
    subject: str
    description: str


class StatusError(ServiceError):
    """An error with a gRPC status code; its message is safe to show to clients."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[Message]:
        """The ``google.rpc`` detail messages attached to the status (none by default)."""
        return []

    def to_status(self) -> status_pb2.Status:
        """This error as a ``google.rpc.Status`` with its details packed as ``Any``."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details():
            status.details.add().Pack(detail)
        return status


class _ResourceError(StatusError):
    _problem: ClassVar[str]

    def __init__(self, resource_type: str, resource_name: str, message: str | None = None) -> None:
        super().__init__(message or f"{resource_type} {resource_name!r} {self._problem}")
        self.resource_type = resource_type
        self.resource_name = resource_name

    def details(self) -> list[Message]:
        info = error_details_pb2.ResourceInfo(
            resource_type=self.resource_type,
            resource_name=self.resource_name,
            description=self.message,
        )
        return [info]


class NotFound(_ResourceError, LookupError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    _problem = "not found"


class AlreadyExists(_ResourceError):
    """A resource with that name exists already (and the request was not a safe retry)."""

    code = grpc.StatusCode.ALREADY_EXISTS
    _problem = "already exists"


class InvalidArgument(StatusError, ValueError):
    """The request is malformed; one :class:`FieldViolation` per bad field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        super().__init__(message or _summary("invalid request", [v.field for v in violations]))
        self.violations = tuple(violations)

    def details(self) -> list[Message]:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason
                    )
                    for v in self.violations
                ]
            )
        ]


class FailedPrecondition(StatusError):
    """The system is not in a state the request needs; one violation per unmet condition."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, violations: list[PreconditionViolation], message: str | None = None) -> None:
        subjects = [v.subject for v in violations]
        super().__init__(message or _summary("precondition failed", subjects))
        self.violations = tuple(violations)

    def details(self) -> list[Message]:
        return [
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=v.type, subject=v.subject, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


class Aborted(StatusError):
    """A concurrent change won (e.g. an optimistic version check); the client may retry."""

    code = grpc.StatusCode.ABORTED


class Unavailable(StatusError, ConnectionError):
    """A dependency (database, broker, upstream service) is unreachable; retry later."""

    code = grpc.StatusCode.UNAVAILABLE


def _summary(prefix: str, names: list[str]) -> str:
    return f"{prefix}: {', '.join(names)}" if names else prefix
