"""Shared by the service tests: isolated broker URLs, in-process services, gRPC helpers."""

from __future__ import annotations

import contextlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aio_pika
from google.rpc import error_details_pb2, status_pb2

from services.common.bootstrap import running
from tests.support.names import local_rabbitmq_queues, unique_hex

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import grpc

    from services.common.bootstrap import Blueprint, Running

RABBIT = "amqp://guest:guest@127.0.0.1:5672/"
STOMP = "stomp://127.0.0.1:61613"


def isolated_broker_url(base: str = RABBIT) -> tuple[str, str]:
    """``base`` with its own exchange and queue prefix, so concurrent runs on one RabbitMQ
    never see each other's events; returns (url, prefix)."""
    prefix = f"t{unique_hex()}"
    if base.startswith("amqp"):
        separator = "&" if "?" in base else "?"
        url = f"{base}{separator}exchange={prefix}.events&prefix={prefix}&queue_type=classic"
        return url, prefix
    return base, prefix


async def delete_rabbit_topology(prefix: str) -> None:
    """Delete every queue under ``prefix`` (groups, dead-letter and retry queues, whatever
    policy declared them) and its exchange: what an isolated run declared (best effort)."""
    names = [n for n in local_rabbitmq_queues() if n.startswith(f"{prefix}.")]
    connection = await aio_pika.connect(RABBIT)
    async with connection:
        for name in names:
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        channel = await connection.channel()
        with contextlib.suppress(Exception):
            await channel.exchange_delete(f"{prefix}.events")


@asynccontextmanager
async def in_process(
    blueprint: Blueprint, *, broker_url: str, database_url: str, **env: str
) -> AsyncIterator[Running]:
    """``blueprint`` running in this process on a free loopback port."""
    environ = {
        "BROKER_URL": broker_url,
        "DATABASE_URL": database_url,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": "0",
        "LOG_LEVEL": "warning",
        "OTEL_SDK_DISABLED": "true",
        "SHUTDOWN_GRACE": "2",
        **env,
    }
    async with running(blueprint, environ) as service:
        yield service
        await service.server.stop()


def status_details(error: grpc.aio.AioRpcError) -> list[Any]:
    """The ``google.rpc`` detail messages of a failed call, unpacked."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            details = []
            for packed in status.details:
                for kind in (
                    error_details_pb2.BadRequest,
                    error_details_pb2.PreconditionFailure,
                    error_details_pb2.ResourceInfo,
                ):
                    if packed.Is(kind.DESCRIPTOR):
                        message = kind()
                        packed.Unpack(message)
                        details.append(message)
            return details
    return []
