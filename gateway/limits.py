"""Per-address rate limiting of POSTs, and CORS for the API.

The limiter lives in each gateway process: with several gateway replicas a client gets the
limit at each of them. That is enough to stop a script hammering the booking endpoints; a shared
limiter (Redis) would be the next step if the clinic ever runs many gateways.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


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

    def check(self, client: str) -> float:
        """0 if ``client`` may go ahead (and counts it), else the seconds until it may."""
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
                bucket.tokens -= 1
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
