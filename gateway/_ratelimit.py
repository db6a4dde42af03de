"""Per-caller token buckets: in memory, or in Redis so every gateway instance shares them.

If Redis cannot be reached the limiter lets requests through (and logs a warning): the
limiter protects the services, and its own outage must not become an API outage.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; a request takes one.
An empty bucket answers 429 RESOURCE_EXHAUSTED with ``Retry-After`` (whole seconds until a
token is back). The Redis variant runs refill-and-take as one Lua script, so concurrent
instances never both spend the last token, and uses Redis's clock, so instances need not agree
on time.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import redis
import redis.asyncio

from services.runtime import get_logger

__all__ = ["MemoryLimiter", "RateLimiter", "RedisLimiter"]

_log = get_logger(__name__)

_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RateLimiter(Protocol):
    """Takes one token for ``identity``: (allowed, seconds until a token is back)."""

    async def take(self, identity: str) -> tuple[bool, float]:
        """Take a token."""
        ...


class MemoryLimiter:
    """Token buckets in this process."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, identity: str) -> tuple[bool, float]:
        """Take a token from ``identity``'s bucket."""
        now = time.monotonic()
        tokens, last = self._buckets.get(identity, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1:
            self._buckets[identity] = (tokens - 1, now)
            return True, 0.0
        self._buckets[identity] = (tokens, now)
        return False, (1 - tokens) / self._rate


class RedisLimiter:
    """Token buckets in Redis, shared by every instance using the same ``prefix``."""

    def __init__(
        self, client: redis.asyncio.Redis, rate: float, burst: int, *, prefix: str = "gw:rl:"
    ) -> None:
        self._client, self._rate, self._burst, self._prefix = client, rate, burst, prefix
        self._script = client.register_script(_SCRIPT)

    async def take(self, identity: str) -> tuple[bool, float]:
        """Take a token atomically on the Redis server; allow when Redis is unreachable."""
        try:
            allowed, wait = await self._script(
                keys=[self._prefix + identity], args=[self._rate, self._burst]
            )
        except (redis.RedisError, OSError) as exc:
            # Fail open: an outage of the limiter's store must not become an API outage.
            _log.warning("gateway.ratelimit_unavailable", error=str(exc))
            return True, 0.0
        return int(allowed) == 1, float(wait)


def retry_after(wait: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
