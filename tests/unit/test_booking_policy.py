"""The booking rules as pure functions: cancellation policy, attendance, counts, fingerprints."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clinic import wire
from clinic.access import Caller
from clinic.errors import InvalidRequest
from services.booking import policy

START = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)
CLIENT = Caller(kind="manage", token="mng_x")


@pytest.mark.parametrize(("caller", "hours_before", "late"), [
    (CLIENT, 47.9, True),
    (CLIENT, 48.1, False),
    (CLIENT, 0.5, True),
    (Caller(kind="therapist", therapist_id="t1"), 1, False),
    (Caller(kind="admin"), 1, False),
])
def test_only_a_client_cancelling_inside_the_notice_is_late(caller, hours_before, late):
    now = START - timedelta(hours=hours_before)
    assert policy.is_late_cancellation(caller, START, now, 48) is late


def test_canceller_names_who_cancelled():
    assert policy.canceller(CLIENT) == "client"
    assert policy.canceller(Caller(kind="therapist", therapist_id="t1")) == "therapist"
    assert policy.canceller(Caller(kind="admin")) == "admin"


def test_attendance_needs_a_started_session():
    assert not policy.has_started(START, START - timedelta(seconds=1))
    assert policy.has_started(START, START)


def test_request_hash_ignores_key_order_but_not_values():
    one = {"a": 1, "client": {"name": "A", "email": "a@x"}}
    same = {"client": {"email": "a@x", "name": "A"}, "a": 1}
    assert policy.request_hash(one) == policy.request_hash(same)
    assert policy.request_hash(one) != policy.request_hash({**one, "a": 2})


@pytest.mark.parametrize("value", ["2027-03-02T10:00:00", "tomorrow", None,
                                   "0001-01-01T00:00:00+05:00"])
def test_naive_or_bad_instants_are_refused(value):
    with pytest.raises(InvalidRequest) as caught:
        wire.instant(value, "start")
    assert caught.value.details["fields"][0]["field"] == "start"


def test_instants_are_normalised_to_utc():
    assert wire.instant("2027-03-02T11:00:00+01:00", "start") == START
    assert wire.instant("2027-03-02T10:00:00Z", "start") == START


def test_day_range_is_inclusive_in_the_zone_across_dst():
    london = ZoneInfo("Europe/London")
    start, end = policy.day_range(date(2027, 3, 28), date(2027, 3, 28), london)  # spring forward
    assert (start.isoformat(), end.isoformat()) == ("2027-03-28T00:00:00+00:00",
                                                    "2027-03-28T23:00:00+00:00")
    with pytest.raises(InvalidRequest):
        policy.day_range(date(2027, 3, 2), date(2027, 3, 1), london)
    with pytest.raises(InvalidRequest):  # not a 500 at the edge of the calendar
        policy.day_range(date(9999, 12, 31), date(9999, 12, 31), london)


def _session(number, status, start):
    return {"session_number": number, "status": status, "start": start,
            "end": start + timedelta(minutes=50)}


def test_course_counts_completed_and_remaining():
    now = START + timedelta(weeks=2, hours=1)
    sessions = [
        _session(1, "attended", START),
        _session(2, "no_show", START + timedelta(weeks=1)),
        _session(3, "confirmed", START + timedelta(weeks=2)),  # ended, not yet marked
        _session(4, "confirmed", START + timedelta(weeks=3)),
        _session(5, "cancelled", START + timedelta(weeks=4)),
        _session(6, "confirmed", START + timedelta(weeks=5)),
    ]
    assert policy.course_counts(sessions, now) == (3, 2)
    assert [s["session_number"] for s in policy.to_cancel_in_course(sessions, now)] == [4, 6]


def test_video_links_only_for_video_sessions_with_a_base():
    assert policy.video_url("https://meet.example/", "video", "b1") == "https://meet.example/b1"
    assert policy.video_url("https://meet.example", "phone", "b1") is None
    assert policy.video_url("", "video", "b1") is None


def test_client_is_checked():
    with pytest.raises(InvalidRequest):
        policy.require_client({"name": "A", "email": "nope"})
    with pytest.raises(InvalidRequest):
        policy.require_client({"name": "A", "email": "a@x.org", "timezone": "Mars/Base"})
    assert policy.require_client({"name": " A ", "email": "a@x.org"})["client_name"] == "A"
