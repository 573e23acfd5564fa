"""The service's database work: known sessions, the delivery log, claiming what is due.

Every function takes the caller's SQLAlchemy session, so the service decides the transaction:
an event's sessions, its notices and its ``processed_events`` row commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from clinic import privacy
from clinic.ical import instant
from clinic.sql import upsert
from clinic.wire import utc
from services.notifications import notices as notice_rules
from services.notifications import schedule
from services.notifications.models import notifications, sessions
from services.notifications.notices import Notice

BOOKING_EVENTS = ("booking_confirmed", "booking_rescheduled", "booking_cancelled")
COURSE_EVENTS = ("course_booked", "course_cancelled")


# ---- sessions known from booking events -------------------------------------------------


def upsert_session(session: Session, booking: dict[str, Any], now: datetime) -> bool:
    """Store ``booking`` unless a newer sequence is already known; True if it was applied."""
    start, end = utc(instant(booking["start"])), utc(instant(booking["end"]))
    statement = upsert(session, sessions).values(
        booking_id=booking["id"], course_id=booking.get("course_id"),
        therapist_id=booking["therapist_id"], start=start, end=end, status=booking["status"],
        sequence=int(booking.get("sequence") or 0), scheduled_at=utc(now), booking=booking)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["booking_id"],
        set_={"course_id": new.course_id, "therapist_id": new.therapist_id,
              "start": new.start, "end": new.end, "status": new.status,
              "sequence": new.sequence, "booking": new.booking,
              # the reminder window counts from when the session got its current time
              "scheduled_at": case((sessions.c.start == new.start, sessions.c.scheduled_at),
                                   else_=new.scheduled_at)},
        where=sessions.c.sequence <= new.sequence)
    return session.execute(statement).rowcount == 1


def _known(row) -> schedule.KnownSession:
    return schedule.KnownSession(
        booking_id=row.booking_id, course_id=row.course_id, therapist_id=row.therapist_id,
        start=utc(row.start), end=utc(row.end), status=row.status,
        scheduled_at=utc(row.scheduled_at), booking=row.booking)


def course_sessions(session: Session, course_id: str) -> list[schedule.KnownSession]:
    rows = session.execute(select(sessions).where(sessions.c.course_id == course_id)).all()
    return [_known(row) for row in rows]


def course_context(session: Session, course_id: str | None) -> dict[str, Any] | None:
    if not course_id:
        return None
    return schedule.course_summary(course_id, course_sessions(session, course_id))


CONFIRMATIONS = ("booking_confirmed", "course_booked")
NOTICES_PER_INSERT = 200  # 13 parameters each: well inside SQLite's and PostgreSQL's limits


def apply_event(session: Session, event: dict[str, Any], now: datetime,
                request_id: str | None = None) -> int:
    """Record what a booking event says and the notices it calls for; returns how many."""
    data = event["data"]
    if event["type"] == "outside_conflict_found":
        known = session.execute(select(sessions.c.booking)
                                .where(sessions.c.booking_id == data["booking_id"])).scalar()
        return add_notices(session, [notice_rules.outside_conflict(event, known)], now)
    if event["type"] in BOOKING_EVENTS:
        bookings = [data["booking"]]
    elif event["type"] == "course_booked":
        bookings = list(data["course"]["sessions"])
    elif event["type"] == "course_cancelled":
        bookings = list(data.get("cancelled") or [])
    else:
        return 0
    applied = [b for b in bookings if upsert_session(session, b, now)]
    if event["type"] in ("booking_rescheduled", "booking_cancelled", "course_cancelled"):
        drop_unsent_reminders(session, [b["id"] for b in applied])
    # A confirmation is news even when a later change overtook it (each event type has its
    # own queue, so a redelivered confirmation can come after the cancellation): the client
    # still hears they were booked, and its invitation's older SEQUENCE leaves their calendar
    # with the newer state. Later changes that arrive stale say nothing.
    about = bookings if event["type"] in CONFIRMATIONS else applied
    course_id = (data.get("course") or {}).get("id") or (about[0].get("course_id")
                                                         if about else None)
    found = notice_rules.for_event(event, about, course_context(session, course_id))
    return add_notices(session, found, now, request_id)


def drop_unsent_reminders(session: Session, booking_ids: list[str]) -> None:
    """A reminder not yet out for a time that no longer holds is withdrawn, not sent late."""
    if booking_ids:
        session.execute(delete(notifications).where(
            notifications.c.booking_id.in_(booking_ids),
            notifications.c.kind.in_(("reminder", "checkin_invite")),
            notifications.c.status == "pending", notifications.c.attempts == 0))


# ---- the delivery log ----------------------------------------------------------------------


def add_notices(session: Session, found: list[Notice], now: datetime,
                request_id: str | None = None) -> int:
    """Insert each notice unless its key is there already; returns how many were new."""
    rows = [{
        "dedupe_key": notice.dedupe_key, "kind": notice.kind, "channel": notice.channel,
        "recipient_role": notice.recipient_role, "recipient": notice.recipient,
        "booking_id": notice.booking_id, "course_id": notice.course_id,
        "therapist_id": notice.therapist_id, "payload": notice.payload, "status": "pending",
        "attempts": 0, "next_attempt_at": utc(now), "created_at": utc(now),
        "request_id": request_id,
    } for notice in found]
    added = 0
    # One statement for a booking's letters or a course's (a timer's many reminders in chunks,
    # within the drivers' bound parameters); its rowcount counts only the rows inserted.
    for first in range(0, len(rows), NOTICES_PER_INSERT):
        statement = upsert(session, notifications).values(
            rows[first:first + NOTICES_PER_INSERT]
        ).on_conflict_do_nothing(index_elements=["dedupe_key"])
        added += session.execute(statement).rowcount
    return added


def plan_due(session: Session, now: datetime, reminder_hours: float,
             ending_sessions: int) -> int:
    """Add the reminders and end-of-course notices due at ``now``; returns how many."""
    now = utc(now)
    lead = timedelta(hours=reminder_hours)
    upcoming = session.execute(select(sessions).where(
        sessions.c.status == "confirmed", sessions.c.start > now,
        sessions.c.start <= now + lead)).all()
    found: list[Notice] = []
    contexts: dict[str, dict[str, Any] | None] = {}
    for known in schedule.due_reminders([_known(r) for r in upcoming], now, reminder_hours):
        if known.course_id not in contexts:
            contexts[known.course_id] = course_context(session, known.course_id)
        found += notice_rules.reminder(known, contexts[known.course_id])

    noticed = select(notifications.c.course_id).where(
        notifications.c.kind == "course_ending", notifications.c.course_id.is_not(None))
    courses = session.execute(select(sessions.c.course_id).distinct().where(
        sessions.c.course_id.is_not(None), sessions.c.status == "confirmed",
        sessions.c.start > now, sessions.c.course_id.not_in(noticed))).scalars().all()
    for course_id in courses:
        known = course_sessions(session, course_id)
        if schedule.ending_notice_due(known, now, ending_sessions):
            remaining = schedule.active_in_order(known)[-ending_sessions:]
            found += notice_rules.course_ending(
                course_id, remaining, schedule.course_summary(course_id, known))
    return add_notices(session, found, now)


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    channel: str
    recipient_role: str
    recipient: str | None
    therapist_id: str
    booking_id: str | None
    course_id: str | None
    payload: dict[str, Any]
    attempts: int  # including this one
    request_id: str | None = None  # of the request that caused it (none for reminders)


def claim_due(session: Session, now: datetime, batch: int, lease: timedelta) -> list[Claimed]:
    """Take up to ``batch`` due rows for sending: the attempt is counted and the row is hidden
    from other senders for ``lease`` (if this process dies mid-send, it is tried again then)."""
    now = utc(now)
    due = (select(notifications.c.id).where(notifications.c.status == "pending",
                                            notifications.c.next_attempt_at <= now)
           .order_by(notifications.c.next_attempt_at, notifications.c.id).limit(batch)
           .with_for_update(skip_locked=True))
    # One statement takes them all: the rows it updates are the ones the locked subquery chose
    # (on SQLite the write lock stands in for FOR UPDATE), and RETURNING gives them back with
    # the attempt already counted.
    rows = session.execute(
        update(notifications).where(notifications.c.id.in_(due.scalar_subquery()))
        .values(attempts=notifications.c.attempts + 1, next_attempt_at=now + lease)
        .returning(*notifications.c)).all()
    return [Claimed(row.id, row.kind, row.channel, row.recipient_role, row.recipient,
                    row.therapist_id, row.booking_id, row.course_id, row.payload, row.attempts,
                    row.request_id) for row in sorted(rows, key=lambda row: row.id)]


def renew_claim(session: Session, claimed: Claimed, now: datetime, lease: timedelta) -> bool:
    """Just before sending one claimed row: a fresh lease, so the rows late in a slow batch
    are not taken by another sender meanwhile. False if another sender has claimed it since
    (its claim counted another attempt): it is theirs to send."""
    return session.execute(update(notifications).where(
        notifications.c.id == claimed.id, notifications.c.status == "pending",
        notifications.c.attempts == claimed.attempts).values(
        next_attempt_at=utc(now) + lease)).rowcount == 1


def mark_sent(session: Session, notification_id: int, recipient: str | None,
              now: datetime) -> None:
    values: dict[str, Any] = {"status": "sent", "sent_at": utc(now), "last_error": None}
    if recipient:
        values["recipient"] = recipient
    session.execute(update(notifications).where(notifications.c.id == notification_id)
                    .values(**values))


def mark_failed_attempt(session: Session, claimed: Claimed, error: str, now: datetime,
                        max_attempts: int, retry_seconds: float) -> None:
    """Try again after a doubling pause, or give up (``failed``) after ``max_attempts``."""
    values: dict[str, Any] = {"last_error": error[:2000]}
    if claimed.attempts >= max_attempts:
        values["status"] = "failed"
    else:
        pause = min(retry_seconds * 2 ** (claimed.attempts - 1), 6 * 3600)
        values["next_attempt_at"] = utc(now) + timedelta(seconds=pause)
    session.execute(update(notifications).where(notifications.c.id == claimed.id)
                    .values(**values))


def therapist_of(session: Session, booking_id: str | None, course_id: str | None) -> str | None:
    """Whose booking or course this is, from the sessions (or, failing that, the log)."""
    where = (sessions.c.booking_id == booking_id if booking_id
             else sessions.c.course_id == course_id)
    found = session.execute(select(sessions.c.therapist_id).where(where).limit(1)).scalar()
    if found is None:
        column = (notifications.c.booking_id if booking_id else notifications.c.course_id)
        found = session.execute(select(notifications.c.therapist_id)
                                .where(column == (booking_id or course_id)).limit(1)).scalar()
    return found


def listing(session: Session, booking_id: str | None, course_id: str | None,
            limit: int = 500, recipient: str | None = None) -> list[dict[str, Any]]:
    """The log, oldest first. A booking's listing includes its course's own messages; with
    ``recipient``, the messages sent to that address (a client's export)."""
    query = select(notifications)
    if recipient:
        query = query.where(func.lower(notifications.c.recipient) == recipient.strip().lower())
    if booking_id:
        course = session.execute(select(sessions.c.course_id)
                                 .where(sessions.c.booking_id == booking_id)).scalar()
        matches = notifications.c.booking_id == booking_id
        if course:
            matches = or_(matches, and_(notifications.c.course_id == course,
                                        notifications.c.booking_id.is_(None)))
        query = query.where(matches)
    if course_id:
        query = query.where(notifications.c.course_id == course_id)
    rows = session.execute(query.order_by(notifications.c.id).limit(limit)).all()
    return [{
        "id": str(row.id), "kind": row.kind, "channel": row.channel,
        "recipient": row.recipient or f"therapist:{row.therapist_id}",
        "status": row.status, "attempts": row.attempts,
        "created_at": utc(row.created_at).isoformat(),
        "sent_at": utc(row.sent_at).isoformat() if row.sent_at else None,
        "booking_id": row.booking_id, "course_id": row.course_id,
        "last_error": row.last_error,
    } for row in rows]


def drop_sent_bodies(session: Session, sent_before: datetime, limit: int = 500) -> int:
    """A sent message's payload (who and what it was about) goes after MESSAGE_RETENTION_DAYS;
    its delivery record (kind, recipient role, status, times) stays."""
    rows = session.execute(select(notifications.c.id, notifications.c.payload).where(
        notifications.c.status == "sent", notifications.c.sent_at < sent_before)
        .order_by(notifications.c.id)).all()
    dropped = [row_id for row_id, payload in rows if payload][:limit]
    if dropped:
        session.execute(update(notifications).where(notifications.c.id.in_(dropped))
                        .values(payload={}))
    return len(dropped)


# --- erasure (the booking service's client_erased event) ------------------------------------

def erase_client(session: Session, booking_ids: list[str], course_ids: list[str]) -> int:
    """Forget the client of these bookings and courses: their sessions' stored booking and
    every message's payload lose the client, client messages lose their recipient, and those
    not yet sent never will be. Delivery records (kind, status, times) stay. Idempotent."""
    mine = or_(sessions.c.booking_id.in_(booking_ids), sessions.c.course_id.in_(course_ids))
    for booking_id, booking in session.execute(select(sessions.c.booking_id, sessions.c.booking)
                                               .where(mine)).all():
        session.execute(update(sessions).where(sessions.c.booking_id == booking_id).values(
            booking=privacy.scrub({"booking": booking}, privacy.anyone)["booking"]))
    theirs = or_(notifications.c.booking_id.in_(booking_ids),
                 notifications.c.course_id.in_(course_ids))
    rows = session.execute(select(notifications.c.id, notifications.c.payload,
                                  notifications.c.recipient_role).where(theirs)).all()
    for row_id, payload, role in rows:
        values: dict[str, Any] = {"payload": privacy.scrub(payload, privacy.anyone)}
        if role == "client":
            values["recipient"] = None
        session.execute(update(notifications).where(notifications.c.id == row_id).values(**values))
    session.execute(update(notifications).where(
        theirs, notifications.c.recipient_role == "client", notifications.c.status == "pending")
        .values(status="failed", last_error="the client was erased"))
    return len(rows)
