"""The booking database's gauges, read at each scrape (see ``clinic.metrics``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from clinic.db import UnitOfWork
from services.booking.models import bookings, outbox


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def booking_gauges(uow: UnitOfWork) -> Iterator[Metric]:
    now = datetime.now(UTC)
    with uow.reading() as session:
        pending, oldest = session.execute(
            select(func.count(), func.min(outbox.c.created_at))
            .where(outbox.c.published_at.is_(None))).one()
        live_holds = session.execute(
            select(func.count()).select_from(bookings)
            .where(bookings.c.status == "held", bookings.c.expires_at > now)).scalar_one()
    yield GaugeMetricFamily("clinic_outbox_pending", "Events written and not yet published",
                            value=pending)
    age = (now - _utc(oldest)).total_seconds() if oldest is not None else 0.0
    yield GaugeMetricFamily("clinic_outbox_oldest_pending_seconds",
                            "Age of the oldest unpublished event (0 when none)", value=age)
    yield GaugeMetricFamily("clinic_holds_live", "Holds not yet expired, released or booked",
                            value=live_holds)
