"""One request followed through the whole system: its X-Request-ID in the gateway's answer, in
the JSON log lines of booking, availability and notifications, and in the email it caused; and
no manage token or feed secret in any log line."""

from __future__ import annotations

import json
import time
import uuid
from email import message_from_bytes
from pathlib import Path

import pytest
import requests

from tests.e2e.test_booking import CLIENT, next_slot, set_up_therapist

pytestmark = pytest.mark.e2e


def json_lines(path: Path) -> list[dict]:
    """The log's JSON objects (a process's stray non-JSON output, e.g. a warning, is skipped)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def wait_for(condition, seconds: float = 90, what: str = "condition"):
    """The condition's first truthy value, polled until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def mail_with(folder: Path, request_id: str) -> list:
    messages = [message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]
    return [m for m in messages if m["X-Request-ID"] == request_id]


def test_one_bookings_request_id_reaches_every_service_log_and_the_email(backend,
                                                                         clinic_factory):
    clinic = clinic_factory(backend, LOG_FORMAT="json", NOTIFICATIONS_POLL_SECONDS="0.5")
    therapist = set_up_therapist(clinic)
    request_id = f"trace-{uuid.uuid4().hex}"
    answer = requests.post(clinic.url("/api/v1/bookings"), timeout=30,
                           headers={"X-Request-ID": request_id}, json={
                               "therapist_id": therapist, "session_type": "dit-session",
                               "modality": "video", "start": next_slot().isoformat(),
                               "client": CLIENT})
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Request-ID"] == request_id
    booking = answer.json()

    folder = Path(clinic.env["CLINIC_DATA_DIR"])
    mails = wait_for(lambda: mail_with(folder / "mail", request_id), what="the client's email")
    assert CLIENT["email"] in mails[0]["To"]

    log = folder / "clinic.log"
    # the notifications worker that wrote the email logs as it finishes
    wait_for(lambda: any(line.get("service") == "notifications"
                         and line.get("request_id") == request_id for line in json_lines(log)),
             what="the notifications log line")
    lines = json_lines(log)
    assert lines, "no JSON log lines"
    assert all({"time", "level", "service", "request_id", "message"} <= line.keys()
               for line in lines)
    traced = {line["service"] for line in lines if line["request_id"] == request_id}
    assert {"gateway", "booking", "availability", "notifications"} <= traced

    # the manage token travels in a URL; it never reaches a log line, nor does a feed secret
    token = booking["manage_token"]
    assert requests.get(clinic.url(f"/manage?token={token}&booking={booking['id']}"),
                        timeout=10).status_code == 200
    feed = requests.get(clinic.url(f"/api/v1/therapists/{therapist}/calendar-feed"),
                        headers=clinic.admin, timeout=10).json()
    feed_path = feed["url"].split("/ical/")[1]
    assert requests.get(clinic.url(f"/ical/{feed_path}"), timeout=10).status_code == 200
    wait_for(lambda: "GET /ical/" in log.read_text(), what="the feed's access log line")
    text = log.read_text()
    assert token not in text and feed_path not in text
    assert clinic.env["CLINIC_ADMIN_TOKEN"] not in text


def test_an_insane_request_id_is_replaced_and_every_answer_has_one(backend, clinic_factory):
    clinic = clinic_factory(backend)
    for insane in ("bad id <script>", "x" * 300, "short"):
        mine = requests.get(clinic.url("/health"), headers={"X-Request-ID": insane}, timeout=10)
        assert mine.status_code == 200
        assert mine.headers["X-Request-ID"] != insane and len(mine.headers["X-Request-ID"]) == 32
    unknown = requests.get(clinic.url("/no/such/path"), timeout=10)
    assert unknown.status_code == 404 and len(unknown.headers["X-Request-ID"]) >= 8
    sane = requests.get(clinic.url("/api/v1/therapists"), timeout=10,
                        headers={"X-Request-ID": "edge-proxy:4f1c2d9e"})
    assert sane.headers["X-Request-ID"] == "edge-proxy:4f1c2d9e"
