"""The waitlist's pure rules: joining input, whether a freed time fits an entry (therapist,
windows in the entry's zone across DST, until, a course's weeks), joining order, which times an
event frees, and the UTC masks the scan filters by (never excluding a fitting entry)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from clinic.errors import InvalidRequest
from services.booking import waitlist
from services.booking.waitlist import Entry, FreedTime

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
TUESDAY_10 = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)  # 10:00 in London (GMT)
MORNINGS = [{"weekday": "tuesday", "start": "09:00", "end": "12:00"}]


def entry(id="e1", therapist="t1", windows=MORNINGS, tz="Europe/London", until_at=None,
          kind="session", sessions=1, status="waiting") -> Entry:
    return Entry(id=id, therapist_id=therapist, session_type="dit", modality="video",
                 kind=kind, sessions=sessions, windows=waitlist.windows_of(windows),
                 timezone=tz, until_at=until_at, status=status)


def session_at(start, minutes=50):
    return [(start, start + timedelta(minutes=minutes))]


def test_a_time_inside_a_window_fits_and_one_outside_does_not():
    assert waitlist.fits(entry(), "t1", session_at(TUESDAY_10), NOW)
    assert not waitlist.fits(entry(), "t1", session_at(TUESDAY_10 + timedelta(hours=2)), NOW)
    assert not waitlist.fits(entry(), "t1", session_at(TUESDAY_10 + timedelta(days=1)), NOW)
    # ends after the window closes
    assert not waitlist.fits(entry(), "t1", session_at(TUESDAY_10 + timedelta(minutes=90)), NOW)


def test_the_therapist_must_be_the_entrys_unless_it_takes_any():
    assert not waitlist.fits(entry(), "t2", session_at(TUESDAY_10), NOW)
    assert waitlist.fits(entry(therapist=None), "t2", session_at(TUESDAY_10), NOW)


def test_windows_are_wall_clock_in_the_entrys_zone_across_dst():
    after_dst = TUESDAY_10 + timedelta(weeks=4)  # 30 March: London is on BST
    nine_local = after_dst - timedelta(hours=2)  # 08:00 UTC = 09:00 BST
    assert waitlist.fits(entry(), "t1", session_at(nine_local), NOW)
    new_york = entry(tz="America/New_York")
    assert not waitlist.fits(new_york, "t1", session_at(TUESDAY_10), NOW)  # 05:00 there
    assert waitlist.fits(new_york, "t1", session_at(TUESDAY_10 + timedelta(hours=5)), NOW)


def test_until_past_and_closed_entries_do_not_fit():
    until = datetime(2027, 3, 2, 0, 0, tzinfo=UTC)
    assert not waitlist.fits(entry(until_at=until), "t1", session_at(TUESDAY_10), NOW)
    assert not waitlist.fits(entry(status="offered"), "t1", session_at(TUESDAY_10), NOW)
    assert not waitlist.fits(entry(), "t1", session_at(NOW - timedelta(hours=1)), NOW)


def test_a_course_entry_needs_all_its_weekly_sessions_in_a_window():
    course = entry(kind="course", sessions=3)
    weeks = [(TUESDAY_10 + timedelta(weeks=w), TUESDAY_10 + timedelta(weeks=w, minutes=50))
             for w in range(3)]
    assert waitlist.fits(course, "t1", weeks, NOW)
    assert not waitlist.fits(course, "t1", weeks[:2], NOW)  # fewer sessions than asked
    moved = [*weeks[:2], (weeks[2][0] + timedelta(hours=3), weeks[2][1] + timedelta(hours=3))]
    assert not waitlist.fits(course, "t1", moved, NOW)


def test_entries_are_offered_in_joining_order_skipping_who_had_this_time():
    entries = [entry("a"), entry("b", windows=[{"weekday": "monday", "start": "09:00",
                                                "end": "12:00"}]), entry("c"), entry("d")]
    freed = FreedTime("t1", TUESDAY_10)
    assert [e.id for e in waitlist.in_joining_order(entries, freed, NOW, set())] == \
        ["a", "c", "d"]
    assert [e.id for e in waitlist.in_joining_order(entries, freed, NOW, {"a"})] == ["c", "d"]


def test_which_times_an_event_frees():
    booking = {"therapist_id": "t1", "start": TUESDAY_10.isoformat()}
    later = {"therapist_id": "t1", "start": (TUESDAY_10 + timedelta(weeks=1)).isoformat()}
    freed = FreedTime("t1", TUESDAY_10)
    assert waitlist.freed_times({"type": "booking_cancelled",
                                 "data": {"booking": booking}}) == [freed]
    assert waitlist.freed_times({"type": "booking_rescheduled",
                                 "data": {"booking": later, "previous": booking}}) == [freed]
    for reason, frees in (("expired", True), ("released", True), ("declined", True),
                          ("converted", False)):
        found = waitlist.freed_times({"type": "hold_released",
                                      "data": {"hold": booking, "reason": reason}})
        assert found == ([freed] if frees else [])
    cancelled = waitlist.freed_times({"type": "course_cancelled",
                                      "data": {"cancelled": [later, booking]}})
    assert [t.start for t in cancelled] == [TUESDAY_10, TUESDAY_10 + timedelta(weeks=1)]
    assert waitlist.freed_times({"type": "booking_confirmed",
                                 "data": {"booking": booking}}) == []


@pytest.mark.parametrize("tz", ["Europe/London", "America/New_York", "Asia/Kolkata", "UTC"])
def test_the_utc_masks_never_exclude_a_time_that_fits(tz):
    windows = [{"weekday": "sunday", "start": "22:30", "end": "23:59"},
               {"weekday": "wednesday", "start": "07:15", "end": "09:00"}]
    weekdays, hours = waitlist.reach(windows, tz, NOW.date())
    candidate = entry(windows=windows, tz=tz)
    start = NOW
    while start < NOW + timedelta(days=400):
        if waitlist.fits(candidate, "t1", session_at(start, 15), NOW):
            weekday_bit, hour_bit = waitlist.reach_bits(start)
            assert weekdays & weekday_bit and hours & hour_bit, start
        start += timedelta(minutes=15)


def test_joining_input_is_checked_with_clear_fields():
    body = {"session_type": "dit", "modality": "video", "windows": MORNINGS,
            "client": {"name": "Bea", "email": "bea@example.org"}}
    values = waitlist.entry_input(body, "Europe/London", date(2027, 3, 1))
    assert values["kind"] == "session" and values["sessions"] == 1
    assert values["timezone"] == "Europe/London" and values["therapist_id"] is None
    course = waitlist.entry_input({**body, "kind": "course"}, "Europe/London", date(2027, 3, 1))
    assert course["sessions"] == 16
    for bad, field in (({"windows": []}, "windows"),
                       ({"windows": [{"weekday": "funday", "start": "09:00", "end": "10:00"}]},
                        "windows[0].weekday"),
                       ({"windows": [{"weekday": "monday", "start": "11:00", "end": "10:00"}]},
                        "windows[0].end"),
                       ({"modality": "carrier pigeon"}, "modality"),
                       ({"kind": "course", "sessions": 53}, "sessions"),
                       ({"until": "2027-02-01"}, "until"),
                       ({"tz": "Mars/Olympus"}, "tz")):
        with pytest.raises(InvalidRequest) as refused:
            waitlist.entry_input({**body, **bad}, "Europe/London", date(2027, 3, 1))
        assert field in str(refused.value.details), (bad, refused.value.details)
