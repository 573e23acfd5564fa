"""The notifications database's gauges, read at each scrape (see ``clinic.metrics``)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select

from clinic.db import UnitOfWork
from services.notifications.models import notifications


def notification_gauges(uow: UnitOfWork) -> Iterator[Metric]:
    with uow.reading() as session:
        counts = dict(session.execute(
            select(notifications.c.status, func.count())
            .where(notifications.c.status.in_(("pending", "failed")))
            .group_by(notifications.c.status)).all())
    yield GaugeMetricFamily("clinic_notifications_pending", "Messages waiting to be sent",
                            value=counts.get("pending", 0))
    # Failed rows stay failed (until the retention clean-up), so their count only grows.
    yield CounterMetricFamily("clinic_notifications_failed", "Messages given up after the "
                              "last attempt", value=counts.get("failed", 0))
