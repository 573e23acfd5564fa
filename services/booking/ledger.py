"""The booking ledger: every change to holds, bookings and courses, each in one write transaction
with its outbox events. No broker in here; the service asks availability first and hands the
answer in.

Double booking is impossible because the time is claimed inside the write transaction: on
SQLite that transaction began IMMEDIATE (one writer at a time, across processes), so the overlap
query below cannot be outdated by the time the row is inserted; on PostgreSQL the same query
gives a clean answer in the common case and the exclusion constraints of migration 0002 refuse
the rest (two transactions that both saw the time free), which we turn into the same 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic.access import MANAGE_PREFIX, Caller, new_token, token_hash
from clinic.db import UnitOfWork
from clinic.errors import (
    CourseConflict,
    Forbidden,
    HoldExpired,
    IdempotencyConflict,
    InvalidRequest,
    InvalidState,
    NotFound,
    SlotUnavailable,
    Unauthorized,
)
from clinic.events import Event
from clinic.outbox import record
from services.booking import policy
from services.booking.hold_extension import extend_hold_row
from services.booking.models import (
    ACTIVE_STATUSES,
    bookings,
    courses,
    idempotency_keys,
    manage_tokens,
    outbox,
)
from services.booking.policy import as_utc, iso

SOURCE = "booking"
# Idempotency-Key scopes whose answer carries a new manage token when replayed.
CREATING_SCOPES = ("holds", "bookings", "courses")
ROOMS_LOCK = 0x726F6F6D  # PostgreSQL advisory lock key of the clinic's rooms ("room")


class _Replay(Exception):
    """Internal: the Idempotency-Key was committed by a concurrent identical request."""


def is_exclusion_violation(error: IntegrityError) -> bool:
    """PostgreSQL refused an overlapping row (sqlstate 23P01, psycopg2's ExclusionViolation)."""
    return getattr(error.orig, "pgcode", None) == "23P01"


def is_idempotency_race(error: IntegrityError) -> bool:
    """Another transaction claimed the same Idempotency-Key first (PostgreSQL blocks, then
    fails us with a unique violation once it commits)."""
    return "uq_idempotency_keys_key_scope" in str(error.orig)


@dataclass(frozen=True)
class Slot:
    """A time availability approved (``check_session``), as the ledger needs it."""

    therapist_id: str
    session_type: str
    modality: str
    start: datetime
    end: datetime
    buffer_minutes: int
    rooms: tuple[str, ...]

    @property
    def blocked_end(self) -> datetime:
        return self.end + timedelta(minutes=self.buffer_minutes)

    @classmethod
    def from_check(cls, checked: Mapping[str, Any]) -> Slot:
        return cls(therapist_id=checked["therapist_id"], session_type=checked["session_type"],
                   modality=checked["modality"],
                   start=policy.parse_instant(checked["start"], "start"),
                   end=policy.parse_instant(checked["end"], "end"),
                   buffer_minutes=int(checked.get("buffer_minutes") or 0),
                   rooms=tuple(checked.get("rooms") or ()))


def reschedule_request(booking_id: str, start: datetime) -> dict[str, Any]:
    """What an Idempotency-Key of a reschedule stands for (the service checks it before it asks
    availability, the ledger again in the transaction)."""
    return {"booking_id": booking_id, "start": iso(start)}


# --- claiming time: the one overlap query, used on both backends ---------------------------

def _live(now: datetime):
    """Rows that take time now: active statuses, minus holds already past their expiry."""
    return and_(bookings.c.status.in_(ACTIVE_STATUSES),
                or_(bookings.c.status != "held", bookings.c.expires_at > now))


def therapist_taken(session: Session, therapist_id: str, start: datetime, blocked_end: datetime,
                    now: datetime, exclude: Iterable[str] = ()) -> bool:
    """Whether [start, blocked_end) overlaps a live row's blocked time for this therapist."""
    query = select(bookings.c.id).where(
        bookings.c.therapist_id == therapist_id, _live(now),
        bookings.c.start < blocked_end, bookings.c.blocked_end > start,
        bookings.c.id.not_in(list(exclude))).limit(1)
    return session.execute(query).first() is not None


def expire_stale_holds(session: Session, now: datetime, limit: int = 500) -> int:
    """Mark holds past their expiry as expired, each with a hold_released event (the timer)."""
    stale = select(bookings).where(bookings.c.status == "held", bookings.c.expires_at <= now)
    return sum(_expire(session, now, row)
               for row in session.execute(stale.limit(limit)).mappings().all())


def claim_time(session: Session, now: datetime, *, therapist_id: str, modality: str,
               start: datetime, end: datetime, blocked_end: datetime, rooms: Iterable[str],
               exclude: Iterable[str] = (), prefer_room: str | None = None) -> str | None:
    """Check that the time is free for the therapist and pick a free room (in person).

    Returns the room (None unless in person); raises SlotUnavailable when the time is taken.
    Must run inside the write transaction that then writes the row. One query finds every
    active row in the way (the therapist's, or a candidate room's); holds among them that are
    past their expiry are expired here, with their events, and stop counting.
    """
    rooms = list(rooms) if modality == "in_person" else []
    if rooms and session.get_bind().dialect.name == "postgresql":
        # Two transactions that both saw room A free would both pick it, and the room
        # constraint would refuse the second with a 409 though room B is free: in-person
        # claims take turns instead (SQLite's IMMEDIATE transactions already do).
        session.execute(select(func.pg_advisory_xact_lock(ROOMS_LOCK)))
    in_the_way = and_(bookings.c.therapist_id == therapist_id,
                      bookings.c.start < blocked_end, bookings.c.blocked_end > start)
    if rooms:
        in_the_way = or_(in_the_way, and_(bookings.c.room.in_(rooms), bookings.c.start < end,
                                          bookings.c.end > start))
    query = select(bookings).where(bookings.c.status.in_(ACTIVE_STATUSES), in_the_way)
    exclude = list(exclude)
    if exclude:
        query = query.where(bookings.c.id.not_in(exclude))
    live = []
    for row in session.execute(query).mappings().all():
        if row["status"] == "held" and as_utc(row["expires_at"]) <= now:
            _expire(session, now, row)
        else:
            live.append(row)
    if any(row["therapist_id"] == therapist_id and as_utc(row["start"]) < blocked_end
           and as_utc(row["blocked_end"]) > start for row in live):
        raise SlotUnavailable("That time is no longer available.")
    if modality != "in_person":
        return None
    taken = {row["room"] for row in live
             if row["room"] and as_utc(row["start"]) < end and as_utc(row["end"]) > start}
    if prefer_room in rooms:
        rooms.remove(prefer_room)
        rooms.insert(0, prefer_room)
    for room in rooms:
        if room not in taken:
            return room
    raise SlotUnavailable("No room is free at that time.")


def _expire(session: Session, now: datetime, row: Mapping[str, Any]) -> bool:
    """Expire one stale hold; the status test makes it happen once across processes."""
    changed = session.execute(
        update(bookings).where(bookings.c.id == row["id"], bookings.c.status == "held",
                               bookings.c.expires_at <= now)  # not one extended meanwhile
        .values(status="expired", updated_at=now)).rowcount
    if changed:
        emit(session, "hold_released", {"hold": policy.hold_view(row), "reason": "expired"})
    return bool(changed)


def emit(session: Session, event_type: str, data: dict[str, Any]) -> None:
    record(session, outbox, Event(event_type, data, SOURCE))


# --- the ledger ----------------------------------------------------------------------------

@dataclass
class Ledger:
    """The service's changes and reads; ``now`` is the injected clock."""

    uow: UnitOfWork
    now: Callable[[], datetime]
    hold_minutes: int = 10
    cancellation_notice_hours: float = 48.0
    video_base: str = ""

    # holds

    def place_hold(self, slot: Slot, idempotency_key: str | None = None,
                   request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        now = self.now()
        hold_id = str(uuid.uuid4())
        token, hashed = new_token(MANAGE_PREFIX)
        try:
            with self.uow.transaction() as session:
                self._claim_key(session, now, "holds", idempotency_key, request or {})
                room = claim_time(session, now, therapist_id=slot.therapist_id,
                                  modality=slot.modality, start=slot.start, end=slot.end,
                                  blocked_end=slot.blocked_end, rooms=slot.rooms)
                row = self._insert_row(session, now, slot, hold_id, room, status="held",
                                       expires_at=now + timedelta(minutes=self.hold_minutes))
                self._insert_token(session, now, hashed, booking_id=hold_id)
                emit(session, "hold_placed", {"hold": policy.hold_view(row)})
                answer = {**policy.hold_view(row), "status": "held"}
                self._store_answer(session, "holds", idempotency_key, answer)
        except _Replay:
            return self.replay("holds", idempotency_key, request or {})
        except IntegrityError as error:
            if is_exclusion_violation(error):
                raise SlotUnavailable("That time is no longer available.") from None
            if idempotency_key and is_idempotency_race(error):
                return self.replay("holds", idempotency_key, request or {})
            raise
        return {**answer, "manage_token": token}

    def release_hold(self, hold_id: str, caller: Caller) -> dict[str, Any]:
        now = self.now()
        with self.uow.transaction() as session:
            row = self._row(session, hold_id, policy.HOLD_STATUSES, "hold")
            self._authorise(session, caller, row)
            if row["status"] != "held" or as_utc(row["expires_at"]) <= now:
                raise InvalidState("This hold is no longer held.")
            session.execute(update(bookings).where(bookings.c.id == hold_id)
                            .values(status="released", updated_at=now))
            emit(session, "hold_released", {"hold": policy.hold_view(row), "reason": "released"})
        return {**policy.hold_view(row), "status": "released"}

    def extend_hold(self, hold_id: str, caller: Caller) -> dict[str, Any]:
        """Another ``hold_minutes`` for a live hold, once (services/booking/hold_extension.py)."""
        now = self.now()
        with self.uow.transaction() as session:
            row = self._row(session, hold_id, policy.HOLD_STATUSES, "hold", for_update=True)
            self._authorise(session, caller, row)
            row = extend_hold_row(session, row, now, self.hold_minutes)
            emit(session, "hold_placed", {"hold": policy.hold_view(row)})
        return {**policy.hold_view(row), "status": "held"}

    def expire_holds(self) -> int:
        with self.uow.transaction() as session:
            return expire_stale_holds(session, self.now())

    # bookings

    def replay(self, scope: str, key: str, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored answer for a repeated Idempotency-Key, or None if the key is new.

        The stored answer holds no manage token (tokens are only ever stored hashed), so a
        replayed creation carries a freshly issued one for the same booking or course.
        """
        cutoff = self.now() - policy.IDEMPOTENCY_TTL
        with self.uow.reading() as session:
            row = session.execute(select(idempotency_keys).where(
                idempotency_keys.c.key == key, idempotency_keys.c.scope == scope,
                idempotency_keys.c.created_at > cutoff)).mappings().first()
        if row is None:
            return None
        if row["request_hash"] != policy.request_hash(request):
            raise IdempotencyConflict("This Idempotency-Key was used with a different request.")
        if scope not in CREATING_SCOPES:
            return row["response"]
        kind = "course" if scope == "courses" else "booking"  # a hold is a bookings row
        return {**row["response"],
                "manage_token": self.issue_manage_token(kind, row["response"]["id"])}

    def create_booking(self, request: Mapping[str, Any], slot: Slot | None,
                       idempotency_key: str | None = None) -> dict[str, Any]:
        """A confirmed booking from an approved slot, or from a live hold (``slot`` None)."""
        now = self.now()
        client = policy.require_client(request.get("client"))
        notes = policy.text(request.get("notes"), "notes")
        booking_id = str(uuid.uuid4())
        token, hashed = new_token(MANAGE_PREFIX)
        try:
            with self.uow.transaction() as session:
                self._claim_key(session, now, "bookings", idempotency_key, request)
                if request.get("hold_id"):
                    slot, room = self._convert_hold(session, now, request)
                else:
                    room = claim_time(session, now, therapist_id=slot.therapist_id,
                                      modality=slot.modality, start=slot.start, end=slot.end,
                                      blocked_end=slot.blocked_end, rooms=slot.rooms)
                row = self._insert_row(session, now, slot, booking_id, room, status="confirmed",
                                       hold_id=request.get("hold_id"),
                                       notes=notes, **client)
                self._insert_token(session, now, hashed, booking_id=booking_id)
                emit(session, "booking_confirmed", {"booking": policy.booking_view(
                    row, self.video_base)})
                answer = policy.booking_answer(row, self.video_base)
                self._store_answer(session, "bookings", idempotency_key, answer)
        except _Replay:
            return self.replay("bookings", idempotency_key, request)
        except IntegrityError as error:
            if is_exclusion_violation(error):
                raise SlotUnavailable("That time is no longer available.") from None
            if idempotency_key and is_idempotency_race(error):
                return self.replay("bookings", idempotency_key, request)
            raise
        return {**answer, "manage_token": token}

    def get_booking(self, booking_id: str, caller: Caller) -> dict[str, Any]:
        with self.uow.reading() as session:
            row = self._row(session, booking_id, policy.BOOKING_STATUSES, "booking")
            self._authorise(session, caller, row)
        return policy.booking_answer(row, self.video_base)

    def cancel_booking(self, booking_id: str, caller: Caller, reason: str | None = None,
                       idempotency_key: str | None = None) -> dict[str, Any]:
        now = self.now()
        request = {"booking_id": booking_id, "reason": reason}
        try:
            with self.uow.transaction() as session:
                row = self._row(session, booking_id, policy.BOOKING_STATUSES, "booking",
                                for_update=True)
                self._authorise(session, caller, row)
                self._claim_key(session, now, "cancel_booking", idempotency_key, request)
                if row["status"] != "confirmed":
                    raise InvalidState(
                        f"This booking is {row['status']}; it cannot be cancelled.")
                if policy.has_started(as_utc(row["start"]), now):
                    raise InvalidState("This session has already started.")
                row = self._cancel(session, now, row, caller, reason)
                emit(session, "booking_cancelled", {"booking": policy.booking_view(
                    row, self.video_base)})
                answer = policy.booking_answer(row, self.video_base)
                self._store_answer(session, "cancel_booking", idempotency_key, answer)
        except _Replay:
            return self.replay("cancel_booking", idempotency_key, request)
        except IntegrityError as error:
            if idempotency_key and is_idempotency_race(error):
                return self.replay("cancel_booking", idempotency_key, request)
            raise
        return answer

    def reschedule_booking(self, booking_id: str, caller: Caller, slot: Slot,
                           idempotency_key: str | None = None) -> dict[str, Any]:
        """Move a booking; on any refusal the transaction rolls back and nothing changed."""
        now = self.now()
        request = reschedule_request(booking_id, slot.start)
        try:
            with self.uow.transaction() as session:
                row = self._row(session, booking_id, policy.BOOKING_STATUSES, "booking",
                                for_update=True)
                self._authorise(session, caller, row)
                self._claim_key(session, now, "reschedule_booking", idempotency_key, request)
                self._check_same_session(row, slot)
                if row["status"] != "confirmed":
                    raise InvalidState(f"This booking is {row['status']}; it cannot be moved.")
                if policy.has_started(as_utc(row["start"]), now):
                    raise InvalidState("This session has already started.")
                room = claim_time(session, now, therapist_id=slot.therapist_id,
                                  modality=slot.modality, start=slot.start, end=slot.end,
                                  blocked_end=slot.blocked_end, rooms=slot.rooms,
                                  exclude=[booking_id], prefer_room=row["room"])
                session.execute(update(bookings).where(bookings.c.id == booking_id).values(
                    start=slot.start, end=slot.end, blocked_end=slot.blocked_end, room=room,
                    sequence=row["sequence"] + 1, updated_at=now))
                previous = {"start": iso(row["start"]), "end": iso(row["end"]),
                            "blocked_end": iso(row["blocked_end"]), "room": row["room"]}
                row = self._row(session, booking_id, policy.BOOKING_STATUSES, "booking")
                emit(session, "booking_rescheduled", {
                    "booking": policy.booking_view(row, self.video_base), "previous": previous})
                answer = policy.booking_answer(row, self.video_base)
                self._store_answer(session, "reschedule_booking", idempotency_key, answer)
        except _Replay:
            return self.replay("reschedule_booking", idempotency_key, request)
        except IntegrityError as error:
            if is_exclusion_violation(error):
                raise SlotUnavailable("That time is no longer available.") from None
            if idempotency_key and is_idempotency_race(error):
                return self.replay("reschedule_booking", idempotency_key, request)
            raise
        return answer

    def mark_attendance(self, booking_id: str, caller: Caller, status: str) -> dict[str, Any]:
        if status not in policy.ATTENDANCE_STATUSES:
            raise InvalidRequest.field("status", "Use 'attended' or 'no_show'.")
        now = self.now()
        with self.uow.transaction() as session:
            row = self._row(session, booking_id, policy.BOOKING_STATUSES, "booking",
                            for_update=True)
            self._authorise(session, caller, row)
            if not caller.acts_for_therapist(row["therapist_id"]):
                raise Forbidden("Only the therapist or the admin may mark attendance.")
            if row["status"] == "cancelled":
                raise InvalidState("This booking was cancelled.")
            if not policy.has_started(as_utc(row["start"]), now):
                raise InvalidState("Attendance can be marked once the session has started.")
            session.execute(update(bookings).where(bookings.c.id == booking_id).values(
                status=status, sequence=row["sequence"] + 1, updated_at=now))
            row = self._row(session, booking_id, policy.BOOKING_STATUSES, "booking")
            emit(session, "attendance_marked", {"booking": policy.booking_view(
                row, self.video_base)})
        return policy.booking_answer(row, self.video_base)

    def list_therapist_bookings(self, therapist_id: str, caller: Caller, start: datetime,
                                end: datetime) -> list[dict[str, Any]]:
        caller.require_therapist(therapist_id)
        with self.uow.reading() as session:
            rows = session.execute(select(bookings).where(
                bookings.c.therapist_id == therapist_id,
                bookings.c.status.in_(policy.BOOKING_STATUSES),
                bookings.c.start < end, bookings.c.end > start,
            ).order_by(bookings.c.start)).mappings().all()
        return [policy.booking_answer(row, self.video_base) for row in rows]

    def feed_sessions(self, therapist_id: str, since: datetime) -> list[dict[str, Any]]:
        """Every booking of the therapist starting at or after ``since``, cancelled included."""
        with self.uow.reading() as session:
            rows = session.execute(select(bookings).where(
                bookings.c.therapist_id == therapist_id,
                bookings.c.status.in_(policy.BOOKING_STATUSES),
                bookings.c.start >= since,
            ).order_by(bookings.c.start, bookings.c.id)).mappings().all()
        return [policy.feed_view(row) for row in rows]

    def issue_manage_token(self, kind: str, target_id: str) -> str:
        if kind not in ("booking", "course"):
            raise InvalidRequest.field("kind", "Use 'booking' or 'course'.")
        token, hashed = new_token(MANAGE_PREFIX)
        with self.uow.transaction() as session:
            table = courses if kind == "course" else bookings
            if session.execute(select(table.c.id).where(table.c.id == target_id)).first() is None:
                raise NotFound(f"No such {kind}.")
            self._insert_token(session, self.now(), hashed,
                               **{f"{kind}_id": target_id})
        return token

    # courses

    def create_course(self, request: Mapping[str, Any], planned: Mapping[str, Any],
                      idempotency_key: str | None = None) -> dict[str, Any]:
        """Every session of the course, or none: one transaction, every conflict listed."""
        now = self.now()
        client = policy.require_client(request.get("client"))
        notes = policy.text(request.get("notes"), "notes")
        course_id = str(uuid.uuid4())
        token, hashed = new_token(MANAGE_PREFIX)
        slots = [Slot.from_check({**planned, **session}) for session in planned["sessions"]]
        if not slots:
            raise InvalidRequest.field("sessions", "The course has no sessions.")
        schedule_conflicts = [iso(policy.parse_instant(start, "conflicts"))
                              for start in planned.get("conflicts") or []]
        try:
            with self.uow.transaction() as session:
                self._claim_key(session, now, "courses", idempotency_key, request)
                claimed, conflicts = self._claim_course(session, now, slots)
                conflicts = sorted({*schedule_conflicts, *conflicts},
                                   key=lambda s: policy.parse_instant(s, "start"))
                if conflicts:
                    raise CourseConflict(
                        f"{len(conflicts)} of the course's sessions cannot be booked.",
                        {"conflicts": conflicts})
                session.execute(insert(courses).values(
                    id=course_id, therapist_id=slots[0].therapist_id,
                    session_type=slots[0].session_type, modality=slots[0].modality,
                    status="active", session_count=len(slots),
                    skip_weeks=list(request.get("skip_weeks") or []),
                    first_start=slots[0].start, last_end=slots[-1].end, notes=notes,
                    created_at=now, **client))
                rows = [self._insert_row(session, now, slot, str(uuid.uuid4()), room,
                                         status="confirmed", course_id=course_id,
                                         session_number=number, course_sessions=len(slots),
                                         notes=notes, **client)
                        for number, (slot, room) in enumerate(claimed, start=1)]
                self._insert_token(session, now, hashed, course_id=course_id)
                course = self._course_row(session, course_id)
                emit(session, "course_booked", {"course": policy.course_view(
                    course, rows, self.video_base)})
                answer = policy.course_answer(course, rows, now, self.video_base)
                self._store_answer(session, "courses", idempotency_key, answer)
        except _Replay:
            return self.replay("courses", idempotency_key, request)
        except IntegrityError as error:
            if is_exclusion_violation(error):  # lost a race with another writer
                conflicts = self._course_conflicts(slots)
                raise CourseConflict("Some of the course's sessions were just taken.",
                                     {"conflicts": conflicts or [iso(s.start) for s in slots]}
                                     ) from None
            if idempotency_key and is_idempotency_race(error):
                return self.replay("courses", idempotency_key, request)
            raise
        return {**answer, "manage_token": token}

    def get_course(self, course_id: str, caller: Caller) -> dict[str, Any]:
        with self.uow.reading() as session:
            course = self._course_row(session, course_id)
            self._authorise_course(session, caller, course)
            rows = self._course_sessions(session, course_id)
        return policy.course_answer(course, rows, self.now(), self.video_base)

    def cancel_course(self, course_id: str, caller: Caller, reason: str | None = None,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        now = self.now()
        request = {"course_id": course_id, "reason": reason}
        try:
            with self.uow.transaction() as session:
                course = self._course_row(session, course_id, for_update=True)
                self._authorise_course(session, caller, course)
                self._claim_key(session, now, "cancel_course", idempotency_key, request)
                if course["status"] != "active":
                    raise InvalidState(f"This course is {course['status']}.")
                cancelled = [self._cancel(session, now, row, caller, reason)
                             for row in policy.to_cancel_in_course(
                                 self._course_sessions(session, course_id), now)]
                session.execute(update(courses).where(courses.c.id == course_id).values(
                    status="cancelled", cancelled_at=now,
                    cancelled_by=policy.canceller(caller)))
                course = self._course_row(session, course_id)
                rows = self._course_sessions(session, course_id)
                emit(session, "course_cancelled", {
                    "course": policy.course_view(course, rows, self.video_base),
                    "cancelled": [policy.booking_view(row, self.video_base)
                                  for row in cancelled]})
                answer = policy.course_answer(course, rows, now, self.video_base)
                self._store_answer(session, "cancel_course", idempotency_key, answer)
        except _Replay:
            return self.replay("cancel_course", idempotency_key, request)
        except IntegrityError as error:
            if idempotency_key and is_idempotency_race(error):
                return self.replay("cancel_course", idempotency_key, request)
            raise
        return answer

    def clean_idempotency_keys(self) -> int:
        cutoff = self.now() - policy.IDEMPOTENCY_TTL
        with self.uow.transaction() as session:
            return session.execute(delete(idempotency_keys).where(
                idempotency_keys.c.created_at <= cutoff)).rowcount

    # pieces

    def _claim_course(self, session: Session, now: datetime,
                      slots: list[Slot]) -> tuple[list[tuple[Slot, str | None]], list[str]]:
        """Claim each session's time in turn; sessions already claimed count as taken."""
        claimed: list[tuple[Slot, str | None]] = []
        conflicts: list[str] = []
        for slot in slots:
            overlaps_own = any(slot.start < other.blocked_end and other.start < slot.blocked_end
                               for other, _ in claimed)
            try:
                if overlaps_own:
                    raise SlotUnavailable("The course overlaps itself.")
                taken_rooms = {room for other, room in claimed
                               if room and slot.start < other.end and other.start < slot.end}
                room = claim_time(session, now, therapist_id=slot.therapist_id,
                                  modality=slot.modality, start=slot.start, end=slot.end,
                                  blocked_end=slot.blocked_end,
                                  rooms=[r for r in slot.rooms if r not in taken_rooms])
            except SlotUnavailable:
                conflicts.append(iso(slot.start))
                continue
            claimed.append((slot, room))
        return claimed, conflicts

    def _course_conflicts(self, slots: list[Slot]) -> list[str]:
        now = self.now()
        with self.uow.reading() as session:
            return [iso(slot.start) for slot in slots
                    if therapist_taken(session, slot.therapist_id, slot.start, slot.blocked_end,
                                       now)]

    def _convert_hold(self, session: Session, now: datetime,
                      request: Mapping[str, Any]) -> tuple[Slot, str | None]:
        """Turn a live hold into the booking's time: the hold stops blocking in this same
        transaction, and the booking takes its time and room."""
        hold = self._row(session, request["hold_id"], policy.HOLD_STATUSES, "hold",
                         for_update=True)
        start = policy.parse_instant(request.get("start"), "start")
        if (hold["therapist_id"], hold["session_type"], hold["modality"], as_utc(hold["start"])) \
                != (request.get("therapist_id"), request.get("session_type"),
                    request.get("modality"), start):
            raise InvalidRequest.field("hold_id", "The hold is for another session.")
        if hold["status"] == "expired" or (hold["status"] == "held"
                                           and as_utc(hold["expires_at"]) <= now):
            raise HoldExpired("The hold has expired; choose the time again.")
        if hold["status"] != "held":
            raise InvalidState(f"The hold was already {hold['status']}.")
        session.execute(update(bookings).where(bookings.c.id == hold["id"])
                        .values(status="converted", updated_at=now))
        emit(session, "hold_released", {"hold": policy.hold_view(hold), "reason": "converted"})
        slot = Slot(therapist_id=hold["therapist_id"], session_type=hold["session_type"],
                    modality=hold["modality"], start=as_utc(hold["start"]),
                    end=as_utc(hold["end"]),
                    buffer_minutes=int((as_utc(hold["blocked_end"]) - as_utc(hold["end"]))
                                       .total_seconds() // 60),
                    rooms=(hold["room"],) if hold["room"] else ())
        room = claim_time(session, now, therapist_id=slot.therapist_id, modality=slot.modality,
                          start=slot.start, end=slot.end, blocked_end=slot.blocked_end,
                          rooms=slot.rooms)
        return slot, room

    def _cancel(self, session: Session, now: datetime, row: Mapping[str, Any], caller: Caller,
                reason: str | None) -> Mapping[str, Any]:
        late = policy.is_late_cancellation(caller, as_utc(row["start"]), now,
                                           self.cancellation_notice_hours)
        session.execute(update(bookings).where(bookings.c.id == row["id"]).values(
            status="cancelled", late_cancellation=late, cancelled_by=policy.canceller(caller),
            cancelled_at=now, cancel_reason=policy.text(reason, "reason"),
            sequence=row["sequence"] + 1, updated_at=now))
        return self._row(session, row["id"], policy.BOOKING_STATUSES, "booking")

    def _claim_key(self, session: Session, now: datetime, scope: str, key: str | None,
                   request: Mapping[str, Any]) -> None:
        """Claim the Idempotency-Key by a unique row in this transaction (so a booking and its
        key commit together). A key seen since the fast-path replay check is a conflict or a
        race; both end in IdempotencyConflict or a replay above."""
        if not key:
            return
        session.execute(delete(idempotency_keys).where(
            idempotency_keys.c.key == key, idempotency_keys.c.scope == scope,
            idempotency_keys.c.created_at <= now - policy.IDEMPOTENCY_TTL))
        existing = session.execute(select(idempotency_keys.c.request_hash).where(
            idempotency_keys.c.key == key, idempotency_keys.c.scope == scope)).first()
        hashed = policy.request_hash(request)
        if existing is not None:
            if existing.request_hash != hashed:
                raise IdempotencyConflict(
                    "This Idempotency-Key was used with a different request.")
            # the same request committed between our replay check and now: a race, replayed
            raise _Replay()
        session.execute(insert(idempotency_keys).values(
            key=key, scope=scope, request_hash=hashed, created_at=now))

    def _store_answer(self, session: Session, scope: str, key: str | None,
                      answer: dict[str, Any]) -> None:
        if key:
            session.execute(update(idempotency_keys).where(
                idempotency_keys.c.key == key, idempotency_keys.c.scope == scope)
                .values(response=answer))

    def _insert_row(self, session: Session, now: datetime, slot: Slot, row_id: str,
                    room: str | None, **values: Any) -> Mapping[str, Any]:
        row = {column.name: None for column in bookings.columns}
        row.update(id=row_id, therapist_id=slot.therapist_id, session_type=slot.session_type,
                   modality=slot.modality, start=slot.start, end=slot.end,
                   blocked_end=slot.blocked_end, room=room, sequence=0, late_cancellation=False,
                   created_at=now, updated_at=now, **values)
        session.execute(insert(bookings).values(row))
        return row

    def _insert_token(self, session: Session, now: datetime, hashed: str, **target: str) -> None:
        session.execute(insert(manage_tokens).values(token_hash=hashed, created_at=now, **target))

    def _row(self, session: Session, row_id: str, statuses: tuple[str, ...], what: str,
             for_update: bool = False) -> Mapping[str, Any]:
        if "\x00" in str(row_id):  # not an id we could have made (nor can PostgreSQL hold it)
            raise NotFound(f"No such {what}.")
        query = select(bookings).where(bookings.c.id == str(row_id),
                                       bookings.c.status.in_(statuses))
        if for_update:
            query = query.with_for_update()
        row = session.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"No such {what}.")
        return row

    def _course_row(self, session: Session, course_id: str,
                    for_update: bool = False) -> Mapping[str, Any]:
        if "\x00" in str(course_id):
            raise NotFound("No such course.")
        query = select(courses).where(courses.c.id == str(course_id))
        if for_update:
            query = query.with_for_update()
        row = session.execute(query).mappings().first()
        if row is None:
            raise NotFound("No such course.")
        return row

    def _course_sessions(self, session: Session, course_id: str) -> list[Mapping[str, Any]]:
        return list(session.execute(select(bookings).where(bookings.c.course_id == course_id)
                                    .order_by(bookings.c.session_number)).mappings().all())

    def _holds_token(self, session: Session, caller: Caller, *, booking_id: str | None = None,
                     course_id: str | None = None) -> bool:
        if caller.kind != "manage" or not caller.token:
            return False
        targets = []
        if booking_id:
            targets.append(manage_tokens.c.booking_id == booking_id)
        if course_id:
            targets.append(manage_tokens.c.course_id == course_id)
        found = session.execute(select(manage_tokens.c.token_hash).where(
            manage_tokens.c.token_hash == token_hash(caller.token), or_(*targets))).scalars()
        return caller.holds_token(list(found))

    def _authorise(self, session: Session, caller: Caller, row: Mapping[str, Any]) -> None:
        """The admin, the booking's therapist, or a manage token of the booking or its course;
        to anyone else the booking does not exist."""
        if caller.kind == "public":
            raise Unauthorized("This needs the booking's manage token or a therapist's token.")
        if caller.acts_for_therapist(row["therapist_id"]):
            return
        if self._holds_token(session, caller, booking_id=row["id"], course_id=row["course_id"]):
            return
        raise NotFound("No such booking.")

    def _authorise_course(self, session: Session, caller: Caller,
                          course: Mapping[str, Any]) -> None:
        if caller.kind == "public":
            raise Unauthorized("This needs the course's manage token or a therapist's token.")
        if caller.acts_for_therapist(course["therapist_id"]):
            return
        if self._holds_token(session, caller, course_id=course["id"]):
            return
        raise NotFound("No such course.")

    @staticmethod
    def _check_same_session(row: Mapping[str, Any], slot: Slot) -> None:
        if (row["therapist_id"], row["session_type"], row["modality"]) != (
                slot.therapist_id, slot.session_type, slot.modality):
            raise InvalidRequest.field("start", "The new time is for another session.")

