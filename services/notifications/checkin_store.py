"""The database side of check-in invitations, risk alerts and shared letters.

Every function takes the caller's session, so a progress event's notices commit with its
``processed_events`` row, as booking events' do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinic.sql import upsert
from clinic.wire import utc
from services.notifications import checkins
from services.notifications.models import checked_in, notifications, sessions
from services.notifications.repository import _known, add_notices, course_sessions


def apply_progress_event(session: Session, event: dict[str, Any], now: datetime) -> int:
    """Record what a progress event says and the notices it calls for; returns how many."""
    data = event["data"]
    known = course_sessions(session, data["course_id"])
    if event["type"] == "checkin_submitted":
        if data.get("booking_id"):
            session.execute(upsert(session, checked_in).values(
                booking_id=data["booking_id"], course_id=data["course_id"],
                recorded_at=utc(now)).on_conflict_do_nothing(index_elements=["booking_id"]))
            # an invitation not yet out for a session whose check-in is in is withdrawn
            session.execute(delete(notifications).where(
                notifications.c.booking_id == data["booking_id"],
                notifications.c.kind == "checkin_invite", notifications.c.status == "pending",
                notifications.c.attempts == 0))
        return add_notices(session, checkins.risk_alert(event, known), now)
    if event["type"] == "letter_shared":
        return add_notices(session, checkins.letter_shared(event, known), now)
    return 0


def plan_invitations(session: Session, now: datetime, hours: float) -> int:
    """Add the check-in invitations due at ``now``; returns how many were new."""
    now = utc(now)
    upcoming = session.execute(select(sessions).where(
        sessions.c.status == "confirmed", sessions.c.course_id.is_not(None),
        sessions.c.start > now, sessions.c.start <= now + timedelta(hours=hours))).all()
    if not upcoming:
        return 0
    done = set(session.execute(select(checked_in.c.booking_id).where(
        checked_in.c.booking_id.in_([r.booking_id for r in upcoming]))).scalars())
    found = []
    for known in checkins.due_invitations([_known(r) for r in upcoming], now, hours, done):
        found += checkins.invitation(known)
    return add_notices(session, found, now)
