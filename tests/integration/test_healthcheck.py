"""`python -m services.runtime.healthcheck`, the container probe, against real servers."""

from __future__ import annotations

from services.runtime import create_server
from services.runtime.healthcheck import healthy
from tests.support.ports import free_port


async def test_probe_follows_the_services_health():
    """NOT_SERVING until the service is ready, SERVING after, and nothing listening fails."""
    server = await create_server("probe", address="127.0.0.1:0")
    await server.start()
    env = {"SERVICE_NAME": "probe", "GRPC_PORT": str(server.port)}
    try:
        assert await healthy(env) is False
        await server.mark_ready("database")
        await server.mark_ready("broker")
        assert await healthy(env) is True
    finally:
        await server.stop()
    assert await healthy({"GRPC_PORT": str(free_port())}, timeout=0.5) is False
    assert await healthy({"SERVICE_NAME": "gateway", "GATEWAY_PORT": str(free_port())}) is False
