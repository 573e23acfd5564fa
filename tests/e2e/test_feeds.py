"""The therapist's iCal feed over HTTP, as a calendar app polls it, with two gateway processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import requests
from icalendar import Calendar

from clinic.ical import event_uid
from tests.conftest import free_port
from tests.e2e.test_booking import ROOT, next_slot, set_up_therapist

pytestmark = pytest.mark.e2e

PRIVATE_CLIENT = {"name": "Ana-Sofía Núñez", "email": "ana@example.org",
                  "phone": "+44 20 7946 0018"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def eventually(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the feed did not catch up"
        time.sleep(0.2)


@pytest.fixture
def second_gateway(tmp_path):
    started = []

    def start(clinic) -> str:
        port = free_port()
        log = open(tmp_path / "gateway-2.log", "ab")  # noqa: SIM115 (the child writes to it)
        process = subprocess.Popen(
            [sys.executable, "-m", "clinic.cli", "run", "--config", "gateway/config.yml",
             "gateway.service:GatewayService"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**clinic.env, "GATEWAY_PORT": str(port)})
        started.append((process, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/ready", timeout=3).status_code == 200:
                    return base
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "gateway 2 failed"
            time.sleep(0.3)

    yield start
    for process, log in started:
        process.terminate()
        process.wait(20)
        log.close()


def test_a_therapist_subscribes_sees_changes_and_rotation_kills_the_old_url(
        clinic_factory, second_gateway, backend):
    clinic = clinic_factory(backend)
    therapist = set_up_therapist(clinic, timezone="Europe/London")
    set_up_therapist(clinic, "dr-other", rooms=())
    tokens = {who: requests.post(clinic.url(f"/api/v1/therapists/{who}/tokens"), timeout=10,
                                 headers=clinic.admin).json()["token"]
              for who in (therapist, "dr-other")}
    course = requests.post(clinic.url("/api/v1/courses"), timeout=60, json={
        "therapist_id": therapist, "session_type": "dit-session", "modality": "in_person",
        "first_start": next_slot(days=2).isoformat(), "sessions": 16,
        "client": PRIVATE_CLIENT, "notes": "recurrent low mood after bereavement"}).json()
    fifth = course["sessions"][4]
    cancelled = course["sessions"][6]["booking_id"]
    requests.post(clinic.url(f"/api/v1/bookings/{cancelled}/cancel"), timeout=30,
                  headers=bearer(course["manage_token"]),
                  json={"reason": "my mother is in hospital"}).raise_for_status()

    # the feed URL: the therapist's own, the admin's view of it, nobody else's
    feed_route = clinic.url(f"/api/v1/therapists/{therapist}/calendar-feed")
    url = requests.get(feed_route, headers=bearer(tokens[therapist]), timeout=10).json()["url"]
    assert url.startswith(clinic.base_url + "/ical/cal_") and url.endswith(".ics")
    assert requests.get(feed_route, headers=clinic.admin, timeout=10).json()["url"] == url
    assert requests.get(feed_route, headers=bearer(tokens["dr-other"]),
                        timeout=10).status_code == 403
    assert requests.get(feed_route, timeout=10).status_code == 401

    def fetch(**headers: str) -> requests.Response:
        return requests.get(url, headers=headers, timeout=30)

    def events_of(reply: requests.Response) -> dict:
        return {str(e["UID"]): e for e in Calendar.from_ical(reply.content).walk("VEVENT")}

    eventually(lambda: len(events_of(fetch())) == 16 and str(
        events_of(fetch())[event_uid(cancelled)]["STATUS"]) == "CANCELLED")
    first = fetch(**{"Accept-Encoding": "gzip"})  # as calendar apps ask
    assert first.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert first.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in first.headers["Vary"]
    plain = fetch(**{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.content == first.content
    assert plain.headers["ETag"] != first.headers["ETag"]  # one validator per representation
    assert first.headers["ETag"] and first.headers["Last-Modified"]
    calendar = Calendar.from_ical(first.content)
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/London"]
    event = events_of(first)[event_uid(fifth["booking_id"])]
    assert str(event["SUMMARY"]) == "DIT session 5/16 · A.S.N."
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    assert str(event["LOCATION"]) == fifth["room"]
    text = first.content.decode()
    for private in ("Ana", "Núñez", "ana@example.org", "7946", "bereavement", "hospital"):
        assert private not in text

    # conditional requests: nothing changed, nothing sent
    unchanged = fetch(**{"If-None-Match": first.headers["ETag"]})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["ETag"] == first.headers["ETag"]
    assert fetch(**{"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    assert requests.head(url, timeout=10).status_code == 200

    # a second gateway serves the same feed and hears of changes made through the first
    other = second_gateway(clinic)
    other_url = url.replace(clinic.base_url, other)
    assert requests.get(other_url, timeout=30).content == first.content

    moved_to = next_slot(days=2) + timedelta(weeks=4, hours=3)
    requests.post(clinic.url(f"/api/v1/bookings/{fifth['booking_id']}/reschedule"), timeout=30,
                  headers=bearer(course["manage_token"]),
                  json={"start": moved_to.isoformat()}).raise_for_status()

    def moved(feed_url: str) -> bool:
        reply = requests.get(feed_url, timeout=30,
                             headers={"If-None-Match": first.headers["ETag"]})
        if reply.status_code == 304:
            return False
        event = events_of(reply)[event_uid(fifth["booking_id"])]
        return event.decoded("DTSTART") == moved_to and int(event["SEQUENCE"]) == 1

    eventually(lambda: moved(url))
    eventually(lambda: moved(other_url))

    # rotating: the old URL is dead at once here, and on the other gateway as its news arrives
    rotated = requests.post(feed_route + "/rotate", headers=bearer(tokens[therapist]),
                            timeout=10).json()["url"]
    assert rotated != url
    gone = fetch()
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    eventually(lambda: requests.get(other_url, timeout=10).status_code == 404, seconds=5)
    assert len(events_of(requests.get(rotated, timeout=30))) == 16
    assert requests.post(feed_route + "/rotate", headers=bearer(tokens["dr-other"]),
                         timeout=10).status_code == 403
    assert requests.get(clinic.url("/ical/cal_not-a-feed.ics"), timeout=10).status_code == 404
