"""Notifications with the whole system running, mail caught by aiosmtpd in this process.

A booking made over HTTP reaches the client and therapist as mail with an invitation whose
manage link works; the delivery log is the admin's and that therapist's; a reminder goes when its
window opens (REMINDER_HOURS chosen so it opens while the test waits); a cancellation sends
METHOD:CANCEL.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
import requests

from clinic import ical
from tests.conftest import free_port
from tests.integration.test_notifications import SmtpServer, calendar_of, wait_until

pytestmark = pytest.mark.e2e

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WINDOW_OPENS_AFTER = timedelta(seconds=45)  # time enough to start the clinic and book


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def next_grid_time(after: datetime) -> datetime:
    """The first 5-minute mark at or after ``after`` (the schedule's slot grid)."""
    base = after.replace(second=0, microsecond=0)
    return base + timedelta(minutes=(-base.minute) % 5 or (5 if base < after else 0))


@pytest.fixture
def smtp():
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def setting(request, clinic_factory, smtp):
    began = datetime.now(UTC)
    start = next_grid_time(began + timedelta(minutes=4))
    lead_hours = (start - began - WINDOW_OPENS_AFTER).total_seconds() / 3600
    clinic = clinic_factory(request.param, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                            SMTP_FROM="clinic@clinic.example", NOTIFICATIONS_POLL_SECONDS="0.5",
                            REMINDER_HOURS=f"{lead_hours:.6f}",
                            CLINIC_VIDEO_BASE_URL="https://meet.example")
    return clinic, start


def add_therapist(clinic, therapist_id: str, email: str) -> str:
    created = requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, json={
        "id": therapist_id, "name": "Jo Marsh", "email": email, "specialties": ["DIT"],
        "modalities": ["video", "phone"], "timezone": "Europe/London"})
    assert created.status_code == 201, created.text
    schedule = requests.put(clinic.url(f"/api/v1/therapists/{therapist_id}/schedule"),
                            headers=clinic.admin, json={
        "weekly": [{"weekday": d, "start": "00:00", "end": "23:59", "modalities": ["video"]}
                   for d in WEEKDAYS],
        "slot_interval_minutes": 5, "min_notice_hours": 0, "buffer_minutes": 0})
    assert schedule.status_code == 200, schedule.text
    token = requests.post(clinic.url(f"/api/v1/therapists/{therapist_id}/tokens"),
                          headers=clinic.admin)
    assert token.status_code == 201, token.text
    return token.json()["token"]


def test_booking_mail_log_reminder_and_cancellation(setting, smtp):
    clinic, start = setting
    jo = add_therapist(clinic, "dr-jo", "jo@clinic.example")
    other = add_therapist(clinic, "dr-no", "no@clinic.example")
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
