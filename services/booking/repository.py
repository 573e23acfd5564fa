"""The booking service's SQL: rows of holds, bookings, courses, manage tokens, Idempotency-Keys
and outbox events. Functions of a session; the use cases own the transactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from clinic.access import token_hash
from clinic.errors import NotFound
from clinic.events import Event
from clinic.outbox import record
from clinic.sql import upsert
from services.booking.models import (
    ACTIVE_STATUSES,
    audit_log,
    bookings,
    courses,
    idempotency_keys,
    manage_tokens,
    outbox,
)
from services.booking.policy import BOOKING_STATUSES

SOURCE = "booking"
# Changes that alter a therapist's calendar feed; each is followed by a ``calendar_changed``
# event that names only ids, for the gateway (which needs no client's details to drop a cache).
FEED_CHANGES = ("booking_confirmed", "booking_rescheduled", "booking_cancelled",
                "attendance_marked", "course_booked", "course_cancelled")
ROOMS_LOCK = 0x726F6F6D  # PostgreSQL advisory lock key of the clinic's rooms ("room")


def emit(session: Session, event_type: str, data: dict[str, Any]) -> None:
    """An event, written to the outbox in the change's own transaction."""
    record(session, outbox, Event(event_type, data, SOURCE))
    if event_type in FEED_CHANGES:
        subject = data.get("booking") or data.get("course") or {}
        calendar_changed(session, subject.get("therapist_id"),
                         booking_id=(data.get("booking") or {}).get("id"),
                         course_id=(data.get("course") or {}).get("id"))


def calendar_changed(session: Session, therapist_id: str | None, **ids: str | None) -> None:
    record(session, outbox, Event("calendar_changed", {"therapist_id": therapist_id, **ids},
                                  SOURCE))


# --- bookings (holds are rows of it too) ---------------------------------------------------

def booking_row(session: Session, row_id: str, statuses: tuple[str, ...] = BOOKING_STATUSES,
                what: str = "booking", for_update: bool = False) -> Mapping[str, Any]:
    """One row in one of ``statuses``, or NotFound naming ``what``."""
    return _one(session, bookings, row_id, what, for_update, bookings.c.status.in_(statuses))


def course_row(session: Session, course_id: str, for_update: bool = False) -> Mapping[str, Any]:
    return _one(session, courses, course_id, "course", for_update)


def _one(session: Session, table, row_id: str, what: str, for_update: bool,
         *where) -> Mapping[str, Any]:
    if "\x00" in str(row_id):  # not an id we could have made (nor can PostgreSQL hold it)
        raise NotFound(f"No such {what}.")
    query = select(table).where(table.c.id == str(row_id), *where)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"No such {what}.")
    return row


def course_sessions(session: Session, course_id: str) -> list[Mapping[str, Any]]:
    return list(session.execute(select(bookings).where(bookings.c.course_id == course_id)
                                .order_by(bookings.c.session_number)).mappings().all())


def insert_booking(session: Session, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """A new row: every column named (None where not given), as the views read it back."""
    row = {column.name: None for column in bookings.columns}
    row.update(values)
    session.execute(insert(bookings).values(row))
    return row


def update_booking(session: Session, row_id: str, **values: Any) -> Mapping[str, Any]:
    """Change a booking and read it back."""
    session.execute(update(bookings).where(bookings.c.id == row_id).values(**values))
    return session.execute(select(bookings).where(bookings.c.id == row_id)).mappings().one()


def insert_course(session: Session, **values: Any) -> None:
    session.execute(insert(courses).values(**values))


def update_course(session: Session, course_id: str, **values: Any) -> None:
    session.execute(update(courses).where(courses.c.id == course_id).values(**values))


def therapist_bookings(session: Session, therapist_id: str, start: datetime,
                       end: datetime | None = None) -> list[Mapping[str, Any]]:
    """A therapist's bookings (any status but holds') overlapping [start, end), or, with no
    ``end``, starting at or after ``start``."""
    span = (bookings.c.start < end, bookings.c.end > start) if end else (bookings.c.start >= start,)
    return list(session.execute(select(bookings).where(
        bookings.c.therapist_id == therapist_id, bookings.c.status.in_(BOOKING_STATUSES), *span,
    ).order_by(bookings.c.start, bookings.c.id)).mappings().all())


# --- time claims ---------------------------------------------------------------------------

def take_room_turn(session: Session) -> None:
    """On PostgreSQL, in-person claims take turns (SQLite's IMMEDIATE transactions already do)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(ROOMS_LOCK)))


def active_in_the_way(session: Session, therapist_id: str, start: datetime, end: datetime,
                      blocked_end: datetime, rooms: Iterable[str],
                      exclude: Iterable[str] = ()) -> list[Mapping[str, Any]]:
    """Active rows overlapping the therapist's blocked time or, for ``rooms``, a room's time;
    holds past their expiry included (the caller expires them)."""
    in_the_way = and_(bookings.c.therapist_id == therapist_id,
                      bookings.c.start < blocked_end, bookings.c.blocked_end > start)
    rooms = list(rooms)
    if rooms:
        in_the_way = or_(in_the_way, and_(bookings.c.room.in_(rooms), bookings.c.start < end,
                                          bookings.c.end > start))
    query = select(bookings).where(bookings.c.status.in_(ACTIVE_STATUSES), in_the_way)
    exclude = list(exclude)
    if exclude:
        query = query.where(bookings.c.id.not_in(exclude))
    return list(session.execute(query).mappings().all())


def therapist_taken(session: Session, therapist_id: str, start: datetime, blocked_end: datetime,
                    now: datetime) -> bool:
    """Whether [start, blocked_end) overlaps a live row's blocked time for this therapist."""
    query = select(bookings.c.id).where(
        bookings.c.therapist_id == therapist_id, bookings.c.status.in_(ACTIVE_STATUSES),
        or_(bookings.c.status != "held", bookings.c.expires_at > now),
        bookings.c.start < blocked_end, bookings.c.blocked_end > start).limit(1)
    return session.execute(query).first() is not None


def stale_holds(session: Session, now: datetime, limit: int) -> list[Mapping[str, Any]]:
    stale = select(bookings).where(bookings.c.status == "held", bookings.c.expires_at <= now)
    return list(session.execute(stale.limit(limit)).mappings().all())


def mark_expired(session: Session, hold_id: str, now: datetime) -> bool:
    """Expire a hold still held; the status test makes it happen once across processes."""
    return bool(session.execute(
        update(bookings).where(bookings.c.id == hold_id, bookings.c.status == "held",
                               bookings.c.expires_at <= now)  # not one extended meanwhile
        .values(status="expired", updated_at=now)).rowcount)


# --- abuse limits --------------------------------------------------------------------------

def live_holds_from(session: Session, client_address: str, now: datetime) -> int:
    return session.execute(select(func.count()).select_from(bookings).where(
        bookings.c.client_address == client_address, bookings.c.status == "held",
        bookings.c.expires_at > now)).scalar_one()


def sessions_to_come_for(session: Session, email: str, now: datetime) -> int:
    """Single sessions (not a course's) still to come, booked for ``email``."""
    return session.execute(select(func.count()).select_from(bookings).where(
        func.lower(bookings.c.client_email) == email.lower(), bookings.c.course_id.is_(None),
        bookings.c.status == "confirmed", bookings.c.start > now)).scalar_one()


def active_courses_for(session: Session, email: str, now: datetime) -> int:
    return session.execute(select(func.count()).select_from(courses).where(
        func.lower(courses.c.client_email) == email.lower(), courses.c.status == "active",
        courses.c.last_end > now)).scalar_one()


def bookings_made_by(session: Session, since: datetime, until: datetime, now: datetime,
                     client_address: str | None = None,
                     email: str | None = None) -> list[Mapping[str, Any]]:
    """Confirmed sessions still to come, made in [since, until] from one address or for one
    email (the admin's clean-up after abuse)."""
    who = (bookings.c.client_address == client_address if client_address
           else func.lower(bookings.c.client_email) == (email or "").lower())
    return list(session.execute(select(bookings).where(
        who, bookings.c.status == "confirmed", bookings.c.start > now,
        bookings.c.created_at >= since, bookings.c.created_at <= until,
    ).order_by(bookings.c.start).with_for_update()).mappings().all())


# --- manage tokens -------------------------------------------------------------------------

def insert_token(session: Session, now: datetime, hashed: str, **target: str) -> None:
    session.execute(insert(manage_tokens).values(token_hash=hashed, created_at=now, **target))


def token_hashes(session: Session, token: str, *, booking_id: str | None = None,
                 course_id: str | None = None) -> list[str]:
    """The stored hashes matching ``token`` for the booking or its course."""
    targets = []
    if booking_id:
        targets.append(manage_tokens.c.booking_id == booking_id)
    if course_id:
        targets.append(manage_tokens.c.course_id == course_id)
    return list(session.execute(select(manage_tokens.c.token_hash).where(
        manage_tokens.c.token_hash == token_hash(token), or_(*targets))).scalars())


def link_nonce(session: Session, kind: str, target_id: str, new: str) -> str:
    """The nonce of a booking's or course's emailed link; ``new`` becomes it if it has none.
    The row is locked, so concurrent first emails agree on one."""
    table = courses if kind == "course" else bookings
    row = _one(session, table, target_id, kind, True)
    if row["link_nonce"]:
        return row["link_nonce"]
    session.execute(update(table).where(table.c.id == target_id).values(link_nonce=new))
    return new


def forget_link_nonces(session: Session, booking_ids: Iterable[str],
                       course_id: str | None = None) -> None:
    session.execute(update(bookings).where(bookings.c.id.in_(list(booking_ids)))
                    .values(link_nonce=None))
    if course_id:
        session.execute(update(courses).where(courses.c.id == course_id).values(link_nonce=None))


def token_known(session: Session, token: str) -> bool:
    """Whether ``token`` is a manage token of anything (authentication, before any lookup)."""
    return session.execute(select(manage_tokens.c.id).where(
        manage_tokens.c.token_hash == token_hash(token)).limit(1)).first() is not None


def delete_tokens(session: Session, *, booking_ids: Iterable[str] = (),
                  course_id: str | None = None) -> int:
    """Every manage token of these bookings and of the course ("sign out all my links")."""
    targets = [manage_tokens.c.booking_id.in_(list(booking_ids))]
    if course_id:
        targets.append(manage_tokens.c.course_id == course_id)
    return session.execute(delete(manage_tokens).where(or_(*targets))).rowcount


# --- a client's rows (export, erasure) -----------------------------------------------------

def client_rows(session: Session, email: str) -> tuple[list[Mapping[str, Any]],
                                                        list[Mapping[str, Any]]]:
    """Every booking (holds included) and course made for ``email``, any case."""
    email = email.strip().lower()
    rows = session.execute(select(bookings).where(
        func.lower(bookings.c.client_email) == email).order_by(bookings.c.start)).mappings().all()
    course_rows = session.execute(select(courses).where(
        func.lower(courses.c.client_email) == email).order_by(courses.c.first_start)
    ).mappings().all()
    return list(rows), list(course_rows)


def erase_rows(session: Session, booking_ids: list[str], course_ids: list[str],
               columns: Mapping[str, Any]) -> None:
    """The client's columns cleared, their links and reasons gone; the times stay."""
    session.execute(update(bookings).where(bookings.c.id.in_(booking_ids)).values(
        **columns, cancel_reason=None, client_address=None, link_nonce=None))
    holds = select(bookings.c.hold_id).where(bookings.c.id.in_(booking_ids),
                                             bookings.c.hold_id.is_not(None))
    session.execute(update(bookings).where(bookings.c.id.in_(holds.scalar_subquery()))
                    .values(client_address=None))  # the holds they were made from
    session.execute(update(courses).where(courses.c.id.in_(course_ids)).values(
        **{**columns, "client_email": ""}, link_nonce=None))  # NOT NULL there
    delete_tokens(session, booking_ids=booking_ids)
    session.execute(delete(manage_tokens).where(manage_tokens.c.course_id.in_(course_ids)))


def outbox_payloads(session: Session) -> list[tuple[int, Any, datetime | None]]:
    """(seq, payload, published_at) of every outbox row (a week's worth, OUTBOX_RETENTION_DAYS)."""
    return [tuple(row) for row in session.execute(
        select(outbox.c.seq, outbox.c.payload, outbox.c.published_at))]


def set_outbox_payload(session: Session, seq: int, payload: Any) -> None:
    session.execute(update(outbox).where(outbox.c.seq == seq).values(payload=payload))


def delete_outbox_row(session: Session, seq: int) -> None:
    session.execute(delete(outbox).where(outbox.c.seq == seq))


def stored_answers(session: Session) -> list[tuple[int, Any]]:
    """(id, response) of every Idempotency-Key (a day's worth)."""
    return [tuple(row) for row in session.execute(
        select(idempotency_keys.c.id, idempotency_keys.c.response))]


def delete_key_row(session: Session, key_id: int) -> None:
    session.execute(delete(idempotency_keys).where(idempotency_keys.c.id == key_id))


# --- audit log -----------------------------------------------------------------------------

def audit(session: Session, at: datetime, actor: tuple[str, str | None], action: str,
          booking_id: str | None = None, course_id: str | None = None) -> None:
    session.execute(insert(audit_log).values(at=at, actor_kind=actor[0], actor_id=actor[1],
                                             action=action, booking_id=booking_id,
                                             course_id=course_id))


def audit_entries(session: Session, booking_id: str | None,
                  course_id: str | None) -> list[Mapping[str, Any]]:
    """A booking's entries (and its course's), or a course's (and its sessions')."""
    if booking_id:
        course = session.execute(select(bookings.c.course_id).where(
            bookings.c.id == booking_id)).scalar()
        who = or_(audit_log.c.booking_id == booking_id,
                  and_(audit_log.c.course_id == course, audit_log.c.booking_id.is_(None))
                  if course else False)
    else:
        who = audit_log.c.course_id == course_id
    return list(session.execute(select(audit_log).where(who).order_by(audit_log.c.id))
                .mappings().all())


# --- Idempotency-Keys ----------------------------------------------------------------------

def _key(scope: str, key: str):
    return and_(idempotency_keys.c.key == key, idempotency_keys.c.scope == scope)


def stored_key(session: Session, scope: str, key: str,
               newer_than: datetime | None = None) -> Mapping[str, Any] | None:
    query = select(idempotency_keys).where(_key(scope, key))
    if newer_than is not None:
        query = query.where(idempotency_keys.c.created_at > newer_than)
    return session.execute(query).mappings().first()


def insert_key(session: Session, scope: str, key: str, request_hash: str, now: datetime,
               owner: str | None = None) -> bool:
    """The key claimed for this transaction; False if it was there already (nothing written).
    On PostgreSQL a claim of the same key in a transaction not yet committed waits for it."""
    return session.execute(upsert(session, idempotency_keys).values(
        key=key, scope=scope, request_hash=request_hash, created_at=now, owner=owner)
        .on_conflict_do_nothing(index_elements=["key", "scope"])).rowcount == 1


def store_response(session: Session, scope: str, key: str, answer: dict[str, Any]) -> None:
    session.execute(update(idempotency_keys).where(_key(scope, key)).values(response=answer))


def delete_keys(session: Session, older_than: datetime, scope: str | None = None,
                key: str | None = None) -> int:
    """Keys created at or before ``older_than`` (one key, with ``scope`` and ``key``)."""
    query = delete(idempotency_keys).where(idempotency_keys.c.created_at <= older_than)
    if scope is not None and key is not None:
        query = query.where(_key(scope, key))
    return session.execute(query).rowcount
