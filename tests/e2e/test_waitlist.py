"""The waitlist with the whole system running, mail caught by aiosmtpd in this process.

A waiting client gets an offer email within seconds of a cancellation that fits, follows its
link, accepts and is booked (with the normal confirmation email); a decline passes the time to
the next client at once.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.e2e.test_notifications import (  # noqa: F401 (the smtp fixture)
    WEEKDAYS,
    add_therapist,
    bearer,
    schedule_zone,
    smtp,
)
from tests.integration.test_notifications import wait_until

pytestmark = pytest.mark.e2e

EVERY_DAY = [{"weekday": d, "start": "00:00", "end": "23:59"} for d in WEEKDAYS]


@pytest.fixture(params=["sqlite", "postgresql"])
def clinic(request, clinic_factory, smtp):  # noqa: F811
    return clinic_factory(request.param, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                          SMTP_FROM="clinic@clinic.example", NOTIFICATIONS_POLL_SECONDS="0.5")


def book(clinic, start: datetime, email: str) -> dict:
    booked = requests.post(clinic.url("/api/v1/bookings"), json={
        "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
        "start": start.isoformat(), "client": {"name": "Ann Lee", "email": email}})
    assert booked.status_code == 201, booked.text
    return booked.json()


def free_time(hours: int) -> datetime:
    """A whole minute some hours ahead: the therapist's day opens there (add_therapist)."""
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(second=0, microsecond=0)


def join(clinic, email: str, start: datetime) -> dict:
    """Waiting for any time of the day, in a zone where ``start`` is near noon."""
    joined = requests.post(clinic.url("/api/v1/waitlist"), json={
        "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
        "windows": EVERY_DAY, "tz": schedule_zone(start),
        "client": {"name": "Bea Cole", "email": email}})
    assert joined.status_code == 201, joined.text
    return joined.json()


def offer_link(smtp, email: str) -> tuple[str, str]:  # noqa: F811
    """The (token, entry) of the offer letter's link."""
    letter = next(m for m in smtp.to(email)
                  if m["Subject"].strip().startswith("A time has come free"))
    text = letter.get_body(("plain",)).get_content()
    link = next(word for word in text.split() if "/waitlist?" in word)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    return query["token"][0], query["entry"][0]


def offered(smtp, email: str) -> bool:  # noqa: F811
    return any(m["Subject"].strip().startswith("A time has come free") for m in smtp.to(email))


def test_a_cancellation_is_offered_by_email_accepted_and_booked(clinic, smtp):  # noqa: F811
    start = free_time(2)
    add_therapist(clinic, "dr-jo", "jo@clinic.example", start)
    booking = book(clinic, start, "ann@example.org")
    bea = join(clinic, "bea@example.org", start)
    cy = join(clinic, "cy@example.org", start)
    assert requests.get(clinic.url(f"/api/v1/waitlist/{bea['id']}")).status_code == 401

    cancelled = datetime.now(UTC)
    assert requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/cancel"),
                         headers=clinic.admin, json={}).status_code == 200
    wait_until(lambda: offered(smtp, "bea@example.org"), seconds=15)
    assert datetime.now(UTC) - cancelled < timedelta(seconds=15)
    token, entry_id = offer_link(smtp, "bea@example.org")
    assert entry_id == bea["id"]
    entry = requests.get(clinic.url(f"/api/v1/waitlist/{entry_id}"), headers=bearer(token))
    assert entry.status_code == 200, entry.text
    offer = entry.json()["offer"]
    assert entry.json()["status"] == "offered" and offer["start"] == start.isoformat()
    # held: a direct booking of that time is refused meanwhile
    assert requests.post(clinic.url("/api/v1/bookings"), json={
        "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
        "start": start.isoformat(),
        "client": {"name": "Dee", "email": "dee@example.org"}}).status_code == 409

    accepted = requests.post(clinic.url(f"/api/v1/waitlist/{entry_id}/accept"),
                             headers=bearer(token),
                             json={"offer_id": offer["id"]})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["status"] == "confirmed"
    wait_until(lambda: any(m["Subject"].strip().startswith("Confirmed")
                           for m in smtp.to("bea@example.org")), seconds=15)
    after = requests.get(clinic.url(f"/api/v1/waitlist/{entry_id}"), headers=clinic.admin)
    assert after.json()["status"] == "booked"
    assert not offered(smtp, "cy@example.org")
    listed = requests.get(clinic.url("/api/v1/waitlist"), params={"therapist_id": "dr-jo"},
                          headers=clinic.admin)
    assert [e["id"] for e in listed.json()] == [bea["id"], cy["id"]]


def test_a_decline_passes_the_time_to_the_next_client(clinic, smtp):  # noqa: F811
    start = free_time(3)
    add_therapist(clinic, "dr-jo", "jo@clinic.example", start)
    booking = book(clinic, start, "ann@example.org")
    bea, cy = join(clinic, "bea@example.org", start), join(clinic, "cy@example.org", start)
    requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/cancel"),
                  headers=clinic.admin, json={})
    wait_until(lambda: offered(smtp, "bea@example.org"), seconds=15)
    token, _ = offer_link(smtp, "bea@example.org")
    offer = requests.get(clinic.url(f"/api/v1/waitlist/{bea['id']}"),
                         headers=bearer(token)).json()["offer"]
    declined = requests.post(clinic.url(f"/api/v1/waitlist/{bea['id']}/decline"),
                             headers=bearer(token),
                             json={"offer_id": offer["id"]})
    assert declined.status_code == 200, declined.text
    wait_until(lambda: offered(smtp, "cy@example.org"), seconds=15)
    cy_token, entry_id = offer_link(smtp, "cy@example.org")
    assert entry_id == cy["id"]
    left = requests.delete(clinic.url(f"/api/v1/waitlist/{bea['id']}"),
                           headers=bearer(token))
    assert left.status_code == 204
    assert requests.get(clinic.url(f"/api/v1/waitlist/{bea['id']}"),
                        headers=bearer(token)).json()["status"] == "left"
