"""When reminders and end-of-course notices are due: pure functions of known sessions and now.

Reminders: ``REMINDER_HOURS`` before each confirmed session, but only for a session whose current
time was known before that window opened (one booked or moved inside it got its confirmation or
reschedule email just now, which is reminder enough). A reminder is keyed by the session *and*
its start, so a rescheduled session is reminded of again at its new time, and a cancelled one
is not reminded of at all.

End of course: the notice goes when ``COURSE_ENDING_NOTICE_SESSIONS`` (N) sessions remain, i.e.
once the session before the last N (counting sessions not cancelled) has ended, and up to the
start of the final session. A course of N sessions or fewer is all ending and gets no notice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

ACTIVE = ("confirmed", "attended", "no_show")


@dataclass(frozen=True)
class KnownSession:
    booking_id: str
    course_id: str | None
    therapist_id: str
    start: datetime
    end: datetime
    status: str
    scheduled_at: datetime
    booking: dict[str, Any]

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def reminder_opens(session: KnownSession, hours: float) -> datetime:
    return session.start - timedelta(hours=hours)


def reminder_due(session: KnownSession, now: datetime, hours: float) -> bool:
    opens = reminder_opens(session, hours)
    return (session.status == "confirmed" and opens <= now < session.start
            and session.scheduled_at <= opens)


def due_reminders(sessions: Iterable[KnownSession], now: datetime,
                  hours: float) -> list[KnownSession]:
    return [s for s in sessions if reminder_due(s, now, hours)]


def active_in_order(course_sessions: Iterable[KnownSession]) -> list[KnownSession]:
    return sorted((s for s in course_sessions if s.active), key=lambda s: s.start)


def ending_phase_starts(course_sessions: Iterable[KnownSession], remaining: int
                        ) -> datetime | None:
    """The end of the session that leaves ``remaining`` to come; None if there is none."""
    active = active_in_order(course_sessions)
    if remaining < 1 or len(active) <= remaining:
        return None
    return active[-remaining - 1].end


def ending_notice_due(course_sessions: Iterable[KnownSession], now: datetime,
                      remaining: int) -> bool:
    sessions = list(course_sessions)
    begins = ending_phase_starts(sessions, remaining)
    if begins is None:
        return False
    return begins <= now < active_in_order(sessions)[-1].start


def course_summary(course_id: str, course_sessions: Iterable[KnownSession]) -> dict[str, Any]:
    """What a letter says about the course: how many sessions, first start, last end."""
    active = active_in_order(course_sessions)
    return {
        "id": course_id,
        "sessions": len(active),
        "first_start": active[0].start.isoformat() if active else None,
        "last_end": active[-1].end.isoformat() if active else None,
    }
