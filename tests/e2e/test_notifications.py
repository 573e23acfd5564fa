"""Notifications with the whole system running, mail caught by aiosmtpd in this process.

A booking made over HTTP reaches the client and therapist as mail with an invitation whose
manage link works; the delivery log is the admin's and that therapist's; a reminder goes when its
window opens (REMINDER_HOURS chosen so it opens while the test waits); a cancellation sends
METHOD:CANCEL.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import eventlet
import pytest
import requests

from clinic import ical
from tests.conftest import free_port
from tests.integration.test_notifications import SmtpServer, calendar_of, wait_until

pytestmark = pytest.mark.e2e

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Reminders go this long before a session. The session is chosen once the clinic is up (however
# long it took to start), so its reminder window opens a little after it was booked.
REMINDER_LEAD = timedelta(minutes=2)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_start() -> datetime:
    """A whole minute at least 30 s past the reminder lead from now: booked now, the session's
    reminder window opens 30-90 s later."""
    soon = datetime.now(UTC) + REMINDER_LEAD + timedelta(seconds=30)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


def schedule_zone(start: datetime) -> str:
    """A fixed-offset zone where ``start`` falls near noon, so its rule never crosses midnight."""
    return f"Etc/GMT{start.hour - 12:+d}"  # POSIX: Etc/GMT+N is N hours behind UTC


@pytest.fixture
def smtp():
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def setting(request, clinic_factory, smtp):
    clinic = clinic_factory(request.param, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                            SMTP_FROM="clinic@clinic.example", NOTIFICATIONS_POLL_SECONDS="0.5",
                            REMINDER_HOURS=f"{REMINDER_LEAD.total_seconds() / 3600:.6f}",
                            CLINIC_VIDEO_BASE_URL="https://meet.example")
    return clinic, session_start()


def add_therapist(clinic, therapist_id: str, email: str, start: datetime) -> str:
    """A therapist whose day (in a zone where ``start`` is near noon) begins at ``start``, on a
    5-minute grid."""
    zone = schedule_zone(start)
    opens = start.astimezone(ZoneInfo(zone)).strftime("%H:%M")
    created = requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, json={
        "id": therapist_id, "name": "Jo Marsh", "email": email, "specialties": ["DIT"],
        "modalities": ["video", "phone"], "timezone": "Europe/London"})
    assert created.status_code == 201, created.text
    schedule = requests.put(clinic.url(f"/api/v1/therapists/{therapist_id}/schedule"),
                            headers=clinic.admin, json={
        "timezone": zone,
        "weekly": [{"weekday": d, "start": opens, "end": "23:59", "modalities": ["video"]}
                   for d in WEEKDAYS],
        "slot_interval_minutes": 5, "min_notice_hours": 0, "buffer_minutes": 0})
    assert schedule.status_code == 200, schedule.text
    token = requests.post(clinic.url(f"/api/v1/therapists/{therapist_id}/tokens"),
                          headers=clinic.admin)
    assert token.status_code == 201, token.text
    return token.json()["token"]


def test_booking_mail_log_reminder_and_cancellation(setting, smtp):
    clinic, start = setting
    jo = add_therapist(clinic, "dr-jo", "jo@clinic.example", start)
    other = add_therapist(clinic, "dr-no", "no@clinic.example", start)
    booked = requests.post(clinic.url("/api/v1/bookings"), json={
        "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
        "start": start.isoformat(), "client": {"name": "Ann Lee", "email": "ann@example.org",
                                               "phone": "+447700900123"}})
    assert booked.status_code == 201, booked.text
    booking = booked.json()
    wait_until(lambda: len(smtp.messages) == 2, seconds=30)

    (to_client,) = smtp.to("ann@example.org")
    method, cal = calendar_of(to_client)
    assert method == "REQUEST"
    assert str(cal.walk("VEVENT")[0]["UID"]) == ical.event_uid(booking["id"])
    text = to_client.get_body(("plain",)).get_content()
    link = next(word for word in text.split() if "/manage?token=" in word)
    assert link.startswith(clinic.base_url + "/manage?token=")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["booking"] == [booking["id"]]  # the manage page knows what to open
    token = query["token"][0]
    mine = requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}"), params={"token": token})
    assert mine.status_code == 200 and mine.json()["id"] == booking["id"]
    assert len(smtp.to("jo@clinic.example")) == 1

    log_url = clinic.url("/api/v1/notifications")
    query = {"booking_id": booking["id"]}
    assert requests.get(log_url, params=query).status_code == 401
    assert requests.get(log_url, params=query, headers=bearer(other)).status_code == 403
    entries = requests.get(log_url, params=query, headers=bearer(jo)).json()
    assert sorted((e["kind"], e["channel"], e["recipient"], e["status"]) for e in entries) == [
        ("confirmation", "email", "ann@example.org", "sent"),
        ("confirmation", "email", "jo@clinic.example", "sent")]
    assert requests.get(log_url, params=query, headers=clinic.admin).json() == entries

    def reminded() -> list[dict]:
        listed = requests.get(log_url, params=query, headers=clinic.admin).json()
        return [e for e in listed if e["kind"] == "reminder" and e["status"] == "sent"]

    wait_until(lambda: len(reminded()) == 2, seconds=120)  # email and SMS, to the client
    assert sorted(e["channel"] for e in reminded()) == ["email", "sms"]
    assert smtp.to("ann@example.org")[-1]["Subject"].startswith("Reminder: your DIT session")

    cancelled = requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/cancel"),
                              headers=clinic.admin, json={})
    assert cancelled.status_code == 200, cancelled.text
    wait_until(lambda: len(smtp.messages) == 5, seconds=30)
    for address in ("ann@example.org", "jo@clinic.example"):
        method, cal = calendar_of(smtp.to(address)[-1])
        assert method == "CANCEL" and str(cal.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    eventlet.sleep(1)
    assert len(smtp.messages) == 5  # nothing twice
