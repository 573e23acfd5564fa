"""A therapist's buffer after each session is theirs: overlaps through the buffer alone are
refused, on both databases, through the gateway (the grid here is 5 minutes, so a start can fall
inside another session's buffer without touching the session itself)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from tests.e2e.test_booking import WEEKDAYS, next_slot

pytestmark = pytest.mark.e2e


def book(clinic, start) -> int:
    return requests.post(clinic.url("/api/v1/bookings"), timeout=60, json={
        "therapist_id": "dr-buffer", "session_type": "dit-session", "modality": "video",
        "start": start.isoformat(),
        "client": {"name": "Bea Buffer", "email": "bea@example.org"}}).status_code


def test_a_start_inside_a_buffer_or_a_buffer_over_a_start_is_refused(clinic_factory, backend):
    clinic = clinic_factory(backend)
    requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, timeout=10, json={
        "id": "dr-buffer", "name": "Dr Buffer", "specialties": ["DIT"], "modalities": ["video"],
        "timezone": "UTC"}).raise_for_status()
    requests.put(clinic.url("/api/v1/therapists/dr-buffer/schedule"), headers=clinic.admin,
                 timeout=10, json={
                     "timezone": "UTC", "buffer_minutes": 10, "slot_interval_minutes": 5,
                     "min_notice_hours": 0, "horizon_days": 60,
                     "weekly": [{"weekday": day, "start": "07:00", "end": "21:00",
                                 "modalities": ["video"]} for day in WEEKDAYS],
                 }).raise_for_status()
    ten = next_slot(hour=10)  # 50 minutes: 10:00-10:50, its buffer to 11:00
    assert book(clinic, ten) == 201
    assert book(clinic, ten + timedelta(minutes=55)) == 409  # starts in the buffer only
    assert book(clinic, ten - timedelta(minutes=55)) == 409  # its own buffer reaches 10:00
    assert book(clinic, ten + timedelta(minutes=60)) == 201  # right after the buffer
    assert book(clinic, ten - timedelta(minutes=60)) == 201  # its buffer ends at 10:00
