"""GET response cache with a TTL per RPC, and ETags on every JSON GET response.

Only successful (200) responses of GET routes whose RPC matches a configured pattern are
stored, for that pattern's TTL. The key includes the caller's identity, so an authenticated
response is never served to another key. ``ETag`` is a hash of the body; a request whose
``If-None-Match`` names it gets ``304 Not Modified`` without a body. Storage is this process's
memory or Redis (shared by every instance); a Redis outage is a cache miss, never an error.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from typing import Protocol

import redis
import redis.asyncio

from services.runtime import get_logger

__all__ = [
    "CacheStore",
    "MemoryCache",
    "RedisCache",
    "cache_key",
    "etag",
    "etag_matches",
    "ttl_for",
]


_log = get_logger(__name__)


def etag(body: bytes) -> str:
    """A strong ETag for ``body``."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(header: str | None, tag: str) -> bool:
    """True when ``If-None-Match`` names ``tag`` (or is ``*``); weak tags compare equal."""
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or tag in candidates


def ttl_for(rpc: str, ttls: tuple[tuple[str, float], ...]) -> float | None:
    """The TTL of the first pattern matching ``rpc``, or None when it is not cached."""
    return next((ttl for pattern, ttl in ttls if fnmatch.fnmatchcase(rpc, pattern)), None)


def cache_key(identity: str, path: str, query: str) -> str:
    """Caller identity + path + query string, hashed to a fixed-length key."""
    return hashlib.sha256(f"{identity}\n{path}\n{query}".encode()).hexdigest()


class CacheStore(Protocol):
    """Where cached bodies live."""

    async def get(self, key: str) -> bytes | None:
        """The body stored under ``key``, or None."""
        ...

    async def put(self, key: str, body: bytes, ttl: float) -> None:
        """Store ``body`` for ``ttl`` seconds."""
        ...


class MemoryCache:
    """Cache in this process, bounded in entries (oldest evicted first)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._max = max_entries

    async def get(self, key: str) -> bytes | None:
        """The live body, dropping an expired one."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    async def put(self, key: str, body: bytes, ttl: float) -> None:
        """Store, evicting the oldest entry when full."""
        if len(self._entries) >= self._max and key not in self._entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (time.monotonic() + ttl, body)


class RedisCache:
    """Cache in Redis with per-entry expiry (``SET ... PX``)."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "gw:cache:") -> None:
        self._client, self._prefix = client, prefix

    async def get(self, key: str) -> bytes | None:
        """The body, or None when absent, expired or Redis is unreachable (a miss)."""
        try:
            value = await self._client.get(self._prefix + key)
        except (redis.RedisError, OSError) as exc:
            _log.warning("gateway.cache_unavailable", error=str(exc))
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, body: bytes, ttl: float) -> None:
        """Store with Redis-side expiry; skipped when Redis is unreachable."""
        try:
            await self._client.set(self._prefix + key, body, px=max(1, int(ttl * 1000)))
        except (redis.RedisError, OSError) as exc:
            _log.warning("gateway.cache_unavailable", error=str(exc))
