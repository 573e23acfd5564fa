"""A client's own calendar files, over HTTP: a booking's and a whole course's."""

from datetime import timedelta

import pytest
import requests
from icalendar import Calendar

from clinic.ical import event_uid
from tests.e2e.test_booking import CLIENT, next_slot, set_up_therapist

pytestmark = pytest.mark.e2e


def test_a_client_downloads_their_booking_and_course_and_nobody_else_can(clinic_factory,
                                                                        backend):
    clinic = clinic_factory(backend)
    therapist = set_up_therapist(clinic)
    client = {**CLIENT, "timezone": "America/New_York"}
    booking = requests.post(clinic.url("/api/v1/bookings"), timeout=30, json={
        "therapist_id": therapist, "session_type": "dit-assessment", "modality": "in_person",
        "start": next_slot(days=2).isoformat(), "client": client}).json()
    course = requests.post(clinic.url("/api/v1/courses"), timeout=60, json={
        "therapist_id": therapist, "session_type": "dit-session", "modality": "video",
        "first_start": (next_slot(days=3) + timedelta(hours=2)).isoformat(), "sessions": 16,
        "client": client}).json()
    third = course["sessions"][2]["booking_id"]
    requests.post(clinic.url(f"/api/v1/bookings/{third}/cancel"), json={}, timeout=30,
                  headers={"Authorization": f"Bearer {course['manage_token']}"}).raise_for_status()

    single = requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}.ics"), timeout=30,
                          params={"token": booking["manage_token"]})
    assert single.status_code == 200, single.text
    assert single.headers["Content-Type"] == "text/calendar; charset=utf-8"
    [event] = Calendar.from_ical(single.content).walk("VEVENT")
    assert str(event["UID"]) == event_uid(booking["id"])
    assert str(event["SUMMARY"]) == "DIT assessment with Dr Ray"
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert str(event["LOCATION"]) == booking["room"]

    whole = requests.get(clinic.url(f"/api/v1/courses/{course['id']}.ics"), timeout=30,
                         params={"token": course["manage_token"]})
    assert whole.status_code == 200, whole.text
    events = Calendar.from_ical(whole.content).walk("VEVENT")
    assert len(events) == 16
    cancelled = next(e for e in events if str(e["UID"]) == event_uid(third))
    assert str(cancelled["STATUS"]) == "CANCELLED" and int(cancelled["SEQUENCE"]) == 1
    assert str(cancelled["SUMMARY"]) == "DIT session 3/16 with Dr Ray"
    assert "ada@example.org" not in whole.text

    # another client's token, or none, never gets the file
    other = requests.get(clinic.url(f"/api/v1/courses/{course['id']}.ics"), timeout=30,
                         params={"token": booking["manage_token"]})
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    anonymous = requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}.ics"), timeout=30)
    assert anonymous.status_code == 401
    # the booking's own JSON route still answers beside its .ics
    assert requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}"), timeout=30,
                        params={"token": booking["manage_token"]}).json()["id"] == booking["id"]
