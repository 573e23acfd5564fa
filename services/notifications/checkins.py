"""What the progress service's events and the course sessions call for: check-in invitations,
risk alerts and the shared-letter notice. Pure functions of known sessions, events and now.

A check-in invitation goes ``CHECKIN_HOURS`` before each course session that is confirmed,
only if the session had its current time before that window opened (one booked or moved inside
it gets none), and never once that session's check-in is in. It is keyed by the session and
its start, so a rescheduled session is invited for at its new time and a cancelled one not at
all. Progress events carry ids and the risk flag only, and so do these notices' payloads:
no answer, score, reflection or letter is ever here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from clinic.ical import client_initials
from services.notifications.notices import Notice
from services.notifications.schedule import KnownSession

PROGRESS_KINDS = ("checkin_invite", "risk_alert", "letter_shared")


def invitation_due(session: KnownSession, now: datetime, hours: float,
                   checked_in: set[str]) -> bool:
    opens = session.start - timedelta(hours=hours)
    return (session.course_id is not None and session.status == "confirmed"
            and opens <= now < session.start and session.scheduled_at <= opens
            and session.booking_id not in checked_in)


def due_invitations(sessions: Iterable[KnownSession], now: datetime, hours: float,
                    checked_in: set[str]) -> list[KnownSession]:
    return [s for s in sessions if invitation_due(s, now, hours, checked_in)]


def invitation(session: KnownSession) -> list[Notice]:
    """To the client, by email: the session it is for and the /progress link (made when sent)."""
    booking = session.booking
    client = booking.get("client") or {}
    if not client.get("email"):
        return []
    payload = {"client": {"name": client.get("name"), "email": client["email"],
                          "timezone": client.get("timezone")},
               "session": {"number": booking.get("session_number"),
                           "of": booking.get("course_sessions"),
                           "start": session.start.isoformat()}}
    return [Notice(f"checkin_invite:{session.booking_id}@{session.start.isoformat()}",
                   "checkin_invite", "client", "email", client["email"], session.therapist_id,
                   session.booking_id, session.course_id, payload)]


def _client(course_sessions: list[KnownSession]) -> dict[str, Any]:
    return next(((s.booking.get("client") or {}) for s in course_sessions), {})


def risk_alert(event: dict[str, Any], course_sessions: list[KnownSession]) -> list[Notice]:
    """To the therapist at once, once per check-in; nothing of the answers, only that a risk
    was flagged, the client's initials (as in calendar subjects) and where to look."""
    data = event["data"]
    if not data.get("risk"):
        return []
    initials = client_initials(_client(course_sessions).get("name") or "")
    payload = {"course_id": data["course_id"], "client_initials": initials,
               "session_number": data.get("session_number")}
    return [Notice(f"risk_alert:{data['check_in_id']}", "risk_alert", "therapist", "email",
                   None, data["therapist_id"], data.get("booking_id"), data["course_id"],
                   payload)]


def letter_shared(event: dict[str, Any], course_sessions: list[KnownSession]) -> list[Notice]:
    """To the client: a letter is waiting on their progress page (the letter is not here)."""
    data = event["data"]
    client = _client(course_sessions)
    if not client.get("email"):
        return []
    payload = {"client": {"name": client.get("name"), "email": client["email"],
                          "timezone": client.get("timezone")}}
    return [Notice(f"letter_shared:{data['course_id']}", "letter_shared", "client", "email",
                   client["email"], data["therapist_id"], None, data["course_id"], payload)]
