"""Prometheus metrics: the series API.md lists, and the exporter of each service process.

Counters and histograms live in this process's default registry. Gauges that describe a
database (the outbox backlog, pending notifications, live holds) are read at scrape time by a
collector, so several processes of one service all report the same value: query them with
``max``. ``METRICS_PORT`` (0 or unset: off) is where a service process serves ``/metrics``;
several processes of one service on one host each need their own port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("clinic_http_requests", "HTTP requests answered by the gateway",
                        ["route", "method", "status"])
HTTP_DURATION = Histogram("clinic_http_request_duration_seconds",
                          "Time the gateway took to answer, by route template", ["route"])
RPC_DURATION = Histogram("clinic_rpc_duration_seconds",
                         "Time an RPC took in the service that answered it",
                         ["service", "method"])
BOOKINGS = Counter("clinic_bookings", "Booking changes answered, by kind", ["kind"])

# The booking service's RPC methods that change bookings, and the kind each counts as.
BOOKING_KINDS = {
    "create_booking": "session",
    "create_course": "course",
    "reschedule_booking": "reschedule",
    "cancel_booking": "cancellation",
    "cancel_course": "course_cancellation",
}

# A function from the service's unit of work to the metric families it reads from its database.
Gauges = Callable[[object], Iterable[Metric]]


class DatabaseCollector(Collector):
    """Reads a service's database gauges at scrape time; a failed read leaves them out (the
    scrape still answers, and the alert on a missing series or a not-ready service fires)."""

    def __init__(self, gauges: Gauges):
        self.gauges = gauges
        self.database = None  # the latest container's Database provider (ServiceMetrics.setup)

    def collect(self) -> Iterable[Metric]:
        unit_of_work = getattr(self.database, "unit_of_work", None)
        if unit_of_work is None:
            return []
        try:
            return list(self.gauges(unit_of_work))
        except Exception as error:
            log.warning("database gauges not read: %s", error)
            return []


_collectors: dict[str, DatabaseCollector] = {}
_exporters: dict[int, bool] = {}


def start_exporter(port: int, host: str = "0.0.0.0") -> bool:
    """Serve this process's registry on ``port`` once; False (logged) if it could not be."""
    if port <= 0:
        return False
    if port in _exporters:
        return _exporters[port]
    try:
        start_http_server(port, addr=host)
        _exporters[port] = True
        log.info("metrics on port %s", port)
    except OSError as error:  # port taken: the service runs on without its metrics
        log.error("metrics exporter not started on port %s: %s", port, error)
        _exporters[port] = False
    return _exporters[port]


def metrics_port(config) -> int:
    try:
        return int(str(config.get("METRICS_PORT") or 0).strip() or 0)
    except ValueError:
        log.error("METRICS_PORT is not a number: %r", config.get("METRICS_PORT"))
        return 0


class ServiceMetrics(DependencyProvider):
    """Times every RPC, counts booking changes, serves ``/metrics`` on ``METRICS_PORT`` and
    (given ``gauges``) reads the service's database gauges at each scrape."""

    def __init__(self, gauges: Gauges | None = None, database_attr: str = "db"):
        self.gauges = gauges
        self.database_attr = database_attr

    def setup(self) -> None:
        self._started: dict[int, float] = {}
        if self.gauges is not None:
            name = self.container.service_name
            if name not in _collectors:
                _collectors[name] = DatabaseCollector(self.gauges)
                REGISTRY.register(_collectors[name])
            provider = next(d for d in self.container.dependencies
                            if getattr(d, "attr_name", None) == self.database_attr)
            _collectors[name].database = provider

    def start(self) -> None:
        host = str(self.container.config.get("METRICS_HOST") or "0.0.0.0")
        start_exporter(metrics_port(self.container.config), host)

    def worker_setup(self, worker_ctx) -> None:
        self._started[id(worker_ctx)] = time.monotonic()

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        began = self._started.pop(id(worker_ctx), None)
        if not isinstance(worker_ctx.entrypoint, Rpc) or began is None:
            return
        method = worker_ctx.entrypoint.method_name
        RPC_DURATION.labels(worker_ctx.service_name, method).observe(time.monotonic() - began)
        if worker_ctx.service_name == "booking" and exc_info is None and method in BOOKING_KINDS:
            BOOKINGS.labels(BOOKING_KINDS[method]).inc()

    def worker_teardown(self, worker_ctx) -> None:
        self._started.pop(id(worker_ctx), None)
