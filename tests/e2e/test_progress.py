"""Progress through the gateway with the whole system running and mail caught by aiosmtpd.

A course booked over HTTP: its sessions carry their phases; the check-in invitation comes when
its window opens (CHECKIN_HOURS chosen so that it opens while the test waits) with a working
/progress link; the client checks in (a risk, so the answer says where help is and the
therapist gets exactly one risk_alert), sees the scores, the focus and, once shared, the letter.
Another course's token, another therapist's token and no token fail. No answer, score,
reflection, focus or letter text is in any email or log line.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path

import eventlet
import pytest
import requests

from tests.e2e.test_notifications import (
    REMINDER_LEAD,
    add_therapist,
    bearer,
    session_start,
    smtp,  # noqa: F401 (the fixture)
)
from tests.integration.test_notifications import wait_until

pytestmark = pytest.mark.e2e

# Check-in invitations go this long before a session: the session is chosen once the clinic is
# up (``session_start``), so the first invitation's window opens a little after booking.
CHECKIN_LEAD = REMINDER_LEAD
REFLECTION = "I told Maria-Zeta I was hurt by the thing with the boat"
FOCUS = "Pleasing Maria-Zeta, then quietly resenting it"
LETTER = "Dear Ann, over these sixteen weeks we looked at the boat-pattern together."
RISKY = {"phq9": [2, 2, 2, 2, 1, 1, 1, 1, 1], "gad7": [2, 2, 1, 1, 1, 1, 1]}


@pytest.fixture(params=["sqlite", "postgresql"])
def setting(request, clinic_factory, smtp):  # noqa: F811
    clinic = clinic_factory(request.param, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                            SMTP_FROM="clinic@clinic.example", NOTIFICATIONS_POLL_SECONDS="0.5",
                            CHECKIN_HOURS=f"{CHECKIN_LEAD.total_seconds() / 3600:.6f}",
                            REMINDER_HOURS="0.001")
    return clinic, session_start()


def book_course(clinic, therapist_id: str, start: datetime, email: str) -> dict:
    booked = requests.post(clinic.url("/api/v1/courses"), json={
        "therapist_id": therapist_id, "session_type": "dit-session", "modality": "video",
        "first_start": start.isoformat(), "sessions": 16,
        "client": {"name": "Ann Lee", "email": email}})
    assert booked.status_code == 201, booked.text
    return booked.json()


def readable(message) -> str:
    parts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    return "\n".join([str(message["Subject"]), *parts])


def test_a_course_from_invitation_to_check_in_risk_focus_and_letter(setting, smtp):  # noqa: F811
    clinic, start = setting
    jo = add_therapist(clinic, "dr-jo", "jo@clinic.example", start)
    other = add_therapist(clinic, "dr-no", "no@clinic.example", start)
    course = book_course(clinic, "dr-jo", start, "ann@example.org")
    other_course = book_course(clinic, "dr-no", start + timedelta(hours=1), "bo@example.org")
    token, course_id = course["manage_token"], course["id"]
    progress_url = clinic.url(f"/api/v1/courses/{course_id}/progress")

    shown = requests.get(clinic.url(f"/api/v1/courses/{course_id}"), params={"token": token})
    assert [s["phase"] for s in shown.json()["sessions"]] == \
        ["assessment"] * 4 + ["middle"] * 8 + ["ending"] * 4
    catalogue = requests.get(clinic.url("/api/v1/questionnaires")).json()
    assert [q["id"] for q in catalogue] == ["phq9", "gad7"]

    # who may read
    assert requests.get(progress_url).status_code == 401
    assert requests.get(progress_url, params={"token": other_course["manage_token"]}
                        ).status_code == 404
    assert requests.get(progress_url, headers=bearer(other)).status_code == 404
    mine = requests.get(progress_url, params={"token": token})
    assert mine.status_code == 200, mine.text
    assert mine.headers["Cache-Control"] == "no-store"
    assert mine.json()["current_phase"] == "assessment" and mine.json()["sessions"] == 16
    assert requests.get(progress_url, headers=bearer(jo)).status_code == 200

    # the invitation, once its window opens, links to the progress page
    wait_until(lambda: any("check-in" in m["Subject"] for m in smtp.to("ann@example.org")),
               seconds=120)
    invite = next(m for m in smtp.to("ann@example.org") if "check-in" in m["Subject"])
    link = next(w for w in invite.get_body(("plain",)).get_content().split()
                if "/progress?" in w)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["course"] == [course_id]
    page = requests.get(link)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    link_token = query["token"][0]

    # the check-in: bad answers are a 400, a risk tells where help is
    check_ins = clinic.url(f"/api/v1/courses/{course_id}/check-ins")
    bad = requests.post(check_ins, headers=bearer(link_token),
                        json={"answers": {"phq9": [4] * 9, "gad7": [0] * 7}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    assert requests.post(check_ins, json={"answers": RISKY}).status_code == 401
    assert requests.post(check_ins, headers=bearer(other_course["manage_token"]),
                         json={"answers": RISKY}).status_code == 404
    made = requests.post(check_ins, headers=bearer(link_token),
                         json={"answers": RISKY, "reflection": REFLECTION})
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer["session_number"] == 1 and answer["risk"] is True
    assert answer["phq9"] == {"total": 13, "severity": "moderate"}
    assert "116 123" in str(answer["urgent_help"]) and "999" in str(answer["urgent_help"])
    again = requests.post(check_ins, headers=bearer(link_token), json={"answers": RISKY})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"

    wait_until(lambda: any("attention" in m["Subject"] for m in smtp.to("jo@clinic.example")),
               seconds=30)
    listed = requests.get(clinic.url("/api/v1/therapists/dr-jo/courses"), headers=bearer(jo))
    assert [(c["course_id"], c["risk_unseen"]) for c in listed.json()] == [(course_id, True)]
    assert requests.get(clinic.url("/api/v1/therapists/dr-jo/courses"),
                        headers=bearer(other)).status_code == 403
    seen = requests.post(clinic.url(f"/api/v1/courses/{course_id}/risk/seen"),
                         headers=bearer(jo))
    assert seen.status_code == 200 and seen.json()["risk_unseen"] is False

    # the therapist's focus and letter; the client's token may not write them
    focus_url = clinic.url(f"/api/v1/courses/{course_id}/focus")
    body = {"interpersonal": FOCUS, "affective": "Anger, then guilt"}
    assert requests.put(focus_url, headers=bearer(token), json=body).status_code == 403
    assert requests.put(focus_url, headers=bearer(other), json=body).status_code == 404
    assert requests.put(focus_url, json=body).status_code == 401
    assert requests.put(focus_url, headers=bearer(jo), json=body).status_code == 200
    letter_url = clinic.url(f"/api/v1/courses/{course_id}/letter")
    assert requests.put(letter_url, headers=bearer(jo), json={"text": LETTER}
                        ).json()["status"] == "draft"
    assert requests.get(progress_url, params={"token": token}).json()["letter"] is None
    shared = requests.post(letter_url + "/share", headers=bearer(jo))
    assert shared.status_code == 200 and shared.json()["status"] == "shared"
    wait_until(lambda: any("letter" in m["Subject"] for m in smtp.to("ann@example.org")),
               seconds=30)

    view = requests.get(progress_url, params={"token": token}).json()
    assert view["letter"]["text"] == LETTER and view["focus"]["interpersonal"] == FOCUS
    assert [(c["session_number"], c["reflection"]) for c in view["check_ins"]] == [
        (1, REFLECTION)]
    assert view["baseline"] == {"phq9": 13, "gad7": 9} and view["latest"] is None

    eventlet.sleep(1.5)  # anything sent twice would be here by now
    kinds = requests.get(clinic.url("/api/v1/notifications"), headers=clinic.admin,
                         params={"course_id": course_id}).json()
    counted = [e["kind"] for e in kinds]
    assert counted.count("risk_alert") == 1 and counted.count("letter_shared") == 1
    assert counted.count("checkin_invite") == 1
    alerts = [m for m in smtp.to("jo@clinic.example") if "attention" in m["Subject"]]
    assert len(alerts) == 1

    # health data is in no email and no log line; tokens are in no log line
    everything = "\n".join(readable(m) for m in smtp.messages)
    log_text = Path(clinic.log.name).read_text(errors="replace")
    for private in (REFLECTION, FOCUS, LETTER, "Anger, then guilt", "moderate"):
        assert private not in everything and private not in log_text
    assert token not in log_text and link_token not in log_text and jo not in log_text
