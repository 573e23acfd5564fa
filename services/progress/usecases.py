"""The progress service's use cases; each owns its transaction.

Who may do what (docs/http-contract.md): the course's client (its manage token, which only
booking can check:
``CourseKeeper``), its therapist, the admin. A manage token is checked over RPC *before* a
transaction opens; a token of another course is 404, as booking answers. The therapist's
writes (focus, letter) are 403 to a client; another therapist is told the course does not exist.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic.access import Caller
from clinic.db import UnitOfWork
from clinic.errors import (
    Forbidden,
    InvalidRequest,
    InvalidState,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from clinic.events import Event, first_delivery
from clinic.ical import instant
from clinic.outbox import record
from services.progress import journey, questionnaires, repository, scoring
from services.progress.journey import CheckIn, CourseFacts, EventCourse, KnownSession
from services.progress.models import outbox, processed_events

SOURCE = "progress"


class CourseKeeper(Protocol):
    """Booking, which issued the manage tokens: the course if ``caller`` may see it (else the
    error booking raises: 401, 404)."""

    def course(self, course_id: str, caller: dict[str, Any]) -> dict[str, Any]: ...

    def record_access(self, caller: dict[str, Any], action: str, course_id: str) -> None:
        """An entry in booking's audit log: who read or changed this course's progress."""


log = logging.getLogger(__name__)


def audited(action: str) -> Callable:
    """A use case on one course's progress whose success goes into the clinic's audit log
    (booking's, docs/http-contract.md "Personal data"). The entry is written after the answer
    is made; a booking that cannot take it is logged (ids only) rather than failing the
    client's read or check-in."""

    def decorate(use_case: Callable) -> Callable:
        @functools.wraps(use_case)
        def run(self, caller: dict[str, Any], course_id: str, *args: Any, **kwargs: Any):
            answer = use_case(self, caller, course_id, *args, **kwargs)
            try:
                self.keeper.record_access(caller, action, course_id)
            except ServiceUnavailable:
                log.warning("audit entry %s for course %s not recorded: booking did not "
                            "answer", action, course_id)
            return answer
        return run
    return decorate


def course_of_answer(answer: dict[str, Any]) -> EventCourse:
    """Booking's answer to get_course as the same facts its events carry."""
    sessions = [KnownSession(s["booking_id"], answer["id"], int(s["number"]),
                             instant(s["start"]), instant(s["end"]), s["status"],
                             int(s.get("sequence") or 0)) for s in answer["sessions"]]
    count = int(answer.get("session_count") or len(sessions))
    return EventCourse(answer["id"], answer["therapist_id"], count, sessions,
                       answer.get("status"))


class Progress:
    def __init__(self, uow: UnitOfWork, now: Callable[[], datetime], keeper: CourseKeeper):
        self.uow = uow
        self.now = now
        self.keeper = keeper

    # ---- what booking's events say ---------------------------------------------------------

    def apply_booking_event(self, payload: dict[str, Any]) -> bool:
        """Record a booking event's course facts once; False for a redelivery. Most bookings
        are outside any course: their events need no transaction (nothing is kept, so a
        redelivery has nothing to repeat)."""
        found = journey.sessions_of_event(payload)
        if found is None:
            return True
        with self.uow.transaction() as session:
            if not first_delivery(session, processed_events, payload["id"]):
                return False
            if found is not None:
                self._store(session, found)
        return True

    def _store(self, session: Session, found: EventCourse) -> None:
        repository.ensure_course(session, found.course_id, found.therapist_id,
                                 found.session_count, self.now())
        for known in found.sessions:
            repository.upsert_session(session, known)
        if found.status == "cancelled":
            repository.set_course_status(session, found.course_id, "cancelled")

    # ---- who may ---------------------------------------------------------------------------

    def _client_checked(self, who: Caller, course_id: str) -> EventCourse | None:
        """For a manage token: booking's word that it opens this course (RPC, no transaction
        open), with the course as booking sees it. None for other callers."""
        if who.kind == "public":
            raise Unauthorized("This needs the course's manage token or a therapist's token.")
        if who.kind != "manage":
            return None
        return course_of_answer(self.keeper.course(course_id, who.to_rpc()))

    def _course(self, session: Session, who: Caller, course_id: str,
                vouched: EventCourse | None, for_update: bool = False) -> CourseFacts:
        course = repository.course(session, course_id, for_update)
        if course is None and vouched is not None:
            # Booking has it and the event is on its way: take booking's word for it now.
            self._store(session, vouched)
            course = repository.course(session, course_id, for_update)
        if course is None:
            raise NotFound("No such course.")
        if vouched is None and not who.acts_for_therapist(course.therapist_id):
            raise NotFound("No such course.")  # to another therapist it does not exist
        return course

    def _adopt(self, vouched: EventCourse) -> None:
        """A course booking vouched for but whose event is still on its way: stored now (a
        write transaction only then; a read finds it from here on)."""
        with self.uow.reading() as session:
            if repository.course(session, vouched.course_id) is not None:
                return
        with self.uow.transaction() as session:
            self._store(session, vouched)

    def _therapist_write(self, who: Caller, course_id: str) -> None:
        """Focus and letter are the therapist's (or admin's): a client's own token is 403."""
        if self._client_checked(who, course_id) is not None:
            raise Forbidden("Only the course's therapist or the admin may do this.")

    # ---- reading ---------------------------------------------------------------------------

    def questionnaires(self) -> list[dict[str, Any]]:
        return questionnaires.catalogue()

    @audited("progress_read")
    def progress(self, caller: dict[str, Any], course_id: str) -> dict[str, Any]:
        who = Caller.from_rpc(caller)
        vouched = self._client_checked(who, course_id)
        if vouched is not None:
            self._adopt(vouched)
        with self.uow.reading() as session:
            course = self._course(session, who, course_id, vouched)
            found = repository.course_check_ins(session, course_id)
        return journey.progress_view(course, found, self.now(), for_therapist=vouched is None)

    def therapist_courses(self, caller: dict[str, Any], therapist_id: str
                          ) -> list[dict[str, Any]]:
        who = Caller.from_rpc(caller)
        who.require_therapist(therapist_id)
        now = self.now()
        with self.uow.reading() as session:
            summaries = []
            for course_id in repository.therapist_courses(session, therapist_id):
                course = repository.course(session, course_id)
                found = repository.course_check_ins(session, course_id)
                summaries.append(journey.therapist_summary(course, found, now))
        return summaries

    # ---- the client's check-in -------------------------------------------------------------

    @audited("check_in_submitted")
    def submit_check_in(self, caller: dict[str, Any], course_id: str, answers: dict[str, Any],
                        reflection: str | None = None) -> dict[str, Any]:
        who = Caller.from_rpc(caller)
        try:
            phq9 = scoring.validate(questionnaires.PHQ9, (answers or {}).get("phq9") or [])
            gad7 = scoring.validate(questionnaires.GAD7, (answers or {}).get("gad7") or [])
        except scoring.InvalidAnswers as error:
            raise InvalidRequest.field("answers", str(error)) from None
        if reflection is not None and len(reflection) > 4000:
            raise InvalidRequest.field("reflection", "At most 4000 characters.")
        scores = scoring.score_check_in(phq9, gad7)
        vouched = self._client_checked(who, course_id)
        if vouched is None and not who.is_admin:
            # a therapist may read the course but the check-in is the client's own
            with self.uow.reading() as session:
                self._course(session, who, course_id, None)
            raise Forbidden("Only the client checks in, with the course's manage token.")
        now = self.now()
        try:
            with self.uow.transaction() as session:
                course = self._course(session, who, course_id, vouched, for_update=True)
                taken = {c.session_number for c in repository.course_check_ins(session,
                                                                                 course_id)}
                target = journey.check_in_target(course, taken, now)
                check_in = CheckIn(str(uuid.uuid4()), course_id, target.number,
                                   target.booking_id, now, scores.phq9.total, scores.gad7.total,
                                   scores.risk, reflection or None)
                repository.add_check_in(session, check_in, phq9, gad7)
                if scores.risk:
                    repository.flag_risk(session, course_id, now)
                # ids and the risk flag only: no answer, score or reflection leaves this service
                record(session, outbox, Event("checkin_submitted", {
                    "check_in_id": check_in.id, "course_id": course_id,
                    "booking_id": target.booking_id, "session_number": target.number,
                    "therapist_id": course.therapist_id, "risk": scores.risk}, SOURCE))
        except IntegrityError:  # a concurrent check-in for the same session won
            raise InvalidState("The check-in for this session is already in.") from None
        answer = {"id": check_in.id, "course_id": course_id,
                  "session_number": check_in.session_number,
                  "submitted_at": now.isoformat(), "phq9": scores.phq9.as_dict(),
                  "gad7": scores.gad7.as_dict(), "risk": scores.risk}
        if scores.risk:
            answer["urgent_help"] = questionnaires.URGENT_HELP
        return answer

    # ---- the therapist's focus and letter, and the risk flag -------------------------------

    def _owned(self, session: Session, who: Caller, course_id: str) -> CourseFacts:
        return self._course(session, who, course_id, None, for_update=True)

    @audited("focus_changed")
    def put_focus(self, caller: dict[str, Any], course_id: str, interpersonal: str,
                  affective: str) -> dict[str, Any]:
        who = Caller.from_rpc(caller)
        self._therapist_write(who, course_id)
        for name, value in (("interpersonal", interpersonal), ("affective", affective)):
            if not isinstance(value, str) or len(value) > 2000:
                raise InvalidRequest.field(name, "Text of at most 2000 characters.")
        now = self.now()
        with self.uow.transaction() as session:
            self._owned(session, who, course_id)
            repository.set_focus(session, course_id, interpersonal, affective, now)
        return {"interpersonal": interpersonal, "affective": affective,
                "updated_at": now.isoformat()}

    @audited("letter_changed")
    def put_letter(self, caller: dict[str, Any], course_id: str, text: str) -> dict[str, Any]:
        who = Caller.from_rpc(caller)
        self._therapist_write(who, course_id)
        if not isinstance(text, str) or len(text) > 20000:
            raise InvalidRequest.field("text", "Text of at most 20000 characters.")
        now = self.now()
        with self.uow.transaction() as session:
            course = self._owned(session, who, course_id)
            if course.letter_status == "shared":
                raise InvalidState("The letter has been shared; it is the client's now.")
            repository.set_letter(session, course_id, {"text": text, "status": "draft",
                                                       "updated_at": now})
        return {"status": "draft", "updated_at": now.isoformat()}

    @audited("letter_shared")
    def share_letter(self, caller: dict[str, Any], course_id: str) -> dict[str, Any]:
        who = Caller.from_rpc(caller)
        self._therapist_write(who, course_id)
        now = self.now()
        with self.uow.transaction() as session:
            course = self._owned(session, who, course_id)
            if course.letter_status is None or not (course.letter_text or "").strip():
                raise InvalidState("There is no letter to share yet.")
            if course.letter_status == "shared":  # shared once, told once
                return {"status": "shared", "shared_at": course.letter_shared_at.isoformat()}
            repository.set_letter(session, course_id, {"status": "shared", "shared_at": now})
            record(session, outbox, Event("letter_shared", {
                "course_id": course_id, "therapist_id": course.therapist_id}, SOURCE))
        return {"status": "shared", "shared_at": now.isoformat()}

    @audited("risk_seen")
    def mark_risk_seen(self, caller: dict[str, Any], course_id: str) -> dict[str, Any]:
        who = Caller.from_rpc(caller)
        self._therapist_write(who, course_id)
        with self.uow.transaction() as session:
            self._owned(session, who, course_id)
            repository.clear_risk(session, course_id)
        return {"course_id": course_id, "risk_unseen": False}

    # ---- personal data (docs/http-contract.md): export and erase, by the courses booking names

    def export_courses(self, caller: dict[str, Any], course_ids: list[str]
                       ) -> list[dict[str, Any]]:
        """Everything held about these courses (the admin's): this service keeps no name or
        address, so the client's courses are found by booking and named here."""
        Caller.from_rpc(caller).require_admin()
        now = self.now()
        with self.uow.reading() as session:
            found = []
            for course_id in course_ids:
                course = repository.course(session, course_id)
                if course is not None:
                    found.append({**journey.progress_view(
                        course, repository.course_check_ins(session, course_id), now,
                        for_therapist=True),
                        "answers": repository.course_answers(session, course_id)})
        return found

    def erase_courses(self, caller: dict[str, Any], course_ids: list[str]) -> int:
        """Remove what the client wrote and answered (answers, reflections) and what was
        written about them (focus, letter); the totals stay, anonymous. Returns how many
        courses held something."""
        Caller.from_rpc(caller).require_admin()
        with self.uow.transaction() as session:
            return sum(repository.erase_course(session, course_id) for course_id in course_ids)

