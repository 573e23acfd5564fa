"""The booking service's use cases: every change to holds, bookings and courses, each in one
write transaction with its outbox events, and the reads. The use cases own the transactions;
SQL is in ``repository``, time claims in ``claims``, the Idempotency-Key protocol in
``idempotency``, the rules in ``policy``. Availability is a port (``Availability``): it is asked
before any transaction opens, never inside one.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from clinic import privacy, wire
from clinic.access import MANAGE_PREFIX, Caller, new_token, token_hash
from clinic.db import UnitOfWork
from clinic.errors import CourseConflict, Forbidden, InvalidRequest, SlotUnavailable, Unauthorized
from clinic.settings import Settings
from clinic.wire import iso, utc
from services.booking import claims, guards, policy, repository
from services.booking.claims import Slot, claim_time
from services.booking.hold_extension import extend_hold_row
from services.booking.idempotency import Answer, Keys, Request
from services.booking.policy import HOLD_STATUSES
from services.booking.repository import emit

# Without MANAGE_LINK_SECRET each process derives emailed links with its own key: still one
# token per booking within a process, but a restart mints another (set it in production).
_PROCESS_LINK_SECRET = secrets.token_bytes(32)
DEFAULT_LIST_DAYS = 90
FEED_DAYS_BACK = 90  # docs/http-contract.md: a feed shows sessions from 90 days back


class Availability(Protocol):
    """What booking asks the availability service (its RPC methods of the same names)."""

    def check_session(self, therapist_id: str, session_type: str, modality: str,
                      start: str) -> dict[str, Any]: ...

    def check_course(self, therapist_id: str, session_type: str, modality: str,
                     first_start: str, sessions: int, skip_weeks: list[str]) -> dict[str, Any]: ...

    def get_therapist(self, therapist_id: str) -> dict[str, Any]: ...


@dataclass
class UseCases:
    """The service's commands and queries; ``now`` is the injected clock."""

    uow: UnitOfWork
    now: Callable[[], datetime]
    availability: Availability
    settings: Settings
    keys: Keys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = Keys(self.uow, self.now, self.issue_manage_token)

    @property
    def video_base(self) -> str:
        return self.settings.video_base_url

    def _slot(self, therapist_id: Any, session_type: Any, modality: Any, start: Any) -> Slot:
        """The time as availability approves it (a 400 for a bad instant, before asking)."""
        wire.instant(start, "start")
        return Slot.from_check(self.availability.check_session(
            therapist_id, session_type, modality, start))

    # holds

    def place_hold(self, therapist_id: str, session_type: str, modality: str, start: str,
                   idempotency_key: str | None = None,
                   client_address: str | None = None) -> Answer:
        request = _request("holds", idempotency_key, {
            "therapist_id": therapist_id, "session_type": session_type, "modality": modality,
            "start": start}, Caller(), client_address)
        # A repeat is answered before availability is asked: the time is its own hold's now.
        if (replayed := self.keys.replay(request)) is not None:
            return replayed
        slot = self._slot(therapist_id, session_type, modality, start)
        token, hashed = new_token(MANAGE_PREFIX)

        def command(session: Session) -> Answer:
            self.keys.claim(session, request)
            now = self.now()
            if client_address:  # one address keeps at most MAX_LIVE_HOLDS slots held
                guards.check_live_holds(repository.live_holds_from(session, client_address, now),
                                        self.settings.max_live_holds)
            row = self._insert(session, slot, claim_time(session, now, slot), hashed,
                               status="held", client_address=client_address,
                               expires_at=now + timedelta(minutes=self.settings.hold_minutes))
            emit(session, "hold_placed", {"hold": policy.hold_view(row)})
            return {**policy.hold_view(row), "status": "held"}
        return self.keys.once(request, command, manage_token=token)

    def release_hold(self, hold_id: str, caller: Caller) -> Answer:
        now = self.now()
        with self.uow.transaction() as session:
            self._authenticate(session, caller)
            row = repository.booking_row(session, hold_id, HOLD_STATUSES, "hold")
            self._authorise(session, caller, row)
            policy.check_releasable(row, now)
            repository.update_booking(session, hold_id, status="released", updated_at=now)
            emit(session, "hold_released", {"hold": policy.hold_view(row), "reason": "released"})
        return {**policy.hold_view(row), "status": "released"}

    def extend_hold(self, hold_id: str, caller: Caller) -> Answer:
        """Another ``hold_minutes`` for a live hold, once (services/booking/hold_extension.py)."""
        now = self.now()
        with self.uow.transaction() as session:
            row = repository.booking_row(session, hold_id, HOLD_STATUSES, "hold",
                                         for_update=True)
            self._authorise(session, caller, row)
            row = extend_hold_row(session, row, now, self.settings.hold_minutes)
            emit(session, "hold_placed", {"hold": policy.hold_view(row)})
        return {**policy.hold_view(row), "status": "held"}

    def expire_holds(self) -> int:
        with self.uow.transaction() as session:
            return claims.expire_stale_holds(session, self.now())

    # bookings

    def create_booking(self, body: Mapping[str, Any], idempotency_key: str | None = None,
                       caller: Caller | None = None,
                       client_address: str | None = None) -> Answer:
        """A confirmed booking from an approved slot, or from a live hold (``hold_id``, with
        the hold's manage token as the caller)."""
        caller = caller or Caller()
        request = _request("bookings", idempotency_key, body, caller, client_address)
        # A repeat is found when the key is claimed, in the transaction (no read before it);
        # only a time the schedule no longer offers asks first whether this is a repeat.
        try:
            slot = None if body.get("hold_id") else self._slot(  # a hold was checked when placed
                body.get("therapist_id"), body.get("session_type"), body.get("modality"),
                body.get("start"))
        except SlotUnavailable:
            if (replayed := self.keys.replay(request)) is not None:
                return replayed
            raise
        client = policy.require_client(body.get("client"))
        notes = wire.optional_text(body.get("notes"), "notes")
        token, hashed = new_token(MANAGE_PREFIX)

        def command(session: Session) -> Answer:
            self.keys.claim(session, request)
            guards.check_email_quota(
                repository.sessions_to_come_for(session, client["client_email"], self.now()),
                self.settings.max_bookings_per_email, "sessions")
            taken = self._convert_hold(session, body, caller) if slot is None else slot
            room = claim_time(session, self.now(), taken)
            row = self._insert(session, taken, room, hashed, status="confirmed",
                               hold_id=body.get("hold_id"), notes=notes,
                               client_address=client_address, **client)
            self._audit(session, caller, "created", booking_id=row["id"])
            emit(session, "booking_confirmed", {"booking": self._view(row)})
            return policy.booking_answer(row, self.video_base)
        return self.keys.once(request, command, manage_token=token)

    def get_booking(self, booking_id: str, caller: Caller) -> Answer:
        answer = self._read_booking(booking_id, caller)
        self.record_access(caller, "read", booking_id=booking_id)
        return answer

    def _read_booking(self, booking_id: str, caller: Caller) -> Answer:
        with self.uow.reading() as session:
            self._authenticate(session, caller)
            row = repository.booking_row(session, booking_id)
            self._authorise(session, caller, row)
        return policy.booking_answer(row, self.video_base)

    def cancel_booking(self, booking_id: str, caller: Caller, reason: str | None = None,
                       idempotency_key: str | None = None) -> Answer:
        request = _request("cancel_booking", idempotency_key,
                           {"booking_id": booking_id, "reason": reason}, caller)

        def command(session: Session) -> Answer:
            self._authenticate(session, caller)
            row = repository.booking_row(session, booking_id, for_update=True)
            self._authorise(session, caller, row)
            self.keys.claim(session, request)
            policy.check_cancellable(row, self.now())
            row = self._cancel(session, row, caller, reason)
            emit(session, "booking_cancelled", {"booking": self._view(row)})
            self._audit(session, caller, "cancelled", booking_id=booking_id)
            return policy.booking_answer(row, self.video_base)
        return self.keys.once(request, command)

    def reschedule_booking(self, booking_id: str, caller: Caller, start: str,
                           idempotency_key: str | None = None) -> Answer:
        """Move a booking; on any refusal the transaction rolls back and nothing changed."""
        current = self._read_booking(booking_id, caller)  # authorises before asking availability
        request = _request("reschedule_booking", idempotency_key, {
            "booking_id": booking_id, "start": iso(wire.instant(start, "start"))}, caller)
        # A repeat is answered before availability is asked, which would refuse its own time.
        if (replayed := self.keys.replay(request)) is not None:
            return replayed
        slot = self._slot(current["therapist_id"], current["session_type"],
                          current["modality"], start)

        def command(session: Session) -> Answer:
            self._authenticate(session, caller)
            row = repository.booking_row(session, booking_id, for_update=True)
            self._authorise(session, caller, row)
            self.keys.claim(session, request)
            now = self.now()
            policy.check_movable(row, slot.therapist_id, slot.session_type, slot.modality, now)
            room = claim_time(session, now, slot, exclude=[booking_id], prefer_room=row["room"])
            moved = repository.update_booking(
                session, booking_id, start=slot.start, end=slot.end, room=room,
                blocked_end=slot.blocked_end, sequence=row["sequence"] + 1, updated_at=now)
            previous = {"start": iso(row["start"]), "end": iso(row["end"]),
                        "blocked_end": iso(row["blocked_end"]), "room": row["room"]}
            emit(session, "booking_rescheduled", {"booking": self._view(moved),
                                                  "previous": previous})
            self._audit(session, caller, "rescheduled", booking_id=booking_id)
            return policy.booking_answer(moved, self.video_base)
        return self.keys.once(request, command)

    def mark_attendance(self, booking_id: str, caller: Caller, status: str) -> Answer:
        status, now = policy.attendance_status(status), self.now()
        with self.uow.transaction() as session:
            self._authenticate(session, caller)
            row = repository.booking_row(session, booking_id, for_update=True)
            self._authorise(session, caller, row)
            policy.check_attendance(row, caller, now)
            row = repository.update_booking(session, booking_id, status=status,
                                            sequence=row["sequence"] + 1, updated_at=now)
            emit(session, "attendance_marked", {"booking": self._view(row)})
            self._audit(session, caller, f"marked_{status}", booking_id=booking_id)
        return policy.booking_answer(row, self.video_base)

    def list_therapist_bookings(self, therapist_id: str, caller: Caller,
                                from_date: str | None = None, to_date: str | None = None,
                                tz: str | None = None) -> list[Answer]:
        caller.require_therapist(therapist_id)
        if not tz:
            therapist = self.availability.get_therapist(therapist_id)
            tz = therapist.get("timezone") or self.settings.clinic_timezone
        zone = wire.zone(tz)
        first = wire.day(from_date, "from") if from_date else self.now().astimezone(zone).date()
        try:
            last = wire.day(to_date, "to") if to_date else first + timedelta(days=DEFAULT_LIST_DAYS)
        except OverflowError:
            raise InvalidRequest.field("from", "The date is out of range.") from None
        start, end = policy.day_range(first, last, zone)  # a 400 at the calendar's edge
        with self.uow.reading() as session:
            rows = repository.therapist_bookings(session, therapist_id, start, end)
        return [policy.booking_answer(row, self.video_base) for row in rows]

    def feed_sessions(self, therapist_id: str) -> list[Answer]:
        """A therapist's calendar feed: every booking from 90 days back, cancelled included,
        privacy-safe by construction (``policy.feed_view``)."""
        since = self.now() - timedelta(days=FEED_DAYS_BACK)
        with self.uow.reading() as session:
            rows = repository.therapist_bookings(session, therapist_id, since)
        return [policy.feed_view(row) for row in rows]

    def issue_manage_token(self, kind: str, target_id: str) -> str:
        """The manage token of a booking's or course's emails: the same for every email and
        every retry of one (derived, ``guards.mail_token``), stored hashed once."""
        if kind not in ("booking", "course"):
            raise InvalidRequest.field("kind", "Use 'booking' or 'course'.")
        secret = self.settings.manage_link_secret.encode() or _PROCESS_LINK_SECRET
        with self.uow.transaction() as session:
            nonce = repository.link_nonce(session, kind, target_id, guards.new_link_nonce())
            token = guards.mail_token(secret, kind, target_id, nonce)
            if not repository.token_known(session, token):
                repository.insert_token(session, self.now(), token_hash(token),
                                        **{f"{kind}_id": target_id})
        return token

    def sign_out(self, kind: str, target_id: str, caller: Caller) -> Answer:
        """Revoke every manage token of a booking (or of a course and its sessions): every
        link sent so far stops working, the one used for this request too."""
        with self.uow.transaction() as session:
            self._authenticate(session, caller)
            if kind == "course":
                course = repository.course_row(session, target_id)
                self._authorise_course(session, caller, course)
                ids = [row["id"] for row in repository.course_sessions(session, target_id)]
                revoked = repository.delete_tokens(session, booking_ids=ids, course_id=target_id)
                repository.forget_link_nonces(session, ids, target_id)
                self._audit(session, caller, "signed_out", course_id=target_id)
            else:
                row = repository.booking_row(session, target_id)
                self._authorise(session, caller, row)
                revoked = repository.delete_tokens(session, booking_ids=[target_id])
                repository.forget_link_nonces(session, [target_id])
                self._audit(session, caller, "signed_out", booking_id=target_id)
        return {"id": target_id, "revoked": revoked}

    def cancel_client_bookings(self, caller: Caller, since: str, until: str,
                               client_address: str | None = None,
                               email: str | None = None) -> Answer:
        """The admin's clean-up after abuse: cancel every session still to come that was
        booked in [since, until] from one client address or for one email."""
        caller.require_admin()
        if bool(client_address) == bool(email):
            raise InvalidRequest.field("client_address", "Give a client_address or an email.")
        first, last = wire.instant(since, "since"), wire.instant(until, "until")
        with self.uow.transaction() as session:
            rows = repository.bookings_made_by(session, first, last, self.now(),
                                               client_address, email)
            for row in rows:
                row = self._cancel(session, row, caller, "cancelled by the clinic (abuse)")
                emit(session, "booking_cancelled", {"booking": self._view(row)})
                self._audit(session, caller, "cancelled", booking_id=row["id"])
        return {"cancelled": [row["id"] for row in rows]}

    def audit_trail(self, caller: Caller, booking_id: str | None = None,
                    course_id: str | None = None) -> list[Answer]:
        """Who read or changed a booking or a course (the admin's)."""
        caller.require_admin()
        if bool(booking_id) == bool(course_id):
            raise InvalidRequest.field("booking_id", "Give a booking_id or a course_id.")
        with self.uow.reading() as session:
            rows = repository.audit_entries(session, booking_id, course_id)
        return [{"at": iso(row["at"]), "actor": {"kind": row["actor_kind"], "id": row["actor_id"]},
                 "action": row["action"], "booking_id": row["booking_id"],
                 "course_id": row["course_id"]} for row in rows]

    def record_access(self, caller: Caller, action: str, booking_id: str | None = None,
                      course_id: str | None = None) -> None:
        """An entry in the audit log in its own transaction: a read, or an access another
        service saw (the progress service's reads and changes of a course's progress)."""
        with self.uow.transaction() as session:
            self._audit(session, caller, action, booking_id=booking_id, course_id=course_id)

    def export_client(self, caller: Caller, email: str) -> Answer:
        """Everything booking holds about the client with this email (the admin's)."""
        caller.require_admin()
        with self.uow.reading() as session:
            rows, course_rows = repository.client_rows(session, _email(email))
            courses = [policy.course_answer(course, repository.course_sessions(
                session, course["id"]), self.now(), self.video_base) for course in course_rows]
        return {"bookings": [policy.booking_answer(row, self.video_base) for row in rows],
                "courses": courses}

    def erase_client(self, caller: Caller, email: str) -> Answer:
        """Remove the client's name, email, phone, notes and reasons from every row, stored
        answer and event booking holds; the bookings and their times stay, for an erased
        client. Other services hear ``client_erased`` (the email's hash and the ids), and
        erase what they own. Idempotent: a second erasure finds nothing."""
        caller.require_admin()
        email = _email(email)
        theirs = privacy.has_email(email)
        with self.uow.transaction() as session:
            rows, course_rows = repository.client_rows(session, email)
            booking_ids = [row["id"] for row in rows]
            course_ids = [course["id"] for course in course_rows]
            repository.erase_rows(session, booking_ids, course_ids, privacy.ERASED_COLUMNS)
            for seq, payload, published_at in repository.outbox_payloads(session):
                if not privacy.mentions(payload, email):
                    continue
                if published_at is not None:
                    repository.delete_outbox_row(session, seq)
                else:  # still to go out: it goes, without the client
                    repository.set_outbox_payload(session, seq,
                                                  privacy.scrub(payload, theirs))
            for key_id, response in repository.stored_answers(session):
                if response and privacy.mentions(response, email):
                    repository.delete_key_row(session, key_id)
            for booking_id in booking_ids:
                self._audit(session, caller, "erased", booking_id=booking_id)
            for course_id in course_ids:
                self._audit(session, caller, "erased", course_id=course_id)
            for therapist_id in {row["therapist_id"] for row in rows}:
                repository.calendar_changed(session, therapist_id)  # initials in the feeds
            emit(session, "client_erased", {"email_sha256": privacy.email_hash(email),
                                            "booking_ids": booking_ids,
                                            "course_ids": course_ids})
        return {"bookings": len(booking_ids), "courses": len(course_ids)}

    def clean_idempotency_keys(self) -> int:
        return self.keys.clean()

    # courses

    def create_course(self, body: Mapping[str, Any], idempotency_key: str | None = None,
                      client_address: str | None = None) -> Answer:
        """Every session of the course, or none: one transaction, every conflict listed."""
        request = _request("courses", idempotency_key, body, Caller(), client_address)
        if (replayed := self.keys.replay(request)) is not None:
            return replayed
        planned = self._plan_course(body)
        client = policy.require_client(body.get("client"))
        notes = wire.optional_text(body.get("notes"), "notes")
        slots, schedule_conflicts = _course_slots(planned)
        token, hashed = new_token(MANAGE_PREFIX)

        def command(session: Session) -> Answer:
            self.keys.claim(session, request)
            guards.check_email_quota(
                repository.active_courses_for(session, client["client_email"], self.now()),
                self.settings.max_courses_per_email, "courses")
            claimed, conflicts = claims.claim_course(session, self.now(), slots)
            _refuse_conflicts(policy.sorted_instants([*schedule_conflicts, *conflicts]))
            answer = self._write_course(session, body, claimed, hashed, notes, client,
                                        client_address)
            self._audit(session, Caller(), "created", course_id=answer["id"])
            return answer
        return self.keys.once(request, command, manage_token=token,
                              taken=lambda: self._course_taken(slots))

    def get_course(self, course_id: str, caller: Caller) -> Answer:
        with self.uow.reading() as session:
            self._authenticate(session, caller)
            course = repository.course_row(session, course_id)
            self._authorise_course(session, caller, course)
            rows = repository.course_sessions(session, course_id)
        self.record_access(caller, "read", course_id=course_id)
        return policy.course_answer(course, rows, self.now(), self.video_base)

    def cancel_course(self, course_id: str, caller: Caller, reason: str | None = None,
                      idempotency_key: str | None = None) -> Answer:
        request = _request("cancel_course", idempotency_key,
                           {"course_id": course_id, "reason": reason}, caller)

        def command(session: Session) -> Answer:
            now = self.now()
            self._authenticate(session, caller)
            course = repository.course_row(session, course_id, for_update=True)
            self._authorise_course(session, caller, course)
            self.keys.claim(session, request)
            policy.check_course_cancellable(course)
            cancelled = [self._cancel(session, row, caller, reason)
                         for row in policy.to_cancel_in_course(
                             repository.course_sessions(session, course_id), now)]
            repository.update_course(session, course_id, status="cancelled", cancelled_at=now,
                                     cancelled_by=policy.canceller(caller),
                                     cancelled_by_id=guards.actor(caller)[1])
            self._audit(session, caller, "cancelled", course_id=course_id)
            course = repository.course_row(session, course_id)
            rows = repository.course_sessions(session, course_id)
            emit(session, "course_cancelled", {
                "course": policy.course_view(course, rows, self.video_base),
                "cancelled": [self._view(row) for row in cancelled]})
            return policy.course_answer(course, rows, now, self.video_base)
        return self.keys.once(request, command)

    # pieces

    def _view(self, row: Mapping[str, Any]) -> Answer:
        return policy.booking_view(row, self.video_base)

    def _insert(self, session: Session, slot: Slot, room: str | None, token_hash: str | None,
                **values: Any) -> Mapping[str, Any]:
        """A new bookings row (a hold, a booking or a course's session) and its manage token."""
        now = self.now()
        row = repository.insert_booking(session, {
            "id": str(uuid.uuid4()), "therapist_id": slot.therapist_id,
            "session_type": slot.session_type, "modality": slot.modality, "start": slot.start,
            "end": slot.end, "blocked_end": slot.blocked_end, "room": room, "sequence": 0,
            "late_cancellation": False, "created_at": now, "updated_at": now, **values})
        if token_hash:
            repository.insert_token(session, now, token_hash, booking_id=row["id"])
        return row

    def _plan_course(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The course's sessions as availability plans them (a 400 for a bad first start)."""
        wire.instant(body.get("first_start"), "first_start")
        return self.availability.check_course(
            body.get("therapist_id"), body.get("session_type"), body.get("modality"),
            body.get("first_start"), body.get("sessions", 16),
            list(body.get("skip_weeks") or []))

    def _write_course(self, session: Session, body: Mapping[str, Any],
                      claimed: list[tuple[Slot, str | None]], token_hash: str,
                      notes: str | None, client: dict[str, Any],
                      client_address: str | None = None) -> Answer:
        now, course_id = self.now(), str(uuid.uuid4())
        first, last = claimed[0][0], claimed[-1][0]
        repository.insert_course(
            session, id=course_id, therapist_id=first.therapist_id,
            session_type=first.session_type, modality=first.modality, status="active",
            session_count=len(claimed), skip_weeks=list(body.get("skip_weeks") or []),
            first_start=first.start, last_end=last.end, notes=notes, created_at=now, **client)
        rows = [self._insert(session, slot, room, None, status="confirmed", course_id=course_id,
                             session_number=number, course_sessions=len(claimed), notes=notes,
                             client_address=client_address, **client)
                for number, (slot, room) in enumerate(claimed, start=1)]
        repository.insert_token(session, now, token_hash, course_id=course_id)
        course = repository.course_row(session, course_id)
        emit(session, "course_booked", {"course": policy.course_view(course, rows,
                                                                     self.video_base)})
        return policy.course_answer(course, rows, now, self.video_base)

    def _course_taken(self, slots: list[Slot]) -> CourseConflict:
        """Lost a race with another writer: which sessions are taken now."""
        now = self.now()
        with self.uow.reading() as session:
            conflicts = [iso(slot.start) for slot in slots if repository.therapist_taken(
                session, slot.therapist_id, slot.start, slot.blocked_end, now)]
        return CourseConflict("Some of the course's sessions were just taken.",
                              {"conflicts": conflicts or [iso(s.start) for s in slots]})

    def _convert_hold(self, session: Session, body: Mapping[str, Any], caller: Caller) -> Slot:
        """Turn a live hold into the booking's time: the hold stops blocking in this same
        transaction, and the booking takes its time and room. Only the holder (the hold's
        manage token) may: a hold id alone is not a secret."""
        now = self.now()
        hold = repository.booking_row(session, body["hold_id"], HOLD_STATUSES, "hold",
                                      for_update=True)
        if not caller.is_admin and not self._holds_token(session, caller, booking_id=hold["id"]):
            raise Forbidden("Send the hold's manage token as 'Authorization: Bearer <token>'.")
        policy.check_convertible(hold, body, now)
        repository.update_booking(session, hold["id"], status="converted", updated_at=now)
        emit(session, "hold_released", {"hold": policy.hold_view(hold), "reason": "converted"})
        return Slot.of_row(hold)

    def _cancel(self, session: Session, row: Mapping[str, Any], caller: Caller,
                reason: str | None) -> Mapping[str, Any]:
        now = self.now()
        late = policy.is_late_cancellation(caller, utc(row["start"]), now,
                                           self.settings.cancellation_notice_hours)
        return repository.update_booking(
            session, row["id"], status="cancelled", late_cancellation=late,
            cancelled_by=policy.canceller(caller), cancelled_by_id=guards.actor(caller)[1],
            cancelled_at=now,
            cancel_reason=wire.optional_text(reason, "reason"), sequence=row["sequence"] + 1,
            updated_at=now)

    def _audit(self, session: Session, caller: Caller, action: str,
               booking_id: str | None = None, course_id: str | None = None) -> None:
        repository.audit(session, self.now(), guards.actor(caller), action, booking_id,
                         course_id)

    @staticmethod
    def _authenticate(session: Session, caller: Caller) -> None:
        """Who is asking, before anything is looked up: without a token, or with a manage
        token that opens nothing, an existing and an unknown booking look the same (401)."""
        if caller.kind == "public":
            raise Unauthorized("This needs the manage token, a therapist's or the admin's.")
        if caller.kind == "manage" and not (
                caller.token and repository.token_known(session, caller.token)):
            raise Unauthorized("The token is not valid.")

    def _authorise(self, session: Session, caller: Caller, row: Mapping[str, Any]) -> None:
        def holds_token() -> bool:
            if not self._holds_token(session, caller, booking_id=row["id"],
                                     course_id=row["course_id"]):
                return False
            last_end = (repository.course_row(session, row["course_id"])["last_end"]
                        if row["course_id"] else row["end"])
            guards.check_not_expired(utc(last_end), self.now(), self.settings.manage_token_days)
            return True
        policy.check_access(caller, row["therapist_id"], holds_token, "booking")

    def _authorise_course(self, session: Session, caller: Caller,
                          course: Mapping[str, Any]) -> None:
        def holds_token() -> bool:
            if not self._holds_token(session, caller, course_id=course["id"]):
                return False
            guards.check_not_expired(utc(course["last_end"]), self.now(),
                                     self.settings.manage_token_days)
            return True
        policy.check_access(caller, course["therapist_id"], holds_token, "course")

    @staticmethod
    def _holds_token(session: Session, caller: Caller, **target: str | None) -> bool:
        if caller.kind != "manage" or not caller.token:
            return False
        return caller.holds_token(repository.token_hashes(session, caller.token, **target))


def _request(scope: str, key: str | None, body: Mapping[str, Any], caller: Caller,
             client_address: str | None = None) -> Request:
    """A command's request under its Idempotency-Key (checked), owned by its caller."""
    guards.check_idempotency_key(key)
    return Request(scope, key, body, guards.key_owner(caller, client_address))


def _email(email: Any) -> str:
    text = str(email or "").strip()
    if "@" not in text:
        raise InvalidRequest.field("email", "A valid email address is required.")
    return text


def _course_slots(planned: Mapping[str, Any]) -> tuple[list[Slot], list[str]]:
    """The planned sessions as slots, and the weeks the schedule cannot offer."""
    slots = [Slot.from_check({**planned, **session}) for session in planned["sessions"]]
    if not slots:
        raise InvalidRequest.field("sessions", "The course has no sessions.")
    return slots, [iso(wire.instant(start, "conflicts"))
                   for start in planned.get("conflicts") or []]


def _refuse_conflicts(conflicts: list[str]) -> None:
    if conflicts:
        raise CourseConflict(f"{len(conflicts)} of the course's sessions cannot be booked.",
                             {"conflicts": conflicts})

