"""A hold extended once over HTTP, and the clinic's own description, on the whole system.

The extension must reach availability: after the hold's first expiry the slot stays withheld
until the new one (a repeated ``hold_placed`` with the later ``expires_at``).
"""

import time
from datetime import datetime, timedelta

import pytest
import requests

from tests.e2e.test_booking import next_slot, set_up_therapist

pytestmark = pytest.mark.e2e


def offered(clinic, therapist: str, start: datetime) -> bool:
    answer = requests.get(clinic.url(f"/api/v1/therapists/{therapist}/slots"), timeout=10, params={
        "session_type": "dit-session", "modality": "video", "from": start.date().isoformat(),
        "to": start.date().isoformat()})
    assert answer.status_code == 200, answer.text
    return start.isoformat() in [datetime.fromisoformat(s["start"]).isoformat()
                                 for s in answer.json()["slots"]]


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def test_a_hold_is_extended_once_and_availability_withholds_the_slot_until_the_new_expiry(
        clinic_factory):
    clinic = clinic_factory("sqlite", HOLD_MINUTES="1", CLINIC_NAME="Harbour Clinic",
                            CLINIC_CITY="Leeds", CLINIC_PHONE="0113 496 0000",
                            CLINIC_EMAIL="access@harbour.example", COURSE_SESSIONS="12")
    info = requests.get(clinic.url("/api/v1/clinic"), timeout=10)
    assert info.status_code == 200
    assert info.json() == {"name": "Harbour Clinic", "city": "Leeds", "address": "",
                           "timezone": "Europe/London", "phone": "0113 496 0000",
                           "email": "access@harbour.example", "course_sessions": 12,
                           "hold_minutes": 1}
    therapist = set_up_therapist(clinic)
    start = next_slot()
    placed_at = time.monotonic()
    hold = requests.post(clinic.url("/api/v1/holds"), timeout=10, json={
        "therapist_id": therapist, "session_type": "dit-session", "modality": "video",
        "start": start.isoformat()})
    assert hold.status_code == 201, hold.text
    hold = hold.json()
    other = requests.post(clinic.url("/api/v1/holds"), timeout=10, json={
        "therapist_id": therapist, "session_type": "dit-session", "modality": "video",
        "start": (start + timedelta(hours=2)).isoformat()}).json()
    extend = clinic.url(f"/api/v1/holds/{hold['id']}/extend")

    assert requests.post(extend, timeout=10).status_code == 401
    stranger = {"Authorization": f"Bearer {other['manage_token']}"}
    assert requests.post(extend, headers=stranger, timeout=10).status_code == 404
    wait_until(placed_at + 25)
    owner = {"Authorization": f"Bearer {hold['manage_token']}"}
    extended = requests.post(extend, headers=owner, timeout=10)
    assert extended.status_code == 200, extended.text
    new_expiry = datetime.fromisoformat(extended.json()["expires_at"])
    assert new_expiry >= datetime.fromisoformat(hold["expires_at"]) + timedelta(seconds=20)
    again = requests.post(extend, headers=owner, timeout=10)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"

    wait_until(placed_at + 70)  # past the first expiry, inside the extension
    assert not offered(clinic, therapist, start)
    deadline = time.monotonic() + 60
    while not offered(clinic, therapist, start):  # the extended hold lapses in its turn
        assert time.monotonic() < deadline, "the slot never came back after the extended hold"
        time.sleep(1)
    lapsed = requests.post(extend, headers=owner, timeout=10)
    assert lapsed.status_code == 409 and lapsed.json()["error"]["code"] == "hold_expired"
