"""What must hold after any fault, read from the databases, the SMTP server and the load's log.

Each check returns a list of problems (empty when it holds), so a failing scenario names every
broken promise at once, not only the first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from email.message import Message

import sqlalchemy as sa

from services.availability.models import BusyTime
from services.booking.models import ACTIVE_STATUSES, bookings, courses, outbox
from services.notifications.models import notifications

SUCCESS = (200, 201, 304)
# What an answer may take beyond the gateway's RPC deadline: its HTTP work before the first call
# and after the last, on a machine busy with the fault and the load.
DEADLINE_MARGIN_SECONDS = 2.0
MESSAGE_ID = re.compile(r"<notification-(\d+)@")


def rows(url: str, query) -> list[sa.Row]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(query))
    finally:
        engine.dispose()


def answers(outcomes: Iterable, window: tuple[float, float],
            deadline: float | None = None) -> list[str]:
    """Every answer is a success, or 503 service_unavailable sent inside the outage window;
    every request got an HTTP answer (the gateway never hangs up), each within ``deadline``
    (the gateway's RPC_TIMEOUT_SECONDS) + DEADLINE_MARGIN_SECONDS."""
    start, end = window
    problems = []
    for outcome in outcomes:
        took = outcome.finished - outcome.started
        if deadline is not None and outcome.status is not None and \
                took > deadline + DEADLINE_MARGIN_SECONDS:
            problems.append(f"{outcome.endpoint}: {outcome.status} after {took:.1f}s, past the "
                            f"{deadline:g}s deadline")
        if outcome.status in SUCCESS:
            continue
        during = start <= outcome.started <= end or start <= outcome.finished <= end
        if outcome.status == 503 and outcome.code == "service_unavailable" and during:
            continue
        problems.append(f"{outcome.endpoint}: {outcome.status} {outcome.code or ''} "
                        f"{outcome.error or ''} at {outcome.finished - start:+.1f}s from the "
                        f"fault{' (a re-send)' if outcome.retry else ''}")
    return problems


def no_double_booking(booking_url: str) -> list[str]:
    """No two live rows overlap for one therapist (with buffers) or one room."""
    a, b = bookings.alias("a"), bookings.alias("b")
    live = (a.c.status.in_(ACTIVE_STATUSES), b.c.status.in_(ACTIVE_STATUSES), a.c.id < b.c.id)
    therapist = rows(booking_url, sa.select(a.c.id, b.c.id).where(
        *live, a.c.therapist_id == b.c.therapist_id, a.c.start < b.c.blocked_end,
        b.c.start < a.c.blocked_end))
    room = rows(booking_url, sa.select(a.c.id, b.c.id).where(
        *live, a.c.room.is_not(None), a.c.room == b.c.room, a.c.start < b.c.end,
        b.c.start < a.c.end))
    return [f"therapist overlap {x} / {y}" for x, y in therapist] + \
        [f"room overlap {x} / {y}" for x, y in room]


def what_clients_were_told(booking_url: str, load) -> list[str]:
    """Every 201 exists, every answer is the truth, and nothing exists that nobody was told of
    (a request answered 503 either made nothing or was replayed to its client by ``settle``)."""
    problems = [f"unsettled: {post}" for post in load.unsettled]
    stored = {row.id: row.status for row in rows(booking_url, sa.select(
        bookings.c.id, bookings.c.status).where(bookings.c.therapist_id.in_(load.therapists),
                                                bookings.c.status.in_(("confirmed",
                                                                       "cancelled"))))}
    created = {o.created for o in load.outcomes if o.status == 201 and o.created}
    stored_courses = {row.id: row.status for row in rows(booking_url, sa.select(
        courses.c.id, courses.c.status))}
    problems += [f"201 for {ident} but it is not stored" for ident in created
                 if ident not in stored and ident not in stored_courses]
    problems += [f"booking {ident}: told {told}, stored {stored.get(ident)}"
                 for ident, told in load.bookings.items() if stored.get(ident) != told]
    problems += [f"booking {ident} ({status}) was never answered to a client"
                 for ident, status in stored.items() if ident not in load.bookings]
    problems += [f"course {ident}: told {told}, stored {stored_courses.get(ident)}"
                 for ident, told in load.courses.items() if stored_courses.get(ident) != told]
    return problems


def outbox_drained(booking_url: str) -> list[str]:
    pending = rows(booking_url, sa.select(sa.func.count()).select_from(outbox).where(
        outbox.c.published_at.is_(None)))[0][0]
    return [f"{pending} events not yet published"] if pending else []


def busy_times_agree(booking_url: str, availability_url: str) -> list[str]:
    """Availability's busy times are exactly the booking service's live rows."""
    truth = {row.id: (row.start, row.blocked_end, row.room) for row in rows(
        booking_url, sa.select(bookings.c.id, bookings.c.start, bookings.c.blocked_end,
                               bookings.c.room).where(bookings.c.status.in_(("confirmed",))))}
    busy = BusyTime.__table__
    seen = {row.id: (row.start, row.blocked_end, row.room) for row in rows(
        availability_url, sa.select(busy.c.id, busy.c.start, busy.c.blocked_end, busy.c.room)
        .where(busy.c.active.is_(True), busy.c.kind == "booking"))}
    problems = [f"busy time missing or stale for {ident}" for ident, when in truth.items()
                if _same(seen.get(ident)) != _same(when)]
    problems += [f"busy time {ident} has no live booking" for ident in seen if ident not in truth]
    return problems


def _same(value):
    """Instants compared in UTC whatever zone the driver gave them."""
    if value is None:
        return None
    start, end, room = value
    return (start.timestamp(), end.timestamp(), room)


def mail_once(notifications_url: str, messages: list[Message]) -> list[str]:
    """Every notification is sent, and reached the SMTP server exactly once."""
    table = rows(notifications_url, sa.select(
        notifications.c.id, notifications.c.kind, notifications.c.status,
        notifications.c.recipient_role, notifications.c.booking_id, notifications.c.course_id))
    problems = [f"notification {row.id} ({row.kind}) is {row.status}" for row in table
                if row.status != "sent"]
    arrived = Counter(int(found.group(1)) for message in messages
                      if (found := MESSAGE_ID.search(message["Message-ID"] or "")))
    problems += [f"notification {ident} arrived {count} times" for ident, count in arrived.items()
                 if count != 1]
    known = {row.id for row in table}
    problems += [f"a message for no notification: {ident}" for ident in arrived
                 if ident not in known]
    problems += [f"notification {row.id} ({row.kind}) sent but never arrived" for row in table
                 if row.status == "sent" and row.id not in arrived]
    return problems


def letters_per_change(notifications_url: str, load) -> list[str]:
    """One confirmation to the client per booking and per course, one cancellation per
    cancelled booking."""
    table = rows(notifications_url, sa.select(
        notifications.c.kind, notifications.c.booking_id, notifications.c.course_id)
        .where(notifications.c.recipient_role == "client"))
    confirmations = Counter(row.course_id if row.booking_id is None else row.booking_id
                            for row in table if row.kind == "confirmation")
    cancellations = Counter(row.booking_id for row in table if row.kind == "cancellation")
    in_courses = load.course_sessions()
    problems = []
    for ident, status in load.bookings.items():
        if ident not in in_courses and confirmations[ident] != 1:
            problems.append(f"booking {ident}: {confirmations[ident]} confirmations")
        if status == "cancelled" and cancellations[ident] != 1:
            problems.append(f"booking {ident}: {cancellations[ident]} cancellations")
    problems += [f"course {ident}: {confirmations[ident]} confirmations"
                 for ident in load.courses if confirmations[ident] != 1]
    return problems
