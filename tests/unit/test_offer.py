"""``clinic.offer``: the one rule both availability and booking decide a start with, and
booking's copy of each therapist's offer (``services/booking/offers.py``), with no server."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic import offer
from clinic.errors import InvalidRequest, NotFound, SlotUnavailable
from clinic.offer import BeyondOffer, Offer
from clinic.slots import Calendar, Interval, Schedule, WeeklyRule, is_bookable
from services.booking.offers import OfferCache, OfferedTimes

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # a Monday
WEEKDAYS = [{"weekday": day, "start": "09:00", "end": "17:00",
             "modalities": ["in_person", "video"]}
            for day in ("monday", "tuesday", "wednesday", "thursday", "friday")]
SCHEDULE = {"timezone": "Europe/London", "weekly": WEEKDAYS, "buffer_minutes": 10,
            "slot_interval_minutes": 60, "min_notice_hours": 24, "horizon_days": 90}
HOLIDAY = Interval(datetime(2026, 6, 3, 8, 0, tzinfo=UTC), datetime(2026, 6, 4, 0, 0, tzinfo=UTC))


def an_offer(**changes) -> Offer:
    fields = {"therapist_id": "dr-a", "timezone": "Europe/London", "schedule": SCHEDULE,
              "durations": {"dit-session": 50, "assessment": 90}, "rooms": ("room-1", "room-2"),
              "away": (HOLIDAY,),
              "covers": Interval(NOW - timedelta(days=1), NOW + timedelta(days=92))}
    return Offer(**{**fields, **changes})


def check(start: str, session_type: str = "dit-session", modality: str = "video", **changes):
    return offer.check_session(an_offer(**changes), session_type, modality, start, NOW)


def test_a_start_on_the_schedule_is_answered_as_availability_always_answered():
    # Tuesday 2 June 10:00 London (BST) = 09:00 UTC
    assert check("2026-06-02T10:00:00+01:00", modality="in_person") == {
        "therapist_id": "dr-a", "modality": "in_person", "duration_minutes": 50,
        "buffer_minutes": 10, "rooms": ["room-1", "room-2"], "timezone": "Europe/London",
        "session_type": "dit-session", "start": "2026-06-02T09:00:00+00:00",
        "end": "2026-06-02T09:50:00+00:00"}
    assert check("2026-06-02T09:00:00Z")["rooms"] == []  # rooms matter only in person


@pytest.mark.parametrize("start", [
    "2026-06-01T14:00:00+01:00",  # within the 24 hours' notice
    "2026-06-02T10:30:00+01:00",  # off the hourly grid
    "2026-06-02T16:30:00+01:00",  # would end after the working day
    "2026-06-03T10:00:00+01:00",  # time off (or an outside calendar's busy time)
    "2026-06-06T10:00:00+01:00",  # a Saturday
    "2026-08-31T10:00:00+01:00",  # past the 90-day horizon
])
def test_times_not_on_offer_are_refused(start):
    with pytest.raises(SlotUnavailable, match="not one this therapist offers"):
        check(start)


def test_in_person_needs_a_room_and_phone_needs_a_rule_offering_it():
    with pytest.raises(SlotUnavailable):
        check("2026-06-02T10:00:00+01:00", modality="in_person", rooms=())
    with pytest.raises(SlotUnavailable):
        check("2026-06-02T10:00:00+01:00", modality="phone")


def test_bad_requests_get_availabilitys_own_answers_in_its_order():
    with pytest.raises(InvalidRequest) as error:
        check("not a time", session_type="massage", modality="telepathy")
    assert error.value.details["fields"][0]["field"] == "session_type"
    with pytest.raises(InvalidRequest) as error:
        check("not a time", modality="telepathy")
    assert error.value.details["fields"][0]["field"] == "modality"
    with pytest.raises(InvalidRequest) as error:
        check("not a time")
    assert error.value.details["fields"][0]["field"] == "start"
    with pytest.raises(SlotUnavailable, match="no schedule yet"):
        check("2026-06-02T10:00:00+01:00", schedule=None)


def test_a_start_beyond_what_the_offer_covers_is_not_decided_from_it():
    with pytest.raises(BeyondOffer):
        check("2026-06-02T10:00:00+01:00",
              covers=Interval(NOW, datetime(2026, 6, 2, 9, 30, tzinfo=UTC)))


def test_an_offer_crosses_the_wire_unchanged():
    sent = an_offer()
    received = Offer.from_wire(sent.to_wire())
    assert received == sent
    assert received.engine_schedule == sent.engine_schedule


@settings(max_examples=200, deadline=None)
@given(hours=st.integers(min_value=0, max_value=24 * 91), minute=st.sampled_from([0, 30]),
       modality=st.sampled_from(["in_person", "video", "phone"]))
def test_it_decides_exactly_as_the_slot_engine(hours, minute, modality):
    start = NOW + timedelta(hours=hours, minutes=minute)
    schedule = Schedule("Europe/London", tuple(
        WeeklyRule(day, time(9), time(17), frozenset({"in_person", "video"}))
        for day in range(5)), buffer_minutes=10, slot_interval_minutes=60,
        min_notice_hours=24, horizon_days=90)
    expected = is_bookable(schedule, Calendar(time_off=(HOLIDAY,), rooms=("room-1", "room-2")),
                           modality=modality, duration=timedelta(minutes=50), start=start,
                           now=NOW)
    try:
        check(start.isoformat(), modality=modality)
        decided = True
    except SlotUnavailable:
        decided = False
    assert decided == expected


# --- booking's copy of each therapist's offer ---------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


class FakeAvailability:
    """Availability's RPCs as booking calls them, counting the calls."""

    def __init__(self, offers: dict[str, Offer]) -> None:
        self.offers = offers
        self.calls: list[str] = []
        self.during_fetch = lambda: None

    def therapist_offer(self, therapist_id: str) -> dict:
        self.calls.append("therapist_offer")
        if therapist_id not in self.offers:
            raise NotFound(f"No therapist {therapist_id!r}.")
        self.during_fetch()
        return self.offers[therapist_id].to_wire()

    def check_session(self, therapist_id, session_type, modality, start) -> dict:
        self.calls.append("check_session")  # availability reads what it needs around start
        return offer.check_session(an_offer(), session_type, modality, start, NOW)


def booking_side(offers: dict[str, Offer] | None = None):
    remote = FakeAvailability(offers if offers is not None else {"dr-a": an_offer()})
    clock = Clock()
    cache = OfferCache(ttl_seconds=60, clock=clock)
    return OfferedTimes(remote, cache, lambda: NOW), remote, cache, clock


def test_many_bookings_of_one_therapist_ask_availability_once():
    times, remote, _, _ = booking_side()
    for day in (2, 4, 5):
        assert times.check_session("dr-a", "dit-session", "video",
                                   f"2026-06-0{day}T10:00:00+01:00")["duration_minutes"] == 50
    with pytest.raises(SlotUnavailable):
        times.check_session("dr-a", "dit-session", "video", "2026-06-03T10:00:00+01:00")
    assert remote.calls == ["therapist_offer"]


def test_a_change_announced_by_availability_is_fetched_again():
    times, remote, cache, _ = booking_side()
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T10:00:00+01:00")
    remote.offers["dr-a"] = an_offer(away=(HOLIDAY, Interval(
        datetime(2026, 6, 2, 0, 0, tzinfo=UTC), datetime(2026, 6, 3, 0, 0, tzinfo=UTC))))
    cache.forget("dr-b")  # another therapist's change leaves this copy alone
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T11:00:00+01:00")
    cache.forget("dr-a")
    with pytest.raises(SlotUnavailable):
        times.check_session("dr-a", "dit-session", "video", "2026-06-02T11:00:00+01:00")
    assert remote.calls == ["therapist_offer", "therapist_offer"]
    cache.forget(None)  # a room or session type: everyone's
    times.check_session("dr-a", "dit-session", "video", "2026-06-04T11:00:00+01:00")
    assert remote.calls.count("therapist_offer") == 3


def test_nothing_is_kept_past_its_time_to_live():
    times, remote, _, clock = booking_side()
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T10:00:00+01:00")
    clock.seconds = 59
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T11:00:00+01:00")
    clock.seconds = 61
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T12:00:00+01:00")
    assert remote.calls == ["therapist_offer", "therapist_offer"]


def test_a_fetch_overtaken_by_a_change_is_used_once_not_kept():
    times, remote, cache, _ = booking_side()
    remote.during_fetch = lambda: cache.forget("dr-a")  # the change lands mid-fetch
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T10:00:00+01:00")
    assert cache.get("dr-a") is None
    remote.during_fetch = lambda: cache.forget_all()  # a reconnection mid-fetch
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T10:00:00+01:00")
    assert cache.get("dr-a") is None
    remote.during_fetch = lambda: None
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T10:00:00+01:00")
    assert cache.get("dr-a") is not None


def test_an_unknown_therapist_is_availabilitys_404_and_nothing_is_kept():
    times, remote, cache, _ = booking_side()
    with pytest.raises(NotFound):
        times.check_session("dr-nobody", "dit-session", "video", "2026-06-02T10:00:00+01:00")
    assert cache.get("dr-nobody") is None


def test_past_the_span_it_was_read_for_availability_decides():
    narrow = an_offer(covers=Interval(NOW, NOW + timedelta(days=3)))
    times, remote, _, _ = booking_side({"dr-a": narrow})
    times.check_session("dr-a", "dit-session", "video", "2026-06-02T10:00:00+01:00")
    answer = times.check_session("dr-a", "dit-session", "video", "2026-06-09T10:00:00+01:00")
    assert answer["start"] == "2026-06-09T09:00:00+00:00"
    assert remote.calls == ["therapist_offer", "check_session"]
