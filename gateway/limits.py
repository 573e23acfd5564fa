"""Per-address rate limiting, and CORS for the API.

A limiter is a token bucket per client address. With ``REDIS_URL`` set the buckets live in
Redis, so every gateway process shares them (a client gets the limit once, not once per
replica); without it each process keeps its own, which is enough for one gateway.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests, refilled smoothly."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000):
        self.capacity = float(max(per_minute, 1))
        self.refill_per_second = self.capacity / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, client: str, cost: int = 1) -> float:
        """0 if ``client`` may go ahead (and counts it, ``cost`` 1; 0 only looks), else the
        seconds until it may."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._forget_full_buckets(now)
                bucket = self._buckets[client] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity,
                                bucket.tokens + (now - bucket.updated) * self.refill_per_second)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= cost
                return 0.0
            return (1 - bucket.tokens) / self.refill_per_second

    def _forget_full_buckets(self, now: float) -> None:
        # A bucket that has refilled completely holds no information: drop it.
        full_after = self.capacity / self.refill_per_second
        self._buckets = {client: bucket for client, bucket in self._buckets.items()
                         if now - bucket.updated < full_after}

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))


# One bucket's refill and take, atomically in Redis, on Redis' own clock (shared by all).
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - cost else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class RedisRateLimiter:
    """The same token bucket as ``RateLimiter``, kept in Redis under ``prefix:name:client``.

    redis-py talks over plain sockets, which eventlet's monkey patching makes cooperative; a
    Redis that does not answer within ``timeout`` lets the request through (logged), because a
    limiter must not take the clinic down with it.
    """

    def __init__(self, redis_client, prefix: str, name: str, per_minute: int,
                 timeout_note_every: float = 60.0):
        self.capacity = float(max(per_minute, 1))
        self.refill_per_second = self.capacity / 60.0
        self.redis = redis_client
        self.prefix = f"{prefix}:ratelimit:{name}:"
        self._take = redis_client.register_script(_TAKE)
        self._last_note = -timeout_note_every
        self._note_every = timeout_note_every

    def check(self, client: str, cost: int = 1) -> float:
        try:
            return float(self._take(keys=[self.prefix + client],
                                    args=[self.capacity, self.refill_per_second, cost]))
        except Exception as error:  # any Redis failure: let the request through, say so
            now = time.monotonic()
            if now - self._last_note >= self._note_every:
                self._last_note = now
                log.warning("rate limiter: Redis unavailable (%s); not limiting",
                            type(error).__name__)
            return 0.0


_redis_clients: dict[str, Any] = {}  # one connection pool per Redis, shared by the limiters


def make_limiter(name: str, per_minute: int, redis_url: str = "", prefix: str = "clinic"):
    """A limiter shared through Redis when ``redis_url`` is set, else this process's own."""
    if not redis_url:
        return RateLimiter(per_minute)
    import redis

    client = _redis_clients.get(redis_url)
    if client is None:
        client = _redis_clients[redis_url] = redis.Redis.from_url(
            redis_url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30)
    return RedisRateLimiter(client, prefix, name, per_minute)


CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match"


def cors_headers(origin: str | None, allowed: tuple[str, ...], preflight: bool) -> dict[str, str]:
    """Headers that let ``origin`` call the API, or none when it is not listed."""
    if not origin or not (origin in allowed or "*" in allowed):
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
               "Access-Control-Expose-Headers": "ETag, Last-Modified, Retry-After"}
    if preflight:
        headers.update({"Access-Control-Allow-Methods": CORS_METHODS,
                        "Access-Control-Allow-Headers": CORS_HEADERS,
                        "Access-Control-Max-Age": "600"})
    return headers
