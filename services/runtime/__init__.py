"""The shared runtime every service (and the gateway) is built on.

- :mod:`~services.runtime.settings`: typed, frozen settings from environment variables;
- :mod:`~services.runtime.logging`: structlog JSON lines with per-RPC context;
- :mod:`~services.runtime.server`: the gRPC server lifecycle (health, reflection, graceful
  shutdown on SIGTERM, shutdown hooks);
- :mod:`~services.runtime.errors` and :mod:`~services.runtime.interceptors`: domain errors and
  the interceptors that log calls, validate requests and map errors to rich gRPC statuses;
- :mod:`~services.runtime.entrypoint`: ``run(main)`` for ``python -m services.<name>``.
"""

from services.runtime.entrypoint import run
from services.runtime.errors import (
    Aborted,
    AlreadyExists,
    ConfigError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    ServiceError,
    StatusError,
    Unavailable,
)
from services.runtime.logging import configure_logging, get_logger
from services.runtime.server import ServiceServer, State, create_server
from services.runtime.settings import Env, Settings
from services.runtime.validation import validate

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ConfigError",
    "Env",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PreconditionViolation",
    "ServiceError",
    "ServiceServer",
    "Settings",
    "State",
    "StatusError",
    "Unavailable",
    "configure_logging",
    "create_server",
    "get_logger",
    "run",
    "validate",
]
