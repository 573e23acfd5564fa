"""Queries and writes of outside calendars; every function takes an open Session."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from services.availability.models import (
    BusyTime,
    OutsideBusy,
    OutsideCalendar,
    OutsideConflict,
    ScheduleRow,
    Therapist,
)
from services.availability.outside_calendar import BusySpan, Clash
from services.availability.repository import therapist_offer_changed


def linked(session: Session, therapist_id: str, *, lock: bool = False) -> OutsideCalendar | None:
    query = select(OutsideCalendar).where(OutsideCalendar.therapist_id == therapist_id)
    return session.scalars(query.with_for_update() if lock else query).first()


def due(session: Session, now: datetime, poll: timedelta, limit: int) -> list[str]:
    """Therapists whose calendar was never tried, or not within the last poll interval."""
    rows = session.scalars(
        select(OutsideCalendar.therapist_id)
        .where(or_(OutsideCalendar.last_attempt_at.is_(None),
                   OutsideCalendar.last_attempt_at <= now - poll))
        .order_by(OutsideCalendar.last_attempt_at.is_not(None), OutsideCalendar.last_attempt_at)
        .limit(limit))
    return list(rows)


def claim(session: Session, therapist_id: str, now: datetime, poll: timedelta) -> bool:
    """Mark the calendar as being fetched now, unless another process just did (False)."""
    result = session.execute(
        update(OutsideCalendar)
        .where(OutsideCalendar.therapist_id == therapist_id,
               or_(OutsideCalendar.last_attempt_at.is_(None),
                   OutsideCalendar.last_attempt_at <= now - poll))
        .values(last_attempt_at=now))
    return result.rowcount == 1


def zone_and_horizon(session: Session, therapist_id: str) -> tuple[str, int]:
    """The therapist's zone and how many days ahead their schedule books (default 180)."""
    zone, horizon = session.execute(
        select(Therapist.timezone, ScheduleRow.horizon_days)
        .outerjoin(ScheduleRow, ScheduleRow.therapist_id == Therapist.id)
        .where(Therapist.id == therapist_id)).one()
    return zone, horizon or 180


def busy(session: Session, therapist_id: str, start: datetime | None = None,
         end: datetime | None = None) -> list[BusySpan]:
    query = select(OutsideBusy.start, OutsideBusy.end).where(
        OutsideBusy.therapist_id == therapist_id)
    if start is not None:
        query = query.where(OutsideBusy.end > start)
    if end is not None:
        query = query.where(OutsideBusy.start < end)
    return [BusySpan(s, e) for s, e in session.execute(query.order_by(OutsideBusy.start))]


def replace_busy(session: Session, therapist_id: str, spans: list[BusySpan]) -> None:
    session.execute(delete(OutsideBusy).where(OutsideBusy.therapist_id == therapist_id))
    therapist_offer_changed(session, therapist_id)  # searches and booking's copy: stale
    if spans:
        session.execute(insert(OutsideBusy), [
            {"therapist_id": therapist_id, "start": s.start, "end": s.end} for s in spans])


def forget(session: Session, therapist_id: str) -> None:
    """Everything read from the therapist's outside calendar (the link itself stays)."""
    session.execute(delete(OutsideBusy).where(OutsideBusy.therapist_id == therapist_id))
    session.execute(delete(OutsideConflict).where(OutsideConflict.therapist_id == therapist_id))
    therapist_offer_changed(session, therapist_id)


def future_bookings(session: Session, therapist_id: str,
                    now: datetime) -> list[tuple[str, datetime, datetime]]:
    """The therapist's clinic bookings in force that have not ended, as (id, start, end)."""
    rows = session.execute(
        select(BusyTime.id, BusyTime.start, BusyTime.end)
        .where(BusyTime.therapist_id == therapist_id, BusyTime.kind == "booking",
               BusyTime.active.is_(True), BusyTime.end > now)
        .order_by(BusyTime.start))
    return [tuple(row) for row in rows]


def conflicts(session: Session, therapist_id: str) -> list[OutsideConflict]:
    return list(session.scalars(select(OutsideConflict)
                                .where(OutsideConflict.therapist_id == therapist_id)
                                .order_by(OutsideConflict.start)))


def replace_conflicts(session: Session, therapist_id: str, found: Iterable[Clash],
                      now: datetime) -> list[OutsideConflict]:
    """Keep the flags that still hold, drop the rest; returns the ones new this time."""
    found = {clash.booking_id: clash for clash in found}
    known = {row.booking_id: row for row in conflicts(session, therapist_id)}
    gone = [booking_id for booking_id in known if booking_id not in found]
    if gone:
        session.execute(delete(OutsideConflict).where(OutsideConflict.booking_id.in_(gone)))
    added = []
    for booking_id, clash in found.items():
        if booking_id in known:
            continue
        row = OutsideConflict(booking_id=booking_id, therapist_id=therapist_id,
                              start=clash.start, end=clash.end, busy_start=clash.busy.start,
                              busy_end=clash.busy.end, found_at=now)
        session.add(row)
        added.append(row)
    return added
