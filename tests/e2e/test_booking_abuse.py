"""Issue #16's booking findings over HTTP through the gateway, on SQLite and PostgreSQL: the
live-hold limit (429), a hold turned into a booking only with its manage token (403), 401
before 404, Idempotency-Key shapes (400), "sign out all my links" and the admin's clean-up."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from tests.e2e.test_booking import next_slot, set_up_therapist

pytestmark = pytest.mark.e2e

CLIENT = {"name": "Ada Quill-Lovelace", "email": "ada@example.org", "phone": "+44 7700 900123"}
NOTES = "private worries about sleep"


def test_abuse_limits_and_credentials_over_http(backend, clinic_factory):
    clinic = clinic_factory(backend)
    therapist = set_up_therapist(clinic)
    slot = {"therapist_id": therapist, "session_type": "dit-session", "modality": "video"}

    def post(path: str, body: dict, **headers: str) -> requests.Response:
        return requests.post(clinic.url(path), json=body, headers=headers, timeout=30)

    holds = [post("/api/v1/holds", {**slot, "start": next_slot(hour=h).isoformat()})
             for h in (9, 10, 11, 12)]
    assert [h.status_code for h in holds] == [201, 201, 201, 429]
    assert holds[3].json()["error"]["code"] == "rate_limited"
    assert int(holds[3].headers["Retry-After"]) > 0

    hold = holds[0].json()
    booking_body = {**slot, "start": next_slot(hour=9).isoformat(), "client": CLIENT,
                    "hold_id": hold["id"], "notes": NOTES}
    stranger = post("/api/v1/bookings", booking_body)
    other_hold = post("/api/v1/bookings", booking_body,
                      Authorization=f"Bearer {holds[1].json()['manage_token']}")
    assert (stranger.status_code, other_hold.status_code) == (403, 403)
    booked = post("/api/v1/bookings", booking_body,
                  Authorization=f"Bearer {hold['manage_token']}")
    assert booked.status_code == 201, booked.text
    booking = booked.json()

    # 401 before 404: without a valid token, a booking that exists and one that does not look
    # the same; a made-up manage token is no better than none
    for headers in ({}, {"Authorization": "Bearer mng_made-up-token-0123456789"}):
        for target in (booking["id"], "00000000-0000-0000-0000-000000000000"):
            seen = requests.get(clinic.url(f"/api/v1/bookings/{target}"), headers=headers,
                                timeout=30)
            assert seen.status_code == 401, (headers, target, seen.text)

    short = post("/api/v1/bookings", {**slot, "start": next_slot(hour=13).isoformat(),
                                      "client": CLIENT}, **{"Idempotency-Key": "too-short"})
    assert short.status_code == 400
    assert short.json()["error"]["details"]["fields"][0]["field"] == "Idempotency-Key"

    owner = {"Authorization": f"Bearer {booking['manage_token']}"}
    signed_out = requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/sign-out"),
                               headers=owner, timeout=30)
    assert signed_out.status_code == 200 and signed_out.json()["revoked"] >= 1
    again = requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}"), headers=owner,
                         timeout=30)
    assert again.status_code == 401

    now = datetime.now(UTC)
    window = {"since": (now - timedelta(hours=1)).isoformat(),
              "until": (now + timedelta(hours=1)).isoformat()}
    for headers, status in (({}, 401), (owner, 403)):  # the admin's alone
        refused = post("/api/v1/clients/cancel-bookings",
                       {**window, "email": CLIENT["email"]}, **headers)
        assert refused.status_code == status
    cleaned = post("/api/v1/clients/cancel-bookings", {**window, "email": "ADA@example.org"},
                   **clinic.admin)
    assert cleaned.status_code == 200 and cleaned.json()["cancelled"] == [booking["id"]]
    seen = requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}"), headers=clinic.admin,
                        timeout=30).json()
    assert (seen["status"], seen["cancelled_by"]) == ("cancelled", "admin")
    trail = requests.get(clinic.url("/api/v1/audit"), params={"booking_id": booking["id"]},
                         headers=clinic.admin, timeout=30)
    assert [(e["actor"]["kind"], e["action"]) for e in trail.json()] == [
        ("client", "created"), ("client", "signed_out"), ("admin", "cancelled"),
        ("admin", "read")]
    assert requests.get(clinic.url("/api/v1/audit"), params={"booking_id": booking["id"]},
                        headers=owner, timeout=30).status_code == 403

    notified = requests.get(clinic.url("/api/v1/notifications"), headers=clinic.admin,
                            params={"booking_id": booking["id"]}, timeout=30)
    assert CLIENT["email"] in {n["recipient"] for n in notified.json()}
    exported = requests.get(clinic.url("/api/v1/clients/export"), headers=clinic.admin,
                            params={"email": CLIENT["email"]}, timeout=30)
    assert [b["id"] for b in exported.json()["booking"]["bookings"]] == [booking["id"]]
    assert {m["booking_id"] for m in exported.json()["notifications"]} == {booking["id"]}
    erased = post("/api/v1/clients/erase", {"email": CLIENT["email"]}, **clinic.admin)
    assert erased.status_code == 202 and erased.json()["booking"]["bookings"] == 1
    seen = requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}"), headers=clinic.admin,
                        timeout=30).json()
    assert seen["client"]["name"] == "Erased client" and seen["start"] == booking["start"]
    after = requests.get(clinic.url("/api/v1/clients/export"), headers=clinic.admin,
                         params={"email": CLIENT["email"]}, timeout=30).json()
    assert after["booking"] == {"bookings": [], "courses": []}
    # (messages lose their recipient once notifications has heard client_erased; below)

    # every table of every service, once notifications has heard client_erased
    personal = (CLIENT["name"], CLIENT["email"], CLIENT["phone"], NOTES)
    deadline = time.monotonic() + 30
    while (found := personal_fields(clinic, personal)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found == []
    assert requests.get(clinic.url("/api/v1/clients/export"), headers=clinic.admin,
                        params={"email": CLIENT["email"]}, timeout=30).json() == {
        "email": CLIENT["email"], "booking": {"bookings": [], "courses": []},
        "progress": [], "notifications": []}


def personal_fields(clinic, personal: tuple[str, ...]) -> list[str]:
    """Where (service.table) any of ``personal`` is still stored."""
    found = []
    for service in ("availability", "booking", "notifications", "progress"):
        engine = sa.create_engine(clinic.env[f"{service.upper()}_DATABASE_URL"])
        try:
            tables = sa.MetaData()
            tables.reflect(engine)
            with engine.connect() as connection:
                for table in tables.sorted_tables:
                    dump = repr(connection.execute(sa.select(table)).all()).lower()
                    found += [f"{service}.{table.name}: {value}" for value in personal
                              if value.lower() in dump]
        finally:
            engine.dispose()
    return found
