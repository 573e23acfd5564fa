"""Outside calendars through the gateway, the whole system running, a Radicale server holding
the therapist's own calendar and aiosmtpd catching the mail.

A therapist links their calendar's address; within a poll its busy time is gone from slots and
course options and booking it is a 409; an outside event added over an existing booking flags it
on the therapist's status and emails them once; unlinking frees the time again.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import eventlet
import pytest
import requests

from tests.e2e import test_notifications
from tests.integration.test_notifications import wait_until
from tests.integration.test_outside_calendars import LONDON, Radicale, ics, vevent

pytestmark = pytest.mark.e2e

smtp = test_notifications.smtp  # the fixture: a real SMTP server in this process

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def radicale(tmp_path):
    server = Radicale(tmp_path)
    yield server
    server.stop()


def at(day: date, hour: int) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LONDON).isoformat()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_linked_calendar_blocks_booking_and_flags_a_clash(backend, clinic_factory, smtp,
                                                            radicale):
    clinic = clinic_factory(backend, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                            SMTP_FROM="clinic@clinic.example", NOTIFICATIONS_POLL_SECONDS="0.5",
                            EXTERNAL_CALENDAR_POLL_SECONDS="1",
                            EXTERNAL_CALENDAR_ALLOW_PRIVATE="1")
    api = clinic.url("/api/v1/therapists/dr-jo")
    assert requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, json={
        "id": "dr-jo", "name": "Jo Marsh", "email": "jo@clinic.example",
        "modalities": ["video"], "timezone": "Europe/London"}).status_code == 201
    assert requests.put(api + "/schedule", headers=clinic.admin, json={"weekly": [
        {"weekday": d, "start": "09:00", "end": "13:00", "modalities": ["video"]}
        for d in WEEKDAYS]}).status_code == 200
    jo = requests.post(api + "/tokens", headers=clinic.admin).json()["token"]
    requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, json={
        "id": "dr-no", "name": "No One", "modalities": ["video"]})
    other = requests.post(clinic.url("/api/v1/therapists/dr-no/tokens"),
                          headers=clinic.admin).json()["token"]

    day = date.today() + timedelta(days=14 + (1 - date.today().weekday()) % 7)  # a Tuesday
    booked = requests.post(clinic.url("/api/v1/bookings"), json={
        "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
        "start": at(day, 12), "client": {"name": "Ann Lee", "email": "ann@example.org"}})
    assert booked.status_code == 201, booked.text
    wait_until(lambda: len(smtp.messages) == 2, 30)  # its confirmations

    calendar = radicale.calendar("jo", "private")
    radicale.put(calendar, "school", [vevent("school", f"DTSTART;TZID=Europe/London:"
                                                       f"{ics(day, 10)}",
                                             f"DTEND;TZID=Europe/London:{ics(day, 11)}")])

    link = api + "/external-calendar"
    assert requests.put(link, json={"url": calendar}).status_code == 401
    # Credentials first: no token is a 401 whatever the address, never a 400 about it.
    assert requests.put(link, json={"url": "https://no-such-host.invalid/a.ics"}).status_code \
        == 401
    assert requests.put(clinic.url("/api/v1/therapists/nobody/external-calendar"),
                        json={"url": "ftp://x"}, headers=clinic.admin).status_code == 404
    assert requests.put(link, json={"url": calendar}, headers=bearer(other)).status_code == 403
    refused = requests.put(link, json={"url": "ftp://calendar.example/x.ics"},
                           headers=bearer(jo))
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["fields"][0]["field"] == "url"
    assert requests.put(link, json={"url": calendar, "x": 1},
                        headers=bearer(jo)).status_code == 400
    assert requests.get(link, headers=bearer(jo)).status_code == 404  # nothing linked yet

    linked = requests.put(link, json={"url": calendar}, headers=bearer(jo))
    assert linked.status_code == 200 and linked.json() == {"url": calendar, "status": "pending"}

    def status() -> dict:
        answer = requests.get(link, headers=bearer(jo))
        assert answer.status_code == 200, answer.text
        return answer.json()

    wait_until(lambda: status()["status"] == "ok", 30)
    assert status()["busy_count"] == 1 and status()["last_error"] is None

    def slot_hours() -> list[int]:
        found = requests.get(api + "/slots", params={
            "session_type": "dit-session", "modality": "video", "from": day.isoformat(),
            "to": day.isoformat()}).json()["slots"]
        return [datetime.fromisoformat(s["start"]).astimezone(LONDON).hour for s in found]

    assert slot_hours() == [9, 11]  # 10:00 busy elsewhere, 12:00 booked
    taken = requests.post(clinic.url("/api/v1/bookings"), json={
        "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
        "start": at(day, 10), "client": {"name": "Bo Bell", "email": "bo@example.org"}})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "slot_unavailable"
    options = requests.get(api + "/course-options", params={
        "session_type": "dit-session", "modality": "video", "sessions": 2,
        "from": day.isoformat()}).json()["options"]
    assert at(day, 10) not in [o["sessions"][0] for o in options]
    busy = requests.get(link + "/busy", params={"from": day.isoformat(), "to": day.isoformat()},
                        headers=bearer(jo))
    assert busy.status_code == 200
    assert [(datetime.fromisoformat(b["start"]).astimezone(LONDON).hour, set(b))
            for b in busy.json()["busy"]] == [(10, {"start", "end"})]
    assert requests.get(link + "/busy", params={"from": day.isoformat(), "to": day.isoformat()},
                        headers=bearer(other)).status_code == 403

    # The therapist's calendar gains a clash with the 12:00 booking: flagged, emailed once.
    radicale.put(calendar, "dentist", [vevent("dentist", f"DTSTART;TZID=Europe/London:"
                                                         f"{ics(day, 12)}",
                                              f"DTEND;TZID=Europe/London:{ics(day, 13)}")])
    wait_until(lambda: status()["conflicts"] != [], 30)
    assert [c["booking_id"] for c in status()["conflicts"]] == [booked.json()["id"]]
    wait_until(lambda: len(smtp.to("jo@clinic.example")) == 2, 30)
    notice = smtp.to("jo@clinic.example")[-1]
    assert notice["Subject"].startswith("Check your calendar")
    assert "dentist" not in notice.get_body(("plain",)).get_content().lower()
    for _ in range(2):  # polls go on; the email is not sent again
        synced = status()["last_synced_at"]
        wait_until(lambda synced=synced: status()["last_synced_at"] != synced, 30)
    eventlet.sleep(1)  # and the mail of anything they had found would be out by now
    assert len(smtp.to("jo@clinic.example")) == 2
    assert requests.get(clinic.url(f"/api/v1/bookings/{booked.json()['id']}"),
                        headers=clinic.admin).json()["status"] == "confirmed"
    log = requests.get(clinic.url("/api/v1/notifications"), headers=bearer(jo),
                       params={"booking_id": booked.json()["id"]}).json()
    assert [e["kind"] for e in log].count("outside_conflict") == 1

    assert requests.delete(link, headers=bearer(jo)).status_code == 204
    assert requests.get(link, headers=bearer(jo)).status_code == 404
    assert requests.delete(link, headers=bearer(jo)).status_code == 204  # a DELETE is idempotent
    assert slot_hours() == [9, 10, 11]
