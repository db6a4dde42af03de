"""gRPC channels from one process to another inside the system (service to service, gateway
to upstream), all with the same options.

Upstreams are cluster-internal (loopback, a VPC, Cloud Map names), so the reconnect backoff is
capped at half a second: after an upstream restarts, calls reach it again that quickly instead
of after gRPC's default exponential backoff, which grows to two minutes over a long outage and
keeps failing calls fast with the last connection error until its timer fires.
"""

from __future__ import annotations

import grpc

__all__ = ["CHANNEL_OPTIONS", "upstream_channel"]

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.enable_retries", 1),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 500),
)


def upstream_channel(address: str) -> grpc.aio.Channel:
    """An insecure ``grpc.aio`` channel to ``address`` (``host:port``) with
    :data:`CHANNEL_OPTIONS`; ``Telemetry.trace_channel`` adds CLIENT spans."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
