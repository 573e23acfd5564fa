"""Where a course is and what its check-ins say: pure functions of what progress knows.

A course's sessions come from booking's events (``sessions_of_event``); a check-in belongs to
the course's next session that has not ended (``check_in_target``), so session 1's is the
baseline; the progress answer (``progress_view``) puts phases, schedule, scores and the
verdicts of ``scoring`` together, showing the client the letter only once it is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clinic import phases
from clinic.errors import InvalidState
from clinic.ical import instant
from services.progress import scoring
from services.progress.questionnaires import GAD7, PHQ9

LIVE = ("confirmed", "attended", "no_show")
COURSE_EVENTS = ("course_booked", "course_cancelled")
BOOKING_EVENTS = ("booking_confirmed", "booking_rescheduled", "booking_cancelled",
                  "attendance_marked")


@dataclass(frozen=True)
class KnownSession:
    booking_id: str
    course_id: str
    number: int
    start: datetime
    end: datetime
    status: str
    sequence: int

    @property
    def live(self) -> bool:
        return self.status in LIVE


@dataclass(frozen=True)
class CourseFacts:
    id: str
    therapist_id: str
    session_count: int
    status: str
    sessions: list[KnownSession] = field(default_factory=list)
    focus: dict[str, Any] | None = None
    letter_text: str | None = None
    letter_status: str | None = None
    letter_updated_at: datetime | None = None
    letter_shared_at: datetime | None = None
    risk_unseen_since: datetime | None = None


@dataclass(frozen=True)
class CheckIn:
    id: str
    course_id: str
    session_number: int
    booking_id: str
    submitted_at: datetime
    phq9_total: int
    gad7_total: int
    risk: bool
    reflection: str | None

    def totals(self) -> dict[str, int]:
        return {"phq9": self.phq9_total, "gad7": self.gad7_total}


@dataclass(frozen=True)
class EventCourse:
    """What one booking event says about a course: who, how long, its sessions' states."""

    course_id: str
    therapist_id: str
    session_count: int
    sessions: list[KnownSession]
    status: str | None = None  # the course's own status, when the event carries it


def _session(booking: dict[str, Any]) -> KnownSession:
    return KnownSession(booking_id=booking["id"], course_id=booking["course_id"],
                        number=int(booking["session_number"]), start=instant(booking["start"]),
                        end=instant(booking["end"]), status=booking["status"],
                        sequence=int(booking.get("sequence") or 0))


def sessions_of_event(event: dict[str, Any]) -> EventCourse | None:
    """The course facts in a booking event; None for an event about no course session."""
    data = event.get("data") or {}
    if event.get("type") in COURSE_EVENTS:
        course = data["course"]
        sessions = [_session(b) for b in course["sessions"]]
        count = max([len(sessions)] + [int(b.get("course_sessions") or 0)
                                        for b in course["sessions"]])
        return EventCourse(course["id"], course["therapist_id"], count, sessions,
                           course.get("status"))
    if event.get("type") in BOOKING_EVENTS:
        booking = data.get("booking") or {}
        if not booking.get("course_id") or not booking.get("session_number"):
            return None
        return EventCourse(booking["course_id"], booking["therapist_id"],
                           int(booking.get("course_sessions") or booking["session_number"]),
                           [_session(booking)])
    return None


def live_sessions(course: CourseFacts) -> list[KnownSession]:
    return sorted((s for s in course.sessions if s.live), key=lambda s: (s.start, s.number))


def next_session(course: CourseFacts, now: datetime) -> KnownSession | None:
    """The first session not cancelled that has not ended yet."""
    return next((s for s in live_sessions(course) if s.end > now), None)


def check_in_target(course: CourseFacts, taken: set[int], now: datetime) -> KnownSession:
    """The session a check-in made now belongs to, or InvalidState (409) why there is none."""
    if course.status == "cancelled":
        raise InvalidState("This course was cancelled; check-ins are closed.")
    target = next_session(course, now)
    if target is None:
        raise InvalidState("This course has ended; check-ins are closed.")
    if target.number in taken:
        raise InvalidState(f"The check-in for session {target.number} is already in.",
                           {"session_number": target.number})
    return target


def current_phase(course: CourseFacts, now: datetime) -> str | None:
    upcoming = next_session(course, now)
    if upcoming is not None:
        return phases.phase_of(upcoming.number, course.session_count)
    live = live_sessions(course)
    return phases.phase_of(live[-1].number, course.session_count) if live else None


def check_in_view(check_in: CheckIn, session_count: int) -> dict[str, Any]:
    return {
        "id": check_in.id,
        "session_number": check_in.session_number,
        "phase": phases.phase_of(check_in.session_number, session_count),
        "submitted_at": check_in.submitted_at.isoformat(),
        "phq9": {"total": check_in.phq9_total,
                 "severity": scoring.severity(PHQ9, check_in.phq9_total)},
        "gad7": {"total": check_in.gad7_total,
                 "severity": scoring.severity(GAD7, check_in.gad7_total)},
        "risk": check_in.risk,
        "reflection": check_in.reflection,
    }


def session_view(session: KnownSession, session_count: int) -> dict[str, Any]:
    return {"number": session.number, "booking_id": session.booking_id,
            "start": session.start.isoformat(), "end": session.end.isoformat(),
            "status": session.status, "phase": phases.phase_of(session.number, session_count)}


def letter_view(course: CourseFacts, for_therapist: bool) -> dict[str, Any] | None:
    if course.letter_status is None:
        return None
    if course.letter_status != "shared" and not for_therapist:
        return None  # the client sees the letter only once it is shared
    return {"status": course.letter_status, "text": course.letter_text,
            "updated_at": course.letter_updated_at and course.letter_updated_at.isoformat(),
            "shared_at": course.letter_shared_at and course.letter_shared_at.isoformat()}


def progress_view(course: CourseFacts, found: list[CheckIn], now: datetime,
                  for_therapist: bool) -> dict[str, Any]:
    """The progress answer of docs/http-contract.md, with the schedule and the open check-in
    as extensions."""
    ordered = sorted(found, key=lambda c: c.session_number)
    verdict = scoring.outcome([c.totals() for c in ordered])
    upcoming = next_session(course, now)
    live = live_sessions(course)
    taken = {c.session_number for c in ordered}
    open_for = (upcoming.number if upcoming is not None and course.status != "cancelled"
                and upcoming.number not in taken else None)
    view: dict[str, Any] = {
        "course_id": course.id,
        "status": course.status,
        "sessions": course.session_count,
        "phases": [p.as_dict() for p in phases.phases(course.session_count)],
        "current_phase": current_phase(course, now),
        "next_session": session_view(upcoming, course.session_count) if upcoming else None,
        "first_start": live[0].start.isoformat() if live else None,
        "last_end": live[-1].end.isoformat() if live else None,
        "schedule": [session_view(s, course.session_count)
                     for s in sorted(course.sessions, key=lambda s: s.number)],
        "check_in_open_for": open_for,
        "check_ins": [check_in_view(c, course.session_count) for c in ordered],
        "baseline": verdict.baseline,
        "latest": verdict.latest,
        "reliable_improvement": verdict.reliable_improvement,
        "reliable_deterioration": verdict.reliable_deterioration,
        "recovery": verdict.recovery,
        "focus": course.focus,
        "letter": letter_view(course, for_therapist),
    }
    if for_therapist:
        view["risk_unseen"] = course.risk_unseen_since is not None
    return view


def therapist_summary(course: CourseFacts, found: list[CheckIn], now: datetime
                      ) -> dict[str, Any]:
    """One row of a therapist's course list: where it is and whether a risk awaits them."""
    ordered = sorted(found, key=lambda c: c.session_number)
    upcoming = next_session(course, now)
    return {"course_id": course.id, "therapist_id": course.therapist_id,
            "status": course.status, "sessions": course.session_count,
            "current_phase": current_phase(course, now),
            "next_session": upcoming.number if upcoming else None,
            "check_ins": len(ordered),
            "latest": ordered[-1].totals() if ordered else None,
            "risk_unseen": course.risk_unseen_since is not None}
