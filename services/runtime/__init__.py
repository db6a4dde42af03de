"""The shared runtime every service (and the gateway) is built on.

- :mod:`~services.runtime.settings`: typed, frozen settings from environment variables;
- :mod:`~services.runtime.logging`: structlog JSON lines with per-RPC context;
- :mod:`~services.runtime.server`: the gRPC server lifecycle (health, reflection, graceful
  shutdown on SIGTERM, shutdown hooks);
- :mod:`~services.runtime.errors` and :mod:`~services.runtime.interceptors`: domain errors and
  the interceptors that log calls, validate requests and map errors to rich gRPC statuses;
- :mod:`~services.runtime.paging`: opaque keyset page tokens and page sizes for List RPCs;
- :mod:`~services.runtime.entrypoint`: ``run(main)`` for ``python -m services.<name>``.

A service's ``__main__`` in outline::

    async def main() -> None:
        settings = Settings.from_env("orders", grpc_port=50051, upstreams=("inventory",))
        configure_logging(settings.service_name, settings.log_level)
        server = ServiceServer.from_settings(settings)
        server.add_service(
            orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
            OrderServicer(...),
            orders_pb2_grpc.add_OrderServiceServicer_to_server,
        )
        # Hooks run after in-flight RPCs drained, in this order.
        server.on_shutdown("consumers", subscription.stop)
        server.on_shutdown("outbox", relay.flush)
        server.on_shutdown("broker", broker.close)
        server.on_shutdown("database", engine.dispose)
        async with server:                      # setup + start; health NOT_SERVING
            await migrate(engine)
            await server.mark_ready("database")
            await broker.connect()
            await server.mark_ready("broker")   # now SERVING
            await server.serve()                # until SIGTERM/SIGINT, then graceful stop

    run(main)  # config error -> one line on stderr, exit 2
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
from services.runtime.logging import configure_logging, get_logger, log_fields
from services.runtime.paging import decode_page_token, encode_page_token, page_size
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
    "decode_page_token",
    "encode_page_token",
    "get_logger",
    "log_fields",
    "page_size",
    "run",
    "validate",
]
