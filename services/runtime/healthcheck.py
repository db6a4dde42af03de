"""``python -m services.runtime.healthcheck``: exit 0 when this container's process is healthy.

Container health probes (Docker HEALTHCHECK, ECS health checks) run it inside the container: a
service is asked over the standard gRPC health protocol on ``GRPC_PORT``; the gateway
(``SERVICE_NAME=gateway``) on ``GET /healthz`` at ``GATEWAY_PORT``.
"""

from __future__ import annotations

import asyncio
import os
import sys

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["healthy"]


async def healthy(environ: dict[str, str] | None = None, *, timeout: float = 2.0) -> bool:
    env = os.environ if environ is None else environ
    if env.get("SERVICE_NAME") == "gateway":
        port = env.get("GATEWAY_PORT", "8080")
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.get(f"http://127.0.0.1:{port}/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == httpx.codes.OK
    port = env.get("GRPC_PORT", "50051")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(healthy()) else 1)
