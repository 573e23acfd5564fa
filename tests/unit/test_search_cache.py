"""The rules by which a computed slot search or course options answer is reused (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from clinic.slots import RuleGrid, Schedule, WeeklyRule
from services.availability.search_cache import (
    Entry,
    SearchCache,
    SlotsEntry,
    course_until,
    next_grid_start,
    request_key,
    slots_until,
    stamp_of,
)

NOW = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)  # Monday
STAMP = stamp_of([("therapist:ann", "a1"), ("room:garden", "g1")])
HOUR = timedelta(hours=1)


def starts(*hours: float) -> tuple[datetime, ...]:
    return tuple(NOW + timedelta(hours=h) for h in hours)


def slots_entry(*hours: float, notice: int = 24, horizon: int = 2) -> SlotsEntry:
    moments = starts(*hours)
    return SlotsEntry(starts=moments, slots=tuple({"start": m.isoformat()} for m in moments),
                      timezone="Europe/London", min_notice=timedelta(hours=notice),
                      horizon=timedelta(days=horizon))


def test_stamps_compare_whatever_order_the_rows_came_in():
    assert stamp_of([("room:garden", "g1"), ("therapist:ann", "a1")]) == STAMP
    assert stamp_of([("therapist:ann", "a1")]) != STAMP  # a room more or less is a change


def test_slots_are_cut_at_the_notice_and_the_horizon_of_each_answer():
    entry = slots_entry(24, 25, 47, 48, 49)
    assert [s["start"] for s in entry.answer(NOW)["slots"]] == [
        m.isoformat() for m in starts(24, 25, 47, 48)]  # notice inclusive, horizon inclusive
    later = entry.answer(NOW + HOUR)["slots"]
    assert [s["start"] for s in later] == [m.isoformat() for m in starts(25, 47, 48, 49)]
    assert entry.answer(NOW)["timezone"] == "Europe/London"


def test_a_slots_entry_holds_while_the_horizon_stays_inside_what_was_computed():
    computed_until = NOW + timedelta(days=3)  # horizon 2 days plus the spare day
    until = slots_until(timedelta(days=2), computed_until, None)
    assert until == NOW + timedelta(days=1, microseconds=1)
    assert slots_until(timedelta(days=2), None, None) is None  # the window's end came first
    lapse = NOW + timedelta(minutes=10)
    assert slots_until(timedelta(days=2), computed_until, lapse) == lapse
    assert slots_until(timedelta(days=2), None, lapse) == lapse


def test_course_options_hold_until_the_notice_reaches_the_next_grid_start_or_a_hold_lapses():
    notice = timedelta(hours=24)
    next_start = NOW + timedelta(hours=25)
    assert course_until(notice, next_start, None) == NOW + HOUR + timedelta(microseconds=1)
    assert course_until(notice, next_start, NOW + timedelta(minutes=5)) == (
        NOW + timedelta(minutes=5))
    assert course_until(notice, None, None) is None


def tuesday_grid(zone: str = "Europe/London") -> RuleGrid:
    rule = WeeklyRule(1, time(10), time(12), frozenset({"video"}))
    return RuleGrid(Schedule(zone, (rule,), slot_interval_minutes=60), "video")


def test_the_next_grid_start_is_the_first_weekly_time_at_or_after_the_instant():
    grid = tuesday_grid()
    assert next_grid_start(grid, NOW) == datetime(2027, 3, 9, 10, 0, tzinfo=UTC)
    tuesday_ten = datetime(2027, 3, 9, 10, 0, tzinfo=UTC)
    assert next_grid_start(grid, tuesday_ten) == tuesday_ten
    assert next_grid_start(grid, tuesday_ten + timedelta(seconds=1)) == tuesday_ten + HOUR
    # Past Tuesday's last start: next week's, in summer time (London's clocks go forward on
    # 28 March 2027).
    assert next_grid_start(grid, datetime(2027, 3, 23, 12, 0, tzinfo=UTC)) == datetime(
        2027, 3, 30, 9, 0, tzinfo=UTC)
    empty = RuleGrid(Schedule("Europe/London", ()), "video")
    assert next_grid_start(empty, NOW) is None


def test_the_next_grid_start_is_never_later_than_any_start_of_the_next_week():
    grid = tuesday_grid("Pacific/Auckland")
    for hours in range(0, 24 * 8, 5):
        after = NOW + timedelta(hours=hours)
        found = next_grid_start(grid, after)
        assert found is not None and after <= found <= after + timedelta(days=7)
        day = found.astimezone(grid.zone)
        assert (day.weekday(), day.time()) in {(1, time(10)), (1, time(11))}


def test_an_entry_answers_only_for_its_stamp_and_before_its_end():
    entry = Entry(STAMP, NOW + HOUR, "answer")
    assert entry.fresh(STAMP, NOW)
    assert not entry.fresh(STAMP, NOW + HOUR)
    assert not entry.fresh(stamp_of([("therapist:ann", "a2"), ("room:garden", "g1")]), NOW)
    assert Entry(STAMP, None, "answer").fresh(STAMP, NOW + timedelta(days=400))


def test_the_cache_drops_stale_and_least_recently_used_entries():
    cache = SearchCache(size=2)
    cache.put(("a",), Entry(STAMP, None, "A"))
    cache.put(("b",), Entry(STAMP, NOW + HOUR, "B"))
    assert cache.get(("a",), STAMP, NOW) == "A"  # now the most recently used
    cache.put(("c",), Entry(STAMP, None, "C"))
    assert cache.get(("b",), STAMP, NOW) is None  # dropped: least recently used
    assert cache.get(("a",), STAMP, NOW) == "A" and cache.get(("c",), STAMP, NOW) == "C"
    assert cache.get(("a",), stamp_of([]), NOW) is None  # another stamp: gone for good
    assert cache.get(("a",), STAMP, NOW) is None
    cache.put(None, Entry(STAMP, None, "never"))
    assert cache.get(None, STAMP, NOW) is None


def test_request_keys_take_lists_and_refuse_what_cannot_be_hashed():
    assert request_key("course", "ann", ["2027-03-08"]) == ("course", "ann", ("2027-03-08",))
    assert request_key("slots", "ann", {"not": "a key"}) is None
    assert request_key("course", "ann", [["nested"]]) is None
    assert request_key("slots", "ann", date(2027, 3, 8)) == ("slots", "ann", date(2027, 3, 8))
