"""The one wire format (clinic/wire.py): the same value reads the same, and the same bad field
gets the same 400, in every service."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from clinic import wire
from clinic.errors import InvalidRequest
from services.availability import inputs
from services.booking import policy


def refusal(call) -> dict:
    with pytest.raises(InvalidRequest) as refused:
        call()
    return refused.value.details["fields"][0]


def test_instants_are_aware_utc_and_naive_ones_are_refused():
    assert wire.instant("2027-03-02T11:00:00+01:00", "start") == datetime(2027, 3, 2, 10,
                                                                          tzinfo=UTC)
    assert wire.instant("2027-03-02T10:00:00Z", "start").tzinfo is UTC
    for bad in ("2027-03-02T10:00:00", "tuesday", None, 1733011200):
        assert refusal(lambda bad=bad: wire.instant(bad, "start"))["field"] == "start"


def test_utc_and_iso_read_what_either_database_hands_back():
    naive = datetime(2027, 3, 2, 10)  # SQLite keeps no offset: it is UTC
    aware = datetime(2027, 3, 2, 11, tzinfo=timezone(timedelta(hours=1)))
    assert wire.utc(naive) == wire.utc(aware) == datetime(2027, 3, 2, 10, tzinfo=UTC)
    assert wire.iso(naive) == "2027-03-02T10:00:00+00:00"
    assert wire.iso(None) is None and wire.utc(None) is None


def test_days_zones_and_text():
    assert wire.day("2027-03-02", "from") == date(2027, 3, 2)
    assert refusal(lambda: wire.day("2027-02-30", "from"))["field"] == "from"
    assert refusal(lambda: wire.day("2/3/2027", "to"))["message"] == wire.DAY_HELP
    assert wire.zone("Europe/London").key == "Europe/London"
    assert refusal(lambda: wire.zone("Mars/Base"))["field"] == "tz"
    assert wire.zone_or("Mars/Base", "Europe/London").key == "Europe/London"
    assert wire.text("  Garden room ", "name") == "Garden room"
    assert refusal(lambda: wire.text("a\x00b", "name"))["message"] == wire.NUL_HELP
    assert refusal(lambda: wire.optional_text("a\x00b", "notes"))["message"] == wire.NUL_HELP
    assert wire.optional_text(None, "notes") is None


def test_the_same_bad_field_gets_the_same_answer_from_booking_and_availability():
    naive = "2027-03-02T10:00:00"
    from_availability = refusal(lambda: inputs.time_off_input({"start": naive,
                                                               "end": naive}))
    from_booking = refusal(lambda: wire.instant(naive, "start"))  # as booking reads a start
    assert from_availability == from_booking == {"field": "start", "message": wire.NAIVE_HELP}
    unknown = {"name": "A", "email": "a@x.org", "timezone": "Mars/Base"}
    from_booking = refusal(lambda: policy.require_client(unknown))
    assert from_booking == refusal(lambda: wire.zone("Mars/Base", "client.timezone"))
