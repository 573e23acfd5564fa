"""Catalogue and Finding a time through the gateway, with the whole system running."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import requests

pytestmark = pytest.mark.e2e

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
SCHEDULE = {"weekly": [{"weekday": day, "start": "09:00", "end": "17:00",
                        "modalities": ["in_person", "video", "phone"]} for day in WEEKDAYS],
            "buffer_minutes": 10, "slot_interval_minutes": 60, "min_notice_hours": 24,
            "horizon_days": 180}


@pytest.fixture(params=["sqlite", "postgresql"])
def clinic(request, clinic_factory):
    return clinic_factory(request.param)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def next_monday(weeks: int = 2) -> date:
    today = date.today()
    return today + timedelta(days=7 * weeks - today.weekday())


def fields(response: requests.Response) -> list[str]:
    body = response.json()
    assert response.status_code == 400, body
    assert body["error"]["code"] == "invalid_request"
    return [problem["field"] for problem in body["error"]["details"]["fields"]]


def add_therapist(clinic, therapist_id: str = "ann-example") -> None:
    created = requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, json={
        "id": therapist_id, "name": "Dr Ann Example", "email": "ann@clinic.example",
        "title": "DIT practitioner", "bio": "Brief psychodynamic therapy.",
        "specialties": ["DIT", "depression"], "modalities": ["in_person", "video", "phone"]})
    assert created.status_code == 201, created.text
    schedule = requests.put(clinic.url(f"/api/v1/therapists/{therapist_id}/schedule"),
                            headers=clinic.admin, json=SCHEDULE)
    assert schedule.status_code == 200, schedule.text


def test_admin_sets_up_a_therapist_and_anyone_finds_times(clinic):
    api = clinic.url("/api/v1")
    types = requests.get(f"{api}/session-types").json()
    assert {"id": "dit-session", "name": "DIT session", "duration_minutes": 50} in types

    assert requests.post(f"{api}/rooms", json={"id": "garden", "name": "Garden"}
                         ).status_code == 401
    room = requests.post(f"{api}/rooms", headers=clinic.admin,
                         json={"id": "garden", "name": "Garden room"})
    assert room.status_code == 201 and room.json() == {"id": "garden", "name": "Garden room"}
    assert requests.get(f"{api}/rooms").json() == [{"id": "garden", "name": "Garden room"}]

    created = requests.post(f"{api}/therapists", headers=clinic.admin, json={
        "name": "Dr Ann Example", "email": "ann@clinic.example", "specialties": ["DIT"],
        "modalities": ["in_person", "video"]})
    assert created.status_code == 201 and created.json()["id"] == "dr-ann-example"
    ann = created.json()["id"]
    public = requests.get(f"{api}/therapists/{ann}")
    assert public.status_code == 200 and "email" not in public.json()
    assert "ann@clinic.example" not in requests.get(f"{api}/therapists").text
    assert [t["id"] for t in requests.get(f"{api}/therapists?specialty=DIT&modality=video"
                                          ).json()] == [ann]
    assert requests.get(f"{api}/therapists?modality=phone").json() == []

    slots_url = f"{api}/therapists/{ann}/slots"
    monday = next_monday()
    query = {"session_type": "dit-session", "modality": "in_person",
             "from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat()}
    assert requests.get(slots_url, params=query).json()["slots"] == []  # no schedule yet

    # The therapist's own token changes its schedule; the public cannot.
    assert requests.put(f"{api}/therapists/{ann}/schedule", json=SCHEDULE).status_code == 401
    token = requests.post(f"{api}/therapists/{ann}/tokens", headers=clinic.admin)
    assert token.status_code == 201
    own = bearer(token.json()["token"])
    saved = requests.put(f"{api}/therapists/{ann}/schedule", headers=own, json=SCHEDULE)
    assert saved.status_code == 200 and saved.json()["timezone"] == "Europe/London"
    assert requests.get(f"{api}/therapists/{ann}/schedule").json() == saved.json()

    slots = requests.get(slots_url, params=query).json()["slots"]
    assert len(slots) == 5 * 8
    first = datetime.fromisoformat(slots[0]["start"])
    assert (first.date(), first.strftime("%H:%M")) == (monday, "09:00")
    assert datetime.fromisoformat(slots[0]["end"]) - first == timedelta(minutes=50)

    off = requests.post(f"{api}/therapists/{ann}/time-off", headers=own, json={
        "start": f"{monday.isoformat()}T00:00:00+00:00",
        "end": f"{(monday + timedelta(days=1)).isoformat()}T00:00:00+00:00",
        "reason": "training day"})
    assert off.status_code == 201
    assert len(requests.get(slots_url, params=query).json()["slots"]) == 4 * 8
    assert [t["id"] for t in requests.get(f"{api}/therapists/{ann}/time-off", headers=own
                                          ).json()] == [off.json()["id"]]
    assert requests.get(f"{api}/therapists/{ann}/time-off").status_code == 401
    deleted = requests.delete(f"{api}/therapists/{ann}/time-off/{off.json()['id']}",
                              headers=own)
    assert deleted.status_code == 204 and deleted.content == b""

    options = requests.get(f"{api}/therapists/{ann}/course-options", params={
        "session_type": "dit-session", "modality": "video", "sessions": 16,
        "from": monday.isoformat(), "skip_weeks": (monday + timedelta(days=16)).isoformat()})
    assert options.status_code == 200, options.text
    found = options.json()["options"]
    assert len(found) == 5 * 8
    assert found[0]["weekday"] == "monday" and found[0]["local_time"] == "09:00"
    weeks = [datetime.fromisoformat(s).date() for s in found[0]["sessions"]]
    assert len(weeks) == 16 and weeks[2] == monday + timedelta(days=21)  # third week skipped

    # Revoked tokens stop working at once.
    assert requests.delete(f"{api}/therapists/{ann}/tokens", headers=clinic.admin
                           ).status_code == 204
    assert requests.put(f"{api}/therapists/{ann}/schedule", headers=own, json=SCHEDULE
                        ).status_code == 401


def test_a_therapist_token_cannot_touch_another_therapist(clinic):
    add_therapist(clinic, "ann-example")
    add_therapist(clinic, "bo-example")
    token = requests.post(clinic.url("/api/v1/therapists/ann-example/tokens"),
                          headers=clinic.admin).json()["token"]
    other = clinic.url("/api/v1/therapists/bo-example")
    for response in (requests.put(f"{other}/schedule", headers=bearer(token), json=SCHEDULE),
                     requests.post(f"{other}/time-off", headers=bearer(token), json={
                         "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}),
                     requests.post(f"{other}/tokens", headers=bearer(token))):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
    assert requests.post(clinic.url("/api/v1/rooms"), headers=bearer(token),
                         json={"id": "x", "name": "X"}).status_code == 403


def test_bad_input_is_400_with_field_details_and_unknown_therapists_404(clinic):
    add_therapist(clinic)
    api = clinic.url("/api/v1/therapists/ann-example")
    monday = next_monday()
    good = {"session_type": "dit-session", "modality": "video", "from": monday.isoformat(),
            "to": (monday + timedelta(days=6)).isoformat()}

    def slots(**changes):
        return requests.get(f"{api}/slots", params={**good, **changes})

    assert slots().status_code == 200
    assert fields(slots(tz="Mars/Olympus_Mons")) == ["tz"]
    assert fields(slots(to=(monday - timedelta(days=1)).isoformat())) == ["to"]
    assert fields(slots(to=(monday + timedelta(days=92)).isoformat())) == ["to"]
    assert slots(to=(monday + timedelta(days=91)).isoformat()).status_code == 200
    assert fields(slots(modality="telepathy")) == ["modality"]
    assert fields(slots(**{"from": "next tuesday"})) == ["from"]
    assert fields(slots(session_type="karaoke")) == ["session_type"]
    missing = requests.get(clinic.url("/api/v1/therapists/nobody/slots"), params=good)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert requests.get(clinic.url("/api/v1/therapists/nobody")).status_code == 404

    course = {**good, "sessions": 16}
    course.pop("to")
    assert fields(requests.get(f"{api}/course-options", params={**course, "sessions": 53})
                  ) == ["sessions"]
    assert fields(requests.get(f"{api}/course-options",
                               params={**course, "skip_weeks": "2030-02-30"})) == ["skip_weeks"]

    naive = requests.post(f"{api}/time-off", headers=clinic.admin,
                          json={"start": "2030-01-01T10:00:00", "end": "2030-01-01T12:00:00Z"})
    assert fields(naive) == ["start"]
    backwards = requests.post(f"{api}/time-off", headers=clinic.admin,
                              json={"start": "2030-01-02T10:00:00Z",
                                    "end": "2030-01-01T12:00:00Z"})
    assert fields(backwards) == ["end"]
    bad_zone = requests.put(f"{api}/schedule", headers=clinic.admin,
                            json={**SCHEDULE, "timezone": "Europe/Atlantis"})
    assert fields(bad_zone) == ["timezone"]
    rule = {"weekday": "monday", "start": "10:00", "end": "09:00", "modalities": ["video"]}
    assert fields(requests.put(f"{api}/schedule", headers=clinic.admin,
                               json={"weekly": [rule]})) == ["weekly.0.end"]
    assert fields(requests.put(f"{api}/schedule", headers=clinic.admin,
                               json={"weekly": [{**rule, "modalities": ["fax"]}]})
                  ) == ["weekly.0.modalities.0"]
    assert fields(requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin,
                                json={"name": "X", "modalities": ["video"], "shoe": 9})
                  ) == ["shoe"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_new_clinic_starts_with_the_demo_unless_turned_off(clinic_factory, backend):
    demo = clinic_factory(backend, CLINIC_DEMO="1")
    therapists = requests.get(demo.url("/api/v1/therapists")).json()
    assert len(therapists) == 3 and all("email" not in t for t in therapists)
    assert len(requests.get(demo.url("/api/v1/therapists?specialty=DIT")).json()) == 2
    assert len(requests.get(demo.url("/api/v1/rooms")).json()) == 2
    monday = next_monday()
    for therapist in therapists:
        for modality in therapist["modalities"]:
            found = requests.get(demo.url(f"/api/v1/therapists/{therapist['id']}/slots"), params={
                "session_type": "dit-assessment", "modality": modality,
                "from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat()})
            assert found.json()["slots"], (therapist["id"], modality)
    # Restarting on the same data folder does not load it twice.
    demo.stop()
    demo.start(demo.log.name)
    assert len(requests.get(demo.url("/api/v1/therapists")).json()) == 3
    # Turned off, a new clinic starts empty (the supervisor would load it with CLINIC_DEMO unset).
    empty = clinic_factory(backend, CLINIC_DEMO="0")
    assert requests.get(empty.url("/api/v1/therapists")).json() == []
    assert requests.get(empty.url("/api/v1/rooms")).json() == []
