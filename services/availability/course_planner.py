"""Course planner: a weekly course of sessions at one fixed local weekday and time.

A course is only offered when every one of its sessions is bookable; checking just
the first few occurrences is how scheduling products end up double-booking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from clinic.slots import (
    UTC,
    WEEKDAY_NAMES,
    BookingCheck,
    Calendar,
    Interval,
    RuleGrid,
    Schedule,
    local_instant,
    to_utc,
)

MIN_SESSIONS = 1
MAX_SESSIONS = 52
_WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class CourseOption:
    weekday: str  # lowercase English, e.g. "tuesday"
    local_time: str  # "HH:MM" in the schedule zone
    sessions: tuple[Interval, ...]


def _check_sessions(sessions: int) -> None:
    if isinstance(sessions, bool) or not isinstance(sessions, int):
        raise TypeError(f"sessions must be an int, got {type(sessions).__name__}")
    if not MIN_SESSIONS <= sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions must be {MIN_SESSIONS}..{MAX_SESSIONS}, got {sessions}")


def _monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _skipped_mondays(skip_weeks: Iterable[date]) -> frozenset[date]:
    mondays = set()
    for day in skip_weeks:
        # A datetime's calendar date depends on a zone the caller did not state.
        if isinstance(day, datetime) or not isinstance(day, date):
            raise TypeError(f"skip_weeks must hold dates, got {day!r}")
        mondays.add(_monday_of(day))
    return frozenset(mondays)


def _course_weeks(first_week_monday: date, sessions: int, skipped: frozenset[date]) -> list[date]:
    weeks: list[date] = []
    week = first_week_monday
    while len(weeks) < sessions:  # terminates: only finitely many weeks are skipped
        if week not in skipped:
            weeks.append(week)
        week += _WEEK
    return weeks


def course_weeks(first_week_monday: date, sessions: int, skip_weeks: Iterable[date]) -> list[date]:
    """Mondays of the weeks that get a session.

    A week holding any skip date gets none, and the course runs one week longer
    for each such week.
    """
    _check_sessions(sessions)
    if first_week_monday.weekday() != 0:
        raise ValueError(f"first_week_monday must be a Monday, got {first_week_monday}")
    return _course_weeks(first_week_monday, sessions, _skipped_mondays(skip_weeks))


def _weekly_starts(
    zone: ZoneInfo, weeks: list[date], weekday: int, wall_time: time,
    grid: RuleGrid | None = None,
) -> list[tuple[datetime, bool]]:
    """(instant, wall time exists) for the course's local weekday/time in each week.

    A wall time that the clock skips that week resolves with fold=0 (shifted forward
    by the gap); the flag lets callers refuse it rather than move the session.
    A grid, when given, answers from its per-day offsets (same result, less work).
    """
    starts: list[tuple[datetime, bool]] = []
    for week in weeks:
        day = week + timedelta(days=weekday)
        wall = datetime.combine(day, wall_time)
        instant = grid.wall_instant(day, wall_time) if grid else local_instant(zone, wall)
        if instant is None:
            starts.append((wall.replace(tzinfo=zone, fold=0).astimezone(UTC), False))
        else:
            starts.append((instant, True))
    return starts


def _course_plan(
    schedule_timezone: str, first_start: datetime, sessions: int, skip_weeks: Iterable[date]
) -> list[tuple[datetime, bool]]:
    _check_sessions(sessions)
    first_start = to_utc(first_start, "first_start")
    zone = ZoneInfo(schedule_timezone)
    local = first_start.astimezone(zone)
    first_monday = _monday_of(local.date())
    weeks = _course_weeks(first_monday, sessions, _skipped_mondays(skip_weeks))
    if weeks[0] != first_monday:
        raise ValueError(f"first_start {first_start} falls in a skipped week")
    wall_time = local.time().replace(fold=0)
    later = _weekly_starts(zone, weeks[1:], local.weekday(), wall_time)
    # The first session is first_start itself, whatever fold it was given with.
    return [(first_start, True), *later]


def course_starts(
    schedule_timezone: str, first_start: datetime, sessions: int, skip_weeks: Iterable[date]
) -> list[datetime]:
    """The course's weekly session starts (UTC): same local wall-clock time each week.

    Skip weeks get no session. A week where that wall time does not exist (DST gap)
    yields the fold=0 reading, which course_conflicts always reports.
    """
    return [
        start for start, _ in _course_plan(schedule_timezone, first_start, sessions, skip_weeks)
    ]


def course_conflicts(
    schedule: Schedule,
    calendar: Calendar,
    *,
    modality: str,
    duration: timedelta,
    first_start: datetime,
    sessions: int,
    skip_weeks: Iterable[date],
    now: datetime,
) -> list[datetime]:
    """Every session start of the course that is not bookable; [] means all are free."""
    plan = _course_plan(schedule.timezone, first_start, sessions, skip_weeks)
    check = BookingCheck(schedule, calendar, modality=modality, duration=duration, now=now)
    return [start for start, exists in plan if not (exists and check.is_bookable(start))]


def plan_course_options(
    schedule: Schedule,
    calendar: Calendar,
    *,
    modality: str,
    duration: timedelta,
    sessions: int,
    from_date: date,
    skip_weeks: Iterable[date],
    now: datetime,
) -> list[CourseOption]:
    """Weekly times at which the whole course can be booked, by first session instant.

    Each grid weekday/time starts at its first occurrence on or after from_date that
    meets the minimum notice and is not in a skip week. It never slides to a later
    week because that session is busy: the option is simply not offered.
    """
    _check_sessions(sessions)
    skipped = _skipped_mondays(skip_weeks)
    check = BookingCheck(schedule, calendar, modality=modality, duration=duration, now=now)
    zone = check.grid.zone
    # Any occurrence two or more local days before the notice cut-off is too early,
    # so start searching there instead of at a possibly distant from_date.
    search_from = max(from_date, check.earliest.astimezone(zone).date() - timedelta(days=1))

    options: list[CourseOption] = []
    for weekday, wall_time in check.grid.weekly_times():
        day = search_from + timedelta(days=(weekday - search_from.weekday()) % 7)
        while True:
            first = datetime.combine(day, wall_time).replace(tzinfo=zone).astimezone(UTC)
            if first > check.latest:
                break
            if first >= check.earliest and _monday_of(day) not in skipped:
                option = _option_if_bookable(check, day, wall_time, sessions, skipped)
                if option is not None:
                    options.append(option)
                break
            day += _WEEK
    options.sort(key=lambda option: option.sessions[0].start)
    return options


def _option_if_bookable(
    check: BookingCheck, first_day: date, wall_time: time, sessions: int, skipped: frozenset[date]
) -> CourseOption | None:
    weekday = first_day.weekday()
    starts: list[datetime] = []
    # Week by week, stopping at the first session that is not bookable: every week is
    # checked for an option that is offered, and a busy week ends the work early.
    for week in _course_weeks(_monday_of(first_day), sessions, skipped):
        start = check.grid.wall_instant(week + timedelta(days=weekday), wall_time)
        if start is None or not check.is_bookable(start):
            return None
        starts.append(start)
    return CourseOption(
        weekday=WEEKDAY_NAMES[weekday],
        local_time=wall_time.strftime("%H:%M"),
        sessions=tuple(Interval(start, start + check.duration) for start in starts),
    )
