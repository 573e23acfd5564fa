"""The shared pieces, without a broker: settings, errors, the error table, events, OpenAPI."""

import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from nameko.exceptions import RemoteError, UnknownService, deserialize, serialize
from pydantic import BaseModel, ValidationError

from clinic.errors import (
    CourseConflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    SlotUnavailable,
    Unauthorized,
)
from clinic.events import Event
from clinic.settings import Settings
from gateway import openapi
from gateway.entrypoints import ROUTES, response_for_exception


def test_settings_defaults_follow_the_api_contract(tmp_path):
    settings = Settings.from_config({"CLINIC_DATA_DIR": str(tmp_path)})
    assert settings.amqp_uri == "amqp://guest:guest@localhost:5672/"
    assert settings.public_base_url == "http://127.0.0.1:8000"
    assert (settings.hold_minutes, settings.cancellation_notice_hours) == (10, 48.0)
    assert (settings.reminder_hours, settings.course_ending_notice_sessions) == (24.0, 3)
    assert settings.rate_limit_per_minute == 120
    assert settings.database_url("booking", {}) == f"sqlite:///{tmp_path.resolve()}/booking.db"


def test_settings_read_every_override():
    settings = Settings.from_config({
        "GATEWAY_HOST": "0.0.0.0", "GATEWAY_PORT": "9000", "REMINDER_HOURS": "1.5",
        "CORS_ORIGINS": "https://a.example, https://b.example", "CLINIC_DEMO": "0",
    })
    assert settings.public_base_url == "http://0.0.0.0:9000"
    assert settings.reminder_hours == 1.5
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.demo is False
    explicit = {"BOOKING_DATABASE_URL": "postgresql://db/booking"}
    assert settings.database_url("booking", explicit) == "postgresql://db/booking"


def test_clinic_errors_cross_rpc_as_themselves():
    error = CourseConflict("Week 9 is taken.", {"conflicts": ["2027-03-02T10:00:00+00:00"]})
    again = deserialize(json.loads(json.dumps(serialize(error))))
    assert type(again) is CourseConflict
    assert again.code == "course_conflict"
    assert again.details == {"conflicts": ["2027-03-02T10:00:00+00:00"]}
    assert str(again) == "Week 9 is taken."


@pytest.mark.parametrize(("error", "status", "code"), [
    (InvalidRequest.field("start", "Must have an offset."), 400, "invalid_request"),
    (Unauthorized("Token needed."), 401, "unauthorized"),
    (Forbidden("Not yours."), 403, "forbidden"),
    (NotFound("No such booking."), 404, "not_found"),
    (SlotUnavailable("Taken."), 409, "slot_unavailable"),
    (ServiceUnavailable("Silent.", {"service": "booking"}), 503, "service_unavailable"),
    (UnknownService("booking"), 503, "service_unavailable"),
])
def test_error_table_maps_failures_to_statuses(error, status, code):
    response = response_for_exception(error)
    body = json.loads(response.get_data())
    assert response.status_code == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_unexpected_failures_are_500_without_a_traceback():
    for error in (RuntimeError("secret detail"), RemoteError("KeyError", "secret")):
        response = response_for_exception(error)
        assert response.status_code == 500
        text = response.get_data(as_text=True)
        assert "secret" not in text and "Traceback" not in text
        assert json.loads(text)["error"]["code"] == "internal_error"


def test_validation_errors_name_each_field():
    class Example(BaseModel):
        start: int

    with pytest.raises(ValidationError) as caught:
        Example.model_validate({"start": "soon"})
    body = json.loads(response_for_exception(caught.value).get_data())
    assert body["error"]["details"]["fields"][0]["field"] == "start"


def test_event_envelope_round_trips_with_a_unique_id():
    first = Event(type="booking_confirmed", data={"booking_id": "b1"}, source="booking")
    second = Event(type="booking_confirmed", data={"booking_id": "b1"}, source="booking")
    assert first.id != second.id
    assert Event.from_payload(json.loads(json.dumps(first.to_payload()))) == first


def test_openapi_document_describes_every_public_route():
    import gateway.service  # noqa: F401 (declares the routes)

    doc = openapi.document("http://clinic.test")
    assert doc["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    declared = {(r.method, r.path) for r in ROUTES if not r.extra.get("hidden")}
    assert documented == declared
    text = json.dumps(doc)
    for name in doc["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in text
    for ref in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref


def test_rate_limiter_allows_the_budget_then_says_when_to_retry():
    from gateway.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(per_minute=3, clock=lambda: now[0])
    assert [limiter.check("1.2.3.4") for _ in range(3)] == [0, 0, 0]
    wait = limiter.check("1.2.3.4")
    assert wait == pytest.approx(20.0)  # one token every 20 s at 3 a minute
    assert limiter.check("5.6.7.8") == 0  # other clients are not affected
    now[0] += 20
    assert limiter.check("1.2.3.4") == 0


def test_cors_headers_only_for_listed_origins():
    from gateway.limits import cors_headers

    allowed = ("https://clinic.example",)
    assert cors_headers("https://evil.example", allowed, preflight=True) == {}
    headers = cors_headers("https://clinic.example", allowed, preflight=True)
    assert headers["Access-Control-Allow-Origin"] == "https://clinic.example"
    assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]


def test_dates_and_instants_are_text_in_their_one_format():
    from datetime import date

    from pydantic import TypeAdapter

    from gateway.schemas import Day, Instant

    day = TypeAdapter(Day)
    assert day.validate_python("2026-12-01") == date(2026, 12, 1)
    for bad in ("0", "1733011200", "2026-12-1", "1 Dec 2026", 0):
        with pytest.raises(ValidationError):
            day.validate_python(bad)
    instant = TypeAdapter(Instant)
    assert instant.validate_python("2026-12-01T10:00:00Z").utcoffset().total_seconds() == 0
    for bad in ("2026-12-01T10:00:00", 1733011200):
        with pytest.raises(ValidationError):
            instant.validate_python(bad)


def test_only_a_database_outage_is_a_503():
    import sqlite3

    import sqlalchemy as sa
    from sqlalchemy.exc import OperationalError

    from clinic.db import is_unavailable

    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection, pytest.raises(OperationalError) as missing:
        connection.execute(sa.text("select * from nowhere"))
    assert not is_unavailable(missing.value)  # a bug: it must not be retried as an outage
    assert is_unavailable(OperationalError("commit", {}, sqlite3.OperationalError(
        "database is locked")))
    refused = sa.create_engine("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(OperationalError) as down:
        refused.connect()
    assert is_unavailable(down.value)


def test_the_outbox_relay_purges_published_rows_once_an_hour(monkeypatch):
    from clinic import outbox as relay_module

    relay = relay_module.OutboxRelay("booking", relay_module.outbox_table(sa.MetaData()))
    purged: list[datetime] = []
    monkeypatch.setattr(relay, "purge", purged.append)
    clock = iter([1000.0, 1000.0, 1000.0 + 3599, 1000.0 + 3600, 1000.0 + 3600])
    relay.monotonic = lambda: next(clock)
    relay._purged_at = None
    relay._purge_when_due()  # at start
    relay._purge_when_due()  # at once again: not yet
    relay._purge_when_due()  # 59m59s later: not yet
    relay._purge_when_due()  # an hour later
    assert len(purged) == 2
