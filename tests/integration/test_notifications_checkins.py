"""Check-in invitations, risk alerts and the shared-letter notice through the notifications
service, on SQLite and PostgreSQL: each goes once, and no health data is in any of them (when
they are due: tests/unit/test_notifications_checkin_rules.py)."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.test_notifications_delivery import log, mails, world  # noqa: F401
from tests.unit.test_notifications import START, course_dict, course_sessions, event


def course_booked(world) -> list[dict]:  # noqa: F811
    sessions = course_sessions(16)
    world.on_course_booked(event("course_booked", {"course": course_dict(sessions)}, "evt-c"))
    return sessions


def progress_event(kind: str, data: dict, event_id: str) -> dict:
    return {**event(kind, data, event_id), "source": "progress"}


def readable(message) -> str:
    """Subject and every text part, decoded: what a reader (or a mail store) sees."""
    parts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    return "\n".join([str(message["Subject"]), *parts])


def invites(world) -> list[dict]:  # noqa: F811
    return [e for e in log(world) if e["kind"] == "checkin_invite"]


def test_invitations_go_once_with_the_progress_link_and_none_once_checked_in(world):  # noqa: F811
    course_booked(world)
    world.clock.now = START - timedelta(hours=47)  # session 1's window is open
    world.send_due()
    world.send_due()
    (invite,) = invites(world)
    assert invite["booking_id"] == "bk-1" and invite["status"] == "sent"
    message = next(m for m in mails(world.folder) if "check-in" in m["Subject"])
    text = message.get_body(("plain",)).get_content()
    assert "https://clinic.example/progress?token=mng_course_crs-1&course=crs-1" in text
    assert "session 1 of 16" in message["Subject"]
    # session 2's check-in is in before its window opens: no invitation for it
    world.on_checkin_submitted(progress_event("checkin_submitted", {
        "check_in_id": "ci-2", "course_id": "crs-1", "booking_id": "bk-2",
        "session_number": 2, "therapist_id": "dr-jo", "risk": False}, "evt-ci-2"))
    world.clock.now = START + timedelta(weeks=1) - timedelta(hours=47)
    world.send_due()
    assert [e["booking_id"] for e in invites(world)] == ["bk-1"]
    world.clock.now = START + timedelta(weeks=2) - timedelta(hours=47)
    world.send_due()
    assert [e["booking_id"] for e in invites(world)] == ["bk-1", "bk-3"]


def test_a_rescheduled_session_is_invited_for_at_its_new_time_a_cancelled_one_not(
        world):  # noqa: F811
    sessions = course_booked(world)
    moved = dict(sessions[1], start=(START + timedelta(days=10)).isoformat(),
                 end=(START + timedelta(days=10, minutes=50)).isoformat(), sequence=1)
    world.on_booking_rescheduled(event("booking_rescheduled", {"booking": moved,
                                                               "previous": sessions[1]}))
    world.on_booking_cancelled(event("booking_cancelled", {
        "booking": dict(sessions[2], status="cancelled", sequence=1)}))
    world.clock.now = START + timedelta(weeks=1) - timedelta(hours=47)  # session 2's old time
    world.send_due()
    assert invites(world) == []
    world.clock.now = START + timedelta(days=10) - timedelta(hours=47)
    world.send_due()
    assert [e["booking_id"] for e in invites(world)] == ["bk-2"]
    world.clock.now = START + timedelta(weeks=2) - timedelta(hours=47)  # session 3: cancelled
    world.send_due()
    assert [e["booking_id"] for e in invites(world)] == ["bk-2"]


def test_a_risk_alert_goes_to_the_therapist_once_with_no_health_data(world):  # noqa: F811
    course_booked(world)
    before = len(mails(world.folder))
    flagged = progress_event("checkin_submitted", {
        "check_in_id": "ci-1", "course_id": "crs-1", "booking_id": "bk-1", "session_number": 1,
        "therapist_id": "dr-jo", "risk": True}, "evt-risk")
    world.on_checkin_submitted(flagged)
    world.on_checkin_submitted(flagged)  # redelivered
    world.on_checkin_submitted({**flagged, "id": "evt-risk-again"})  # re-published
    (alert,) = [e for e in log(world) if e["kind"] == "risk_alert"]
    assert alert["recipient"] == "dr-jo@clinic.example" and alert["status"] == "sent"
    (message,) = mails(world.folder)[before:]
    text = readable(message)
    assert "https://clinic.example/therapist?course=crs-1" in text and "A.L." in text
    for private in ("Ann Lee", "ann@example.org", "PHQ", "GAD", "score", "answer"):
        assert private not in text
    calm = {**flagged, "id": "evt-calm", "data": {**flagged["data"], "check_in_id": "ci-2",
                                                   "risk": False}}
    world.on_checkin_submitted(calm)
    assert len([e for e in log(world) if e["kind"] == "risk_alert"]) == 1


def test_a_shared_letter_is_announced_to_the_client_without_its_text(world):  # noqa: F811
    course_booked(world)
    before = len(mails(world.folder))
    shared = progress_event("letter_shared", {"course_id": "crs-1", "therapist_id": "dr-jo"},
                            "evt-letter")
    world.on_letter_shared(shared)
    world.on_letter_shared(shared)
    (message,) = mails(world.folder)[before:]
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    text = readable(message)
    assert "progress?token=mng_course_crs-1&amp;course=crs-1" in text
    assert [e["kind"] for e in log(world)].count("letter_shared") == 1
