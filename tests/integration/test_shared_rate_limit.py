"""The rate limiter shared through Redis (REDIS_URL): every gateway process spends one bucket.

Runs against the Redis on this machine (``CLINIC_TEST_REDIS_URL``, default 127.0.0.1:6379), under
a key prefix of its own, deleted afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from gateway.limits import RedisRateLimiter, make_limiter

REDIS_URL = os.environ.get("CLINIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix():
    prefix = f"clinic-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_two_limiters_on_one_redis_share_each_clients_bucket(prefix):
    first = make_limiter("posts", 3, REDIS_URL, prefix)
    second = make_limiter("posts", 3, REDIS_URL, prefix)  # another gateway process
    assert isinstance(first, RedisRateLimiter)
    assert [first.check("198.51.100.7"), second.check("198.51.100.7"),
            first.check("198.51.100.7")] == [0, 0, 0]
    wait = second.check("198.51.100.7")
    assert 0 < wait <= 20  # 3 a minute: one token every 20 s
    assert first.check("198.51.100.8") == 0  # another client has its own bucket
    assert second.check("198.51.100.7", cost=0) > 0  # looking spends nothing, still empty
    other = make_limiter("searches", 3, REDIS_URL, prefix)  # another limit: its own bucket
    assert other.check("198.51.100.7") == 0


def test_a_redis_that_does_not_answer_lets_requests_through(prefix, caplog):
    away = make_limiter("posts", 1, "redis://127.0.0.1:1/0", prefix)  # nothing listens on 1
    assert [away.check("198.51.100.9") for _ in range(3)] == [0, 0, 0]
    assert "Redis unavailable" in caplog.text
