"""Course planner: every session of a weekly course must be bookable, DST and skips included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic.slots import (
    MODALITIES,
    Calendar,
    Interval,
    Schedule,
    WeeklyRule,
    is_bookable,
)
from services.availability.course_planner import (
    CourseOption,
    course_conflicts,
    course_starts,
    course_weeks,
    plan_course_options,
)
from tests.unit.test_slots import intervals_near, moments, schedules

LONDON = ZoneInfo("Europe/London")
ALL = frozenset(MODALITIES)
TUESDAY, SUNDAY = 1, 6
FIFTY = timedelta(minutes=50)
EARLY = datetime(2025, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def tuesday_schedule(start: time = time(10), end: time = time(12)) -> Schedule:
    return Schedule("Europe/London", (WeeklyRule(TUESDAY, start, end, ALL),), min_notice_hours=24)


def plan(schedule: Schedule, calendar: Calendar, **overrides: object) -> list[CourseOption]:
    request = {
        "modality": "video",
        "duration": FIFTY,
        "sessions": 16,
        "from_date": date(2025, 1, 6),
        "skip_weeks": (),
        "now": EARLY,
        **overrides,
    }
    return plan_course_options(schedule, calendar, **request)


def conflicts(schedule: Schedule, calendar: Calendar, **overrides: object) -> list[datetime]:
    request = {
        "modality": "video",
        "duration": FIFTY,
        "sessions": 16,
        "skip_weeks": (),
        "now": EARLY,
        **overrides,
    }
    return course_conflicts(schedule, calendar, **request)


def test_busy_week_nine_blocks_only_that_time() -> None:
    schedule = tuesday_schedule()
    week_nine = utc(2025, 3, 4, 10)  # ninth Tuesday from 2025-01-07, still GMT
    calendar = Calendar(busy=(Interval(week_nine, week_nine + FIFTY),))
    options = plan(schedule, calendar)
    # 10:00 would clash in week 9; 11:00 is exactly one buffer after that session ends.
    assert [(option.weekday, option.local_time) for option in options] == [("tuesday", "11:00")]
    assert conflicts(schedule, calendar, first_start=utc(2025, 1, 7, 10)) == [week_nine]
    assert conflicts(schedule, calendar, first_start=utc(2025, 1, 7, 11)) == []
    # Checking only the first two weeks would have missed it.
    for start in (utc(2025, 1, 7, 10), utc(2025, 1, 14, 10)):
        assert is_bookable(
            schedule, calendar, modality="video", duration=FIFTY, start=start, now=EARLY
        )


def test_skip_week_lengthens_the_course_and_stays_empty() -> None:
    schedule = tuesday_schedule(time(10), time(11))
    skip = [date(2025, 2, 12)]  # a Wednesday: the whole week of Monday 2025-02-10 is skipped
    (option,) = plan(schedule, Calendar(), skip_weeks=skip)
    starts = [session.start for session in option.sessions]
    assert len(starts) == 16
    assert utc(2025, 2, 11, 10) not in starts
    assert starts[0] == utc(2025, 1, 7, 10)
    assert starts[-1] == utc(2025, 4, 29, 9)  # 16 weeks after the first, 10:00 BST
    days = [start.astimezone(LONDON).date() for start in starts]
    gaps = [(later - earlier).days for earlier, later in zip(days, days[1:], strict=False)]
    assert gaps == [7] * 4 + [14] + [7] * 10  # one two-week gap, across the skipped week

    weeks = course_weeks(date(2025, 1, 6), 16, skip)
    assert len(weeks) == 16 and date(2025, 2, 10) not in weeks
    assert weeks[-1] == date(2025, 1, 6) + timedelta(weeks=16)
    assert course_weeks(date(2025, 1, 6), 16, ())[-1] == date(2025, 1, 6) + timedelta(weeks=15)
    assert course_starts("Europe/London", utc(2025, 1, 7, 10), 16, skip) == starts


def test_course_across_october_dst_keeps_ten_local() -> None:
    schedule = tuesday_schedule(time(10), time(11))
    (option,) = plan(schedule, Calendar(), from_date=date(2025, 9, 1), now=utc(2025, 8, 1))
    assert option.weekday == "tuesday" and option.local_time == "10:00"
    local = [session.start.astimezone(LONDON) for session in option.sessions]
    assert {moment.strftime("%A %H:%M") for moment in local} == {"Tuesday 10:00"}
    utc_hours = [session.start.hour for session in option.sessions]
    assert utc_hours[:8] == [9] * 8  # BST until 2025-10-26
    assert utc_hours[8:] == [10] * 8  # GMT after
    assert course_starts("Europe/London", option.sessions[0].start, 16, ()) == [
        session.start for session in option.sessions
    ]


def test_spring_gap_week_means_no_option() -> None:
    # Sundays 01:00-03:00 London; 01:00 and 01:30 do not exist on 2025-03-30.
    schedule = Schedule(
        "Europe/London",
        (WeeklyRule(SUNDAY, time(1), time(3), ALL),),
        slot_interval_minutes=30,
        min_notice_hours=0,
    )
    request = {"sessions": 8, "from_date": date(2025, 3, 1), "duration": timedelta(minutes=25)}
    options = plan(schedule, Calendar(), **request)
    assert [option.local_time for option in options] == ["02:00", "02:30"]
    # The 01:30 course's fold=0 reading that week (01:30Z) is a real 02:30 BST slot,
    # so the gap week must be flagged even though that instant is bookable.
    found = conflicts(
        schedule,
        Calendar(),
        first_start=utc(2025, 3, 2, 1, 30),
        sessions=8,
        duration=timedelta(minutes=25),
    )
    assert found == [utc(2025, 3, 30, 1, 30)]


def test_first_session_never_slides_past_a_busy_week() -> None:
    schedule = tuesday_schedule(time(10), time(11))
    first = utc(2025, 1, 7, 10)
    calendar = Calendar(busy=(Interval(first, first + FIFTY),))
    assert plan(schedule, calendar) == []
    # Minimum notice, unlike a clash, does move the first session to the next week.
    (option,) = plan(schedule, Calendar(), now=utc(2025, 1, 6, 11))
    assert option.sessions[0].start == utc(2025, 1, 14, 10)
    (option,) = plan(schedule, Calendar(), now=utc(2025, 1, 6, 10))
    assert option.sessions[0].start == first


def test_first_session_skips_a_skipped_week() -> None:
    schedule = tuesday_schedule(time(10), time(11))
    (option,) = plan(schedule, Calendar(), skip_weeks=[date(2025, 1, 6)], sessions=2)
    assert [s.start for s in option.sessions] == [utc(2025, 1, 14, 10), utc(2025, 1, 21, 10)]
    with pytest.raises(ValueError):
        course_starts("Europe/London", utc(2025, 1, 7, 10), 2, [date(2025, 1, 9)])


def test_room_may_change_week_to_week_but_one_is_needed_every_week() -> None:
    schedule = tuesday_schedule(time(10), time(11))
    starts = course_starts("Europe/London", utc(2025, 1, 7, 10), 4, ())
    sessions = [Interval(start, start + FIFTY) for start in starts]
    alternating = {"room-a": tuple(sessions[0::2]), "room-b": tuple(sessions[1::2])}
    calendar = Calendar(rooms=("room-a", "room-b"), room_busy=alternating)
    request = {"modality": "in_person", "sessions": 4}
    assert len(plan(schedule, calendar, **request)) == 1
    both_busy_week_3 = {**alternating, "room-b": (*alternating["room-b"], sessions[2])}
    calendar = Calendar(rooms=("room-a", "room-b"), room_busy=both_busy_week_3)
    assert plan(schedule, calendar, **request) == []
    assert conflicts(schedule, calendar, first_start=starts[0], **request) == [starts[2]]


def test_course_beyond_the_horizon_is_not_offered() -> None:
    schedule = Schedule(
        "Europe/London", (WeeklyRule(TUESDAY, time(10), time(11), ALL),), horizon_days=60
    )
    assert plan(schedule, Calendar(), sessions=8) != []
    assert plan(schedule, Calendar(), sessions=10) == []


@pytest.mark.parametrize("sessions", [0, 53, -1])
def test_sessions_out_of_range(sessions: int) -> None:
    schedule = tuesday_schedule()
    with pytest.raises(ValueError):
        plan(schedule, Calendar(), sessions=sessions)
    with pytest.raises(ValueError):
        conflicts(schedule, Calendar(), first_start=utc(2025, 1, 7, 10), sessions=sessions)
    with pytest.raises(ValueError):
        course_weeks(date(2025, 1, 6), sessions, ())
    with pytest.raises(ValueError):
        course_starts("Europe/London", utc(2025, 1, 7, 10), sessions, ())


def test_sessions_bounds_are_accepted() -> None:
    assert len(course_weeks(date(2025, 1, 6), 1, ())) == 1
    assert len(course_weeks(date(2025, 1, 6), 52, ())) == 52


def test_course_weeks_needs_a_monday() -> None:
    with pytest.raises(ValueError):
        course_weeks(date(2025, 1, 7), 4, ())


def test_options_are_sorted_by_first_session() -> None:
    schedule = Schedule(
        "Europe/London",
        (
            WeeklyRule(4, time(9), time(10), ALL),
            WeeklyRule(TUESDAY, time(15), time(17), ALL),
            WeeklyRule(TUESDAY, time(9), time(10), ALL),
        ),
    )
    options = plan(schedule, Calendar(), sessions=4)
    assert [(o.weekday, o.local_time) for o in options] == [
        ("tuesday", "09:00"),
        ("tuesday", "15:00"),
        ("tuesday", "16:00"),
        ("friday", "09:00"),
    ]


def test_planning_a_busy_calendar_matches_a_brute_force_check() -> None:
    # ~30 weekly times, 16 sessions, ~2,000 busy intervals: every offered session must be free
    # when checked against every interval. (Speed itself: bench/slots.py.)
    rules = tuple(WeeklyRule(day, time(9), time(15), ALL) for day in range(5))
    schedule = Schedule("Europe/London", rules, min_notice_hours=0)
    # ~2,000 busy intervals, all on Mondays to Wednesdays: Thursday and Friday times stay free.
    spread = (
        Interval(EARLY + timedelta(minutes=97 * i), EARLY + timedelta(minutes=97 * i + 30))
        for i in range(4700)
    )
    busy = tuple(b for b in spread if b.start.astimezone(ZoneInfo("Europe/London")).weekday() < 3)
    options = plan(schedule, Calendar(busy=busy, rooms=("room-a",)), modality="in_person")
    assert options  # the busy pattern leaves some weekly times free
    buffer = timedelta(minutes=schedule.buffer_minutes)
    for option in options:
        for session in option.sessions:
            assert not any(
                session.start < b.end + buffer and b.start < session.end + buffer for b in busy
            )


# --- properties ----------------------------------------------------------------


@st.composite
def course_requests(draw: st.DrawFn) -> dict:
    schedule = draw(schedules())
    # Long enough horizons that whole courses can fit.
    schedule = Schedule(
        schedule.timezone,
        schedule.rules,
        buffer_minutes=schedule.buffer_minutes,
        slot_interval_minutes=schedule.slot_interval_minutes,
        min_notice_hours=schedule.min_notice_hours,
        horizon_days=draw(st.integers(30, 200)),
    )
    now = draw(moments())
    from_date = now.date() + timedelta(days=draw(st.integers(-3, 10)))
    sessions = draw(st.integers(1, 12))
    span_days = 7 * (sessions + 4)
    anchor = datetime.combine(from_date, time(), tzinfo=UTC)
    rooms = tuple(draw(st.lists(st.sampled_from(("r1", "r2")), unique=True, max_size=2)))
    calendar = Calendar(
        time_off=tuple(draw(st.lists(intervals_near(anchor, span_days, 3 * 24 * 60), max_size=2))),
        busy=tuple(draw(st.lists(intervals_near(anchor, span_days, 180), max_size=20))),
        rooms=rooms,
        room_busy={
            room: tuple(draw(st.lists(intervals_near(anchor, span_days, 240), max_size=10)))
            for room in rooms
        },
    )
    skip_weeks = draw(
        st.lists(st.dates(from_date, from_date + timedelta(days=span_days)), max_size=3)
    )
    return {
        "schedule": schedule,
        "calendar": calendar,
        "modality": draw(st.sampled_from(MODALITIES)),
        "duration": timedelta(minutes=draw(st.integers(1, 24)) * 5),
        "sessions": sessions,
        "from_date": from_date,
        "skip_weeks": skip_weeks,
        "now": now,
    }


def _plan(request: dict) -> list[CourseOption]:
    return plan_course_options(
        request["schedule"],
        request["calendar"],
        modality=request["modality"],
        duration=request["duration"],
        sessions=request["sessions"],
        from_date=request["from_date"],
        skip_weeks=request["skip_weeks"],
        now=request["now"],
    )


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(course_requests())
def test_property_offered_courses_are_fully_bookable(request: dict) -> None:
    schedule: Schedule = request["schedule"]
    zone = ZoneInfo(schedule.timezone)
    skipped = {day - timedelta(days=day.weekday()) for day in request["skip_weeks"]}
    ask = {"modality": request["modality"], "duration": request["duration"], "now": request["now"]}
    options = _plan(request)
    firsts = [option.sessions[0].start for option in options]
    assert firsts == sorted(firsts)
    for option in options:
        assert len(option.sessions) == request["sessions"]
        local = [session.start.astimezone(zone) for session in option.sessions]
        assert {moment.strftime("%A %H:%M").lower() for moment in local} == {
            f"{option.weekday} {option.local_time}"
        }
        assert local[0].date() >= request["from_date"]
        for moment in local:
            assert moment.date() - timedelta(days=moment.weekday()) not in skipped
        for session in option.sessions:
            assert session.end - session.start == request["duration"]
            assert is_bookable(schedule, request["calendar"], start=session.start, **ask)
        assert (
            course_conflicts(
                schedule,
                request["calendar"],
                first_start=option.sessions[0].start,
                sessions=request["sessions"],
                skip_weeks=request["skip_weeks"],
                **ask,
            )
            == []
        )


def _grid_times(schedule: Schedule, modality: str) -> set[tuple[int, time]]:
    step = timedelta(minutes=schedule.slot_interval_minutes)
    times = set()
    for rule in schedule.rules:
        if modality not in rule.modalities:
            continue
        wall = datetime.combine(date(2001, 1, 1), rule.start)
        while wall.time() < rule.end and wall.date() == date(2001, 1, 1):
            times.add((rule.weekday, wall.time()))
            wall += step
    return times


@PROPERTY_SETTINGS
@given(course_requests())
def test_property_every_conflict_free_course_is_offered(request: dict) -> None:
    """Oracle: independently find each weekly time's first session; course_conflicts decides."""
    schedule: Schedule = request["schedule"]
    zone = ZoneInfo(schedule.timezone)
    skipped = {day - timedelta(days=day.weekday()) for day in request["skip_weeks"]}
    earliest = request["now"] + timedelta(hours=schedule.min_notice_hours)
    offered = {
        (option.weekday, option.local_time): option.sessions[0].start for option in _plan(request)
    }
    expected = {}
    for weekday, wall_time in _grid_times(schedule, request["modality"]):
        day = request["from_date"] + timedelta(days=(weekday - request["from_date"].weekday()) % 7)
        while True:
            first = datetime.combine(day, wall_time, tzinfo=zone).astimezone(UTC)
            if first >= earliest and day - timedelta(days=day.weekday()) not in skipped:
                break
            day += timedelta(days=7)
        if first.astimezone(zone).replace(tzinfo=None) != datetime.combine(day, wall_time):
            continue  # the first session's wall time does not exist that week
        clashes = course_conflicts(
            schedule,
            request["calendar"],
            modality=request["modality"],
            duration=request["duration"],
            first_start=first,
            sessions=request["sessions"],
            skip_weeks=request["skip_weeks"],
            now=request["now"],
        )
        if not clashes:
            name = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
            expected[(name[weekday], wall_time.strftime("%H:%M"))] = first
    assert offered == expected
