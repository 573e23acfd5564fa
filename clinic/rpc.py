"""RPC between our services with a deadline: a call that is not answered in time is a 503.

The first caller (the gateway, answering an HTTP request) gives each call a deadline and sends
it along in nameko's context data, so every hop after it shares the same end: booking's call to
availability gets only what is left of the gateway's time, and ``clinic.db`` refuses to commit
a change after it (the caller has already been told 503, so the change must not happen).
Deadlines are wall-clock instants; our processes share one clock (one host, or NTP).
"""

from __future__ import annotations

import time
from typing import Any

import eventlet
from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy

from clinic.errors import ServiceUnavailable

DEADLINE = "deadline"  # key in nameko's context data: epoch seconds
DEFAULT_TIMEOUT = 10.0

# The broker gone or going: a publish that cannot be made, a connection that dropped.
BROKER_ERRORS = (OSError, KombuError, AMQPError)


def deadline_of(worker_ctx) -> float | None:
    """The deadline this worker inherited from its caller, if any."""
    value = worker_ctx.data.get(DEADLINE)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def out_of_time(service: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"The {service} service did not answer in time.",
                              {"service": service})


class ServiceClient:
    """Calls one service; each call is bounded by ``timeout`` and by the inherited deadline."""

    def __init__(self, proxy, worker_ctx, service: str, timeout: float):
        self._proxy = proxy
        self._worker_ctx = worker_ctx
        self.service = service
        self.timeout = timeout

    def call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        # One deadline per worker (an HTTP request, or an RPC with its caller's): the first call
        # of a worker that inherited none sets it, and every later call shares what is left, so
        # several calls in sequence never outlast one ``timeout`` between them.
        deadline = deadline_of(self._worker_ctx)
        if deadline is None:
            deadline = time.time() + self.timeout
            self._worker_ctx.data[DEADLINE] = deadline
        seconds = min(timeout or self.timeout, deadline - time.time())
        if seconds <= 0:
            raise out_of_time(self.service)
        bound = eventlet.Timeout(seconds)
        try:
            # Publishing is inside the bound too: with the broker down, nameko's publisher
            # retries for longer than any caller should wait.
            return getattr(self._proxy, method).call_async(*args, **kwargs).result()
        except eventlet.Timeout as expired:
            if expired is not bound:  # an outer caller's bound: theirs to handle
                raise
            raise out_of_time(self.service) from None
        except (UnknownService, *BROKER_ERRORS):
            raise out_of_time(self.service) from None
        finally:
            bound.cancel()

    def __getattr__(self, method: str):
        return lambda *args, **kwargs: self.call(method, *args, **kwargs)


class ServiceRpc(RpcProxy):
    """nameko's RpcProxy, handing the worker a ``ServiceClient`` (``RPC_TIMEOUT_SECONDS``)."""

    def get_dependency(self, worker_ctx) -> ServiceClient:
        timeout = float(self.container.config.get("RPC_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT)
        return ServiceClient(super().get_dependency(worker_ctx), worker_ctx, self.target_service,
                             timeout)
