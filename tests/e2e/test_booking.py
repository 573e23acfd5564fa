"""Booking through the whole system over HTTP, on SQLite and PostgreSQL: a 64-way race for one
slot with two booking processes, an all-or-nothing course, and Idempotency-Key replays."""

import os
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from services.booking.models import bookings, courses
from tests.conftest import BROKER_ADMIN

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CLIENT = {"name": "Ada", "email": "ada@example.org"}


def next_slot(days: int = 3, hour: int = 10) -> datetime:
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def set_up_therapist(clinic, therapist_id: str = "dr-ray", timezone: str = "UTC",
                     rooms: tuple[str, ...] = ("room-a", "room-b")) -> str:
    for room in rooms:
        requests.post(clinic.url("/api/v1/rooms"), json={"id": room, "name": room},
                      headers=clinic.admin, timeout=10).raise_for_status()
    requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, timeout=10, json={
        "id": therapist_id, "name": "Dr Ray", "specialties": ["dit"],
        "modalities": ["in_person", "video", "phone"], "timezone": timezone}).raise_for_status()
    requests.put(clinic.url(f"/api/v1/therapists/{therapist_id}/schedule"), headers=clinic.admin,
                 timeout=10, json={
                     "timezone": timezone, "buffer_minutes": 10, "min_notice_hours": 0,
                     "horizon_days": 365,
                     "weekly": [{"weekday": day, "start": "07:00", "end": "21:00",
                                 "modalities": ["in_person", "video", "phone"]}
                                for day in WEEKDAYS]}).raise_for_status()
    return therapist_id


def second_booking_process(clinic, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 (the child writes to it while it runs)
    return subprocess.Popen(
        [sys.executable, "-m", "clinic.cli", "run", "--config", "services/booking/config.yml",
         "services.booking.service:BookingService"], cwd=ROOT, env=clinic.env, stdout=log,
        stderr=subprocess.STDOUT)


def rpc_consumers(amqp_uri: str, service: str) -> int:
    """How many processes consume ``service``'s RPC queue in the vhost of ``amqp_uri`` (the
    management API when it is on, else rabbitmqctl)."""
    vhost = urllib.parse.urlsplit(amqp_uri).path.lstrip("/") or "/"
    parts = urllib.parse.urlsplit(BROKER_ADMIN)
    try:
        queue = requests.get(f"{parts.scheme}://{parts.hostname}:{parts.port}/api/queues/"
                             f"{urllib.parse.quote(vhost, safe='')}/rpc-{service}",
                             auth=(parts.username, parts.password), timeout=10)
        return queue.json().get("consumers", 0) if queue.status_code == 200 else 0
    except requests.ConnectionError:
        listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name",
                                 "consumers"], capture_output=True, text=True, check=True)
        return next((int(line.split()[1]) for line in listed.stdout.splitlines()
                     if line.split()[:1] == [f"rpc-{service}"]), 0)


def count_rows(url: str, table, *where) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(sa.select(sa.func.count()).select_from(table)
                                   .where(*where)).scalar_one()
    engine.dispose()
    return found


def test_64_concurrent_attempts_at_one_slot_give_exactly_one_booking(
        backend, clinic_factory, tmp_path):
    clinic = clinic_factory(backend, RATE_LIMIT_PER_MINUTE="100000")
    therapist = set_up_therapist(clinic)
    log_path = tmp_path / "booking2.log"
    extra = second_booking_process(clinic, log_path)
    try:
        deadline = time.monotonic() + 60
        # ready when the broker counts its consumer on the RPC queue beside the first one's
        while rpc_consumers(clinic.env["AMQP_URI"], "booking") < 2:
            assert extra.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        start = next_slot().isoformat()

        def attempt(i: int) -> requests.Response:
            return requests.post(clinic.url("/api/v1/bookings"), timeout=60, json={
                "therapist_id": therapist, "session_type": "dit-session",
                "modality": "in_person", "start": start,
                "client": {"name": f"Client {i}", "email": f"c{i}@example.org"}})

        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(attempt, range(64)))
    finally:
        extra.terminate()
        extra.wait(20)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 63
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
        "slot_unavailable"}
    assert count_rows(clinic.env["BOOKING_DATABASE_URL"], bookings,
                      bookings.c.status == "confirmed") == 1


def test_a_16_week_course_conflicting_in_week_9_writes_nothing(backend, clinic_factory):
    clinic = clinic_factory(backend)
    therapist = set_up_therapist(clinic)
    first = next_slot(days=2)
    week9 = first + timedelta(weeks=8)
    taken = requests.post(clinic.url("/api/v1/bookings"), timeout=30, json={
        "therapist_id": therapist, "session_type": "dit-session", "modality": "video",
        "start": week9.isoformat(), "client": CLIENT})
    assert taken.status_code == 201, taken.text
    url = clinic.env["BOOKING_DATABASE_URL"]
    before = count_rows(url, bookings)
    course = {"therapist_id": therapist, "session_type": "dit-session", "modality": "video",
              "first_start": first.isoformat(), "sessions": 16, "client": CLIENT}
    refused = requests.post(clinic.url("/api/v1/courses"), json=course, timeout=30)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "course_conflict"
    assert [datetime.fromisoformat(c) for c in error["details"]["conflicts"]] == [week9]
    assert count_rows(url, bookings) == before and count_rows(url, courses) == 0

    # one week later the whole course fits; its manage token sees it, numbered 1..16
    course["first_start"] = (week9 + timedelta(hours=2)).isoformat()
    booked = requests.post(clinic.url("/api/v1/courses"), json=course, timeout=30,
                           headers={"Idempotency-Key": "course-1-0123456789abcdef"})
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert [s["number"] for s in body["sessions"]] == list(range(1, 17))
    seen = requests.get(clinic.url(f"/api/v1/courses/{body['id']}"), timeout=10,
                        params={"token": body["manage_token"]}).json()
    assert (seen["completed"], seen["remaining"], seen["status"]) == (0, 16, "active")


def test_idempotency_key_replays_and_refuses_a_different_body(backend, clinic_factory):
    clinic = clinic_factory(backend)
    therapist = set_up_therapist(clinic)
    request = {"therapist_id": therapist, "session_type": "dit-session", "modality": "video",
               "start": next_slot().isoformat(), "client": CLIENT}
    key = {"Idempotency-Key": "booking-123-0123456789"}
    first = requests.post(clinic.url("/api/v1/bookings"), json=request, headers=key, timeout=30)
    again = requests.post(clinic.url("/api/v1/bookings"), json=request, headers=key, timeout=30)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    other = requests.post(clinic.url("/api/v1/bookings"), headers=key, timeout=30,
                          json={**request, "notes": "changed"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    # without the key the same body is a second attempt at a taken slot
    plain = requests.post(clinic.url("/api/v1/bookings"), json=request, timeout=30)
    assert plain.json()["error"]["code"] == "slot_unavailable"

    booking = first.json()
    token = {"Authorization": f"Bearer {booking['manage_token']}"}
    cancelled = requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/cancel"),
                              headers=token, json={}, timeout=30).json()
    assert (cancelled["status"], cancelled["late_cancellation"]) == ("cancelled", False)
    twice = requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/cancel"),
                          headers=token, json={}, timeout=30)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "invalid_state"
    listed = requests.get(clinic.url(f"/api/v1/therapists/{therapist}/bookings"),
                          headers=clinic.admin, timeout=30)
    assert [b["id"] for b in listed.json()] == [booking["id"]]
