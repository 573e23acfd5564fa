"""One deadline per request: RPCs made one after another share it, with no broker."""

from __future__ import annotations

import time
from types import SimpleNamespace

import eventlet
import pytest

from clinic.errors import ServiceUnavailable
from clinic.rpc import DEADLINE, ServiceClient


class SlowService:
    """A proxy whose every method answers "pong" after ``seconds`` (a fake of nameko's)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.calls = 0

    def __getattr__(self, method: str):
        def call_async(*args, **kwargs):
            self.calls += 1
            return SimpleNamespace(result=lambda: eventlet.sleep(self.seconds) or "pong")
        return SimpleNamespace(call_async=call_async)


def test_calls_in_sequence_share_the_first_calls_deadline():
    worker_ctx = SimpleNamespace(data={})
    service = SlowService(0.2)
    booking = ServiceClient(service, worker_ctx, "booking", timeout=0.5)
    availability = ServiceClient(service, worker_ctx, "availability", timeout=0.5)
    started = time.time()
    assert booking.ping() == "pong"
    deadline = worker_ctx.data[DEADLINE]
    assert availability.ping() == "pong"  # 0.4 s spent of the request's 0.5
    with pytest.raises(ServiceUnavailable):
        booking.ping()  # would end at 0.6 s: past the one deadline
    assert worker_ctx.data[DEADLINE] == deadline  # never moved on
    assert time.time() - started < 0.5 + 0.1


def test_an_inherited_deadline_bounds_every_call():
    worker_ctx = SimpleNamespace(data={DEADLINE: time.time() + 0.3})
    client = ServiceClient(SlowService(0.2), worker_ctx, "availability", timeout=10)
    assert client.ping() == "pong"
    with pytest.raises(ServiceUnavailable):
        client.ping()


def test_a_call_may_ask_for_less_than_the_request_has_left():
    worker_ctx = SimpleNamespace(data={})
    client = ServiceClient(SlowService(0.3), worker_ctx, "notifications", timeout=10)
    with pytest.raises(ServiceUnavailable):
        client.call("ping", timeout=0.1)
    assert worker_ctx.data[DEADLINE] > time.time() + 9  # the request's own time is untouched
