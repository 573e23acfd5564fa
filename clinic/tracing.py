"""Request ids: one id per HTTP request, followed through every RPC, event, log line and email.

The gateway takes the caller's ``X-Request-ID`` when it is sane (else makes one), answers with
it and puts it in nameko's context data, which nameko sends along with every RPC (as the
``nameko.request_id`` header) and hands to the worker on the other side. Events leave through
the outbox, so the outbox row keeps the id of the request that wrote it and the relay publishes
it as the same header; the notifications log row keeps it too, down to the email's header.

Inside a process the id of the worker being run is a green-thread local (``current()``), set by
the ``RequestTrace`` dependency every service declares; the logging filter reads it there.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid

from nameko.extensions import DependencyProvider

REQUEST_ID = "request_id"  # key in nameko's context data
HEADER = "X-Request-ID"
AMQP_HEADER = f"nameko.{REQUEST_ID}"  # how nameko carries context data in message headers
ENVIRON_KEY = "clinic.request_id"  # where the gateway keeps it in the WSGI environ

# Sane: what a proxy or client would plausibly send; anything else (long, spaces, control
# characters, log-injection attempts) is replaced.
_SANE = re.compile(r"^[A-Za-z0-9._:@/+=-]{8,128}$")

log = logging.getLogger("clinic.worker")

_local = threading.local()  # green-thread local once eventlet has patched threading


def new_id() -> str:
    return uuid.uuid4().hex


def accept(offered: str | None) -> str:
    """The caller's id when it is sane, else a new one."""
    return offered if offered and _SANE.match(offered) else new_id()


def current() -> str | None:
    return getattr(_local, "request_id", None)


def bind(request_id: str | None) -> None:
    """Make ``request_id`` this green thread's (``None`` clears it)."""
    _local.request_id = request_id


def of_worker(worker_ctx) -> str | None:
    value = worker_ctx.data.get(REQUEST_ID)
    return value if isinstance(value, str) and _SANE.match(value) else None


class RequestTrace(DependencyProvider):
    """Binds each worker's request id for its log lines and the rows it writes, and logs each
    RPC and event handled (timer ticks are not logged: they would drown the rest)."""

    def worker_setup(self, worker_ctx) -> None:
        bind(of_worker(worker_ctx))
        _local.started = time.monotonic()

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        kind = type(worker_ctx.entrypoint).__name__
        if kind != "Timer" and not kind.endswith("Timer"):
            elapsed = (time.monotonic() - getattr(_local, "started", time.monotonic())) * 1000
            log.info("%s %s.%s %s in %.0f ms", kind, worker_ctx.service_name,
                     worker_ctx.entrypoint.method_name, "failed" if exc_info else "done",
                     elapsed)

    def worker_teardown(self, worker_ctx) -> None:
        bind(None)

    def get_dependency(self, worker_ctx) -> str | None:
        return of_worker(worker_ctx)
