"""When a check-in invitation is due (services/notifications/checkins.py): pure rules."""

from __future__ import annotations

from datetime import timedelta

from services.notifications import checkins
from services.notifications.schedule import KnownSession
from tests.unit.test_notifications import START, booking_dict

HOURS = 48.0


def known(number: int = 2, start=START, scheduled_at=None, status="confirmed",
          course_id="crs-1") -> KnownSession:
    booking = booking_dict(number, start)
    return KnownSession(booking["id"], course_id, "dr-jo", start, start + timedelta(minutes=50),
                        status, scheduled_at or start - timedelta(days=30), booking)


def test_an_invitation_is_due_checkin_hours_before_a_course_session():
    session = known()
    opens = START - timedelta(hours=HOURS)
    assert not checkins.invitation_due(session, opens - timedelta(seconds=1), HOURS, set())
    assert checkins.invitation_due(session, opens, HOURS, set())
    assert checkins.invitation_due(session, START - timedelta(minutes=1), HOURS, set())
    assert not checkins.invitation_due(session, START, HOURS, set())


def test_no_invitation_when_booked_inside_the_window_cancelled_checked_in_or_no_course():
    now = START - timedelta(hours=10)
    assert not checkins.invitation_due(known(scheduled_at=START - timedelta(hours=20)), now,
                                       HOURS, set())
    assert not checkins.invitation_due(known(status="cancelled"), now, HOURS, set())
    assert not checkins.invitation_due(known(), now, HOURS, {"bk-2"})
    assert not checkins.invitation_due(known(course_id=None), now, HOURS, set())
