"""Slot engine: which session start times a therapist can offer.

Pure functions over plain data. Weekly rules are wall-clock times in the schedule's
IANA zone; every instant that enters or leaves this module is an aware datetime
normalised to UTC. Shared: availability searches with it, and availability and booking both
decide "is this start on offer" with it (``clinic.offer``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from operator import attrgetter
from zoneinfo import ZoneInfo

MODALITIES = ("in_person", "video", "phone")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_ZERO = timedelta(0)
# datetime resolution; turns the inclusive horizon bound into a half-open one.
_TICK = timedelta(microseconds=1)


def to_utc(moment: datetime, name: str) -> datetime:
    """Reject naive datetimes and normalise aware ones to UTC.

    UTC normalisation matters beyond presentation: aware datetimes sharing one
    ZoneInfo compare by wall clock, which is wrong across a fall-back hour.
    """
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Interval:
    """Half-open span of time [start, end) between two aware instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # object.__setattr__ because the dataclass is frozen.
        start, end = self.start, self.end
        # The engine builds many intervals from UTC instants; only rewrite the others.
        if start.__class__ is not datetime or start.tzinfo is not UTC:
            object.__setattr__(self, "start", to_utc(start, "Interval.start"))
        if end.__class__ is not datetime or end.tzinfo is not UTC:
            object.__setattr__(self, "end", to_utc(end, "Interval.end"))
        if self.end <= self.start:
            raise ValueError(f"Interval end {self.end} must be after start {self.start}")

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class WeeklyRule:
    """A recurring weekly block of working time, in the schedule's wall clock."""

    weekday: int  # 0=Monday .. 6=Sunday
    start: time
    end: time
    modalities: frozenset[str]

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {self.weekday}")
        for name, moment in (("start", self.start), ("end", self.end)):
            if moment.tzinfo is not None:
                raise ValueError(f"rule {name} is wall-clock time and must be naive")
            # Course options are reported as "HH:MM", so rule times are whole minutes.
            if moment.second or moment.microsecond:
                raise ValueError(f"rule {name} must be a whole minute, got {moment}")
        if self.end <= self.start:
            raise ValueError(f"rule end {self.end} must be after start {self.start}")
        modalities = frozenset(self.modalities)
        unknown = modalities - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}")
        object.__setattr__(self, "modalities", modalities)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A therapist's weekly working pattern and booking policy."""

    timezone: str
    rules: tuple[WeeklyRule, ...]
    buffer_minutes: int = 10
    slot_interval_minutes: int = 60
    min_notice_hours: int = 24
    horizon_days: int = 180

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # fail fast on an unknown zone
        object.__setattr__(self, "rules", tuple(self.rules))
        if self.slot_interval_minutes <= 0:
            raise ValueError("slot_interval_minutes must be positive")
        for name in ("buffer_minutes", "min_notice_hours", "horizon_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True, slots=True)
class Calendar:
    """What is already taken, as known to availability."""

    time_off: tuple[Interval, ...] = ()
    busy: tuple[Interval, ...] = ()  # the therapist's sessions and holds (unbuffered)
    rooms: tuple[str, ...] = ()  # clinic room ids
    room_busy: Mapping[str, tuple[Interval, ...]] = field(default_factory=dict)  # per room id


def blocked_range(start: datetime, end: datetime, buffer_minutes: int) -> Interval:
    """The span a session holds on the therapist's calendar: [start, end + buffer).

    The single source of the buffer rule. Two sessions conflict iff their blocked
    ranges overlap; the booking service stores the same range in its database.
    """
    if buffer_minutes < 0:
        raise ValueError("buffer_minutes must not be negative")
    return Interval(start, end + timedelta(minutes=buffer_minutes))


def _check_request(modality: str, duration: timedelta) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    if duration <= _ZERO:
        raise ValueError("session duration must be positive")


def local_instant(zone: ZoneInfo, wall: datetime) -> datetime | None:
    """UTC instant of a naive local wall time, or None if the clock skips it.

    Ambiguous (fall-back) wall times resolve to the first occurrence (fold=0).
    Existence is detected by round-tripping through UTC.
    """
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def _rule_end_instant(zone: ZoneInfo, day: date, end: time) -> datetime:
    """The instant a rule stops on `day`: the first moment the local clock reads >= end.

    Normally that is `end` itself (first occurrence if ambiguous). If `end` falls in
    a spring-forward gap the rule ends at the transition, never later.
    """
    wall = datetime.combine(day, end)
    instant = local_instant(zone, wall)
    if instant is not None:
        return instant
    # fold=1 lands before the transition and fold=0 after it; bisect the offset change.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    offset_before = before.astimezone(zone).utcoffset()
    while after - before > _TICK:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset_before:
            before = middle
        else:
            after = middle
    return after


class RuleGrid:
    """The schedule's weekly rule grid for one modality, in the schedule's zone.

    Built once per request so that generating candidates (find_slots) and testing
    one start (is_bookable) apply exactly the same grid rules.
    """

    __slots__ = ("_end_cache", "_offsets", "_rules_by_weekday", "step", "zone")

    def __init__(self, schedule: Schedule, modality: str) -> None:
        self.zone = ZoneInfo(schedule.timezone)
        self.step = timedelta(minutes=schedule.slot_interval_minutes)
        by_weekday: dict[int, list[WeeklyRule]] = {day: [] for day in range(7)}
        for rule in schedule.rules:
            if modality in rule.modalities:
                by_weekday[rule.weekday].append(rule)
        self._rules_by_weekday = by_weekday
        self._end_cache: dict[tuple[date, time], datetime] = {}
        self._offsets: dict[date, timedelta | None] = {}

    def day_offset(self, day: date) -> timedelta | None:
        """The zone's UTC offset all through local date `day`, or None if it changes that day.

        Most days have one offset; on those, a wall time's instant is plain arithmetic,
        which is what keeps a 92-day search or a 52-week course cheap. Days with a
        transition (or a midnight gap) take the exact path through local_instant.
        """
        if day in self._offsets:
            return self._offsets[day]
        begins = datetime.combine(day, time(0), tzinfo=self.zone).utcoffset()
        ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone).utcoffset()
        # Equal offsets at both midnights and the day's own midnight exists: no change within.
        fixed = begins if begins == ends and self._midnight_exists(day) else None
        self._offsets[day] = fixed
        return fixed

    def _midnight_exists(self, day: date) -> bool:
        return local_instant(self.zone, datetime.combine(day, time(0))) is not None

    def wall_instant(self, day: date, wall_time: time) -> datetime | None:
        """local_instant() of `wall_time` on `day`, through the per-day offset when it is fixed."""
        offset = self.day_offset(day)
        wall = datetime.combine(day, wall_time)
        if offset is None:
            return local_instant(self.zone, wall)
        return (wall - offset).replace(tzinfo=UTC)

    def weekly_times(self) -> list[tuple[int, time]]:
        """Distinct (weekday, local start time) pairs on the grid, sorted."""
        times: set[tuple[int, time]] = set()
        anchor = date(2001, 1, 1)  # any date; only wall-clock arithmetic happens here
        for weekday, rules in self._rules_by_weekday.items():
            for rule in rules:
                wall = datetime.combine(anchor, rule.start)
                end = datetime.combine(anchor, rule.end)
                while wall < end:
                    times.add((weekday, wall.time()))
                    wall += self.step
        return sorted(times)

    def _end_instant(self, day: date, end: time) -> datetime:
        # Many candidates share a rule end; the planner asks about the same days often.
        key = (day, end)
        instant = self._end_cache.get(key)
        if instant is None:
            instant = self._end_cache[key] = _rule_end_instant(self.zone, day, end)
        return instant

    def day_starts(self, day: date, duration: timedelta) -> list[datetime]:
        """Grid starts on local date `day` whose session fits its rule, sorted, unique."""
        rules = self._rules_by_weekday[day.weekday()]
        if not rules:
            return []
        offset = self.day_offset(day)
        if offset is not None:
            return self._fixed_day_starts(day, offset, rules, duration)
        starts: set[datetime] = set()
        for rule in rules:
            rule_end = self._end_instant(day, rule.end)
            wall = datetime.combine(day, rule.start)
            end_wall = datetime.combine(day, rule.end)
            while wall < end_wall:
                instant = local_instant(self.zone, wall)
                if instant is not None and instant + duration <= rule_end:
                    starts.add(instant)
                wall += self.step
        return sorted(starts)

    def _fixed_day_starts(
        self, day: date, offset: timedelta, rules: list[WeeklyRule], duration: timedelta
    ) -> list[datetime]:
        # Same grid as the exact path: wall = rule start + k * step while wall < rule end,
        # and the session ends by the rule's end; with one offset all day, instants follow.
        starts: list[datetime] = []
        step = self.step
        for rule in rules:
            wall = datetime.combine(day, rule.start)
            end_wall = datetime.combine(day, rule.end)
            last_start = (end_wall - offset).replace(tzinfo=UTC) - duration
            instant = (wall - offset).replace(tzinfo=UTC)
            while wall < end_wall and instant <= last_start:
                starts.append(instant)
                wall += step
                instant += step
        if len(rules) > 1:
            return sorted(set(starts))
        return starts

    def is_start(self, start: datetime, duration: timedelta) -> bool:
        """True iff `start` (UTC) is one of day_starts() for its local date."""
        local = start.astimezone(self.zone)
        wall = local.replace(tzinfo=None, fold=0)
        # A second occurrence of an ambiguous time is never a grid start (fold=0 is).
        if wall.replace(tzinfo=self.zone).astimezone(UTC) != start:
            return False
        day = wall.date()
        for rule in self._rules_by_weekday[day.weekday()]:
            offset = wall - datetime.combine(day, rule.start)
            if (
                offset >= _ZERO
                and wall.time() < rule.end
                and offset % self.step == _ZERO
                and start + duration <= self._end_instant(day, rule.end)
            ):
                return True
        return False


def local_candidates(
    schedule: Schedule, modality: str, duration: timedelta, window: Interval
) -> Iterator[Interval]:
    """Every rule-grid session whose start lies in [window.start, window.end), in order.

    Spring-forward wall times are skipped; fall-back ones are offered once (fold=0).
    """
    _check_request(modality, duration)
    grid = RuleGrid(schedule, modality)
    return _grid_candidates(grid, duration, window)


def _grid_candidates(grid: RuleGrid, duration: timedelta, window: Interval) -> Iterator[Interval]:
    # One spare day each side: near a DST change an instant's local date can differ
    # from what naive date arithmetic on the window suggests.
    first_day = window.start.astimezone(grid.zone).date() - timedelta(days=1)
    last_day = window.end.astimezone(grid.zone).date() + timedelta(days=1)
    starts: set[datetime] = set()
    day = first_day
    while day <= last_day:
        starts.update(
            start for start in grid.day_starts(day, duration) if window.start <= start < window.end
        )
        day += timedelta(days=1)
    for start in sorted(starts):
        yield Interval(start, start + duration)


class _Timeline:
    """Spans sorted by start with a running maximum of their ends.

    Answers "does anything here overlap?" in O(log n) without building an Interval
    per stored span, which dominates the cost for thousands of busy sessions.
    """

    __slots__ = ("_latest_ends", "_starts")

    def __init__(self, spans: Iterable[Interval]) -> None:
        ordered = sorted(spans, key=attrgetter("start"))
        self._starts = [span.start for span in ordered]
        self._latest_ends = list(accumulate((span.end for span in ordered), max))

    def hull_before(self, moment: datetime) -> Interval | None:
        """[start of the last span starting before `moment`, latest end of any of them).

        Of the spans starting before `moment`, one reaches as far as this hull does,
        so a query ending at `moment` overlaps a span iff it overlaps the hull.
        """
        index = bisect_left(self._starts, moment) - 1
        if index < 0:
            return None
        return Interval(self._starts[index], self._latest_ends[index])

    def overlaps(self, span: Interval) -> bool:
        # Same test as hull_before(span.end).overlaps(span), minus building the hull.
        index = bisect_left(self._starts, span.end) - 1
        return index >= 0 and self._latest_ends[index] > span.start

    def overlaps_padded(self, start: datetime, end: datetime, pad: timedelta) -> bool:
        """Whether [start, end + pad) overlaps some [s, e + pad): the buffer rule, no objects.

        Of the spans starting before end + pad, the hull's latest end decides.
        """
        index = bisect_left(self._starts, end + pad) - 1
        return index >= 0 and self._latest_ends[index] + pad > start


class CalendarIndex:
    """A Calendar pre-sorted for fast conflict checks; build once, query many times."""

    __slots__ = ("_buffer", "_busy", "_rooms", "_time_off", "buffer_minutes")

    def __init__(self, calendar: Calendar, buffer_minutes: int) -> None:
        if buffer_minutes < 0:
            raise ValueError("buffer_minutes must not be negative")
        self.buffer_minutes = buffer_minutes
        self._buffer = timedelta(minutes=buffer_minutes)
        self._time_off = _Timeline(calendar.time_off)
        self._busy = _Timeline(calendar.busy)
        self._rooms = tuple(
            (room, _Timeline(calendar.room_busy.get(room, ()))) for room in sorted(calendar.rooms)
        )

    def therapist_free(self, slot: Interval) -> bool:
        """Outside time off and clear of every busy interval, buffer included."""
        if self._time_off.overlaps(slot):
            return False
        # The booking service's rule (blocked_range): conflict iff [s, e + buffer) and
        # [bs, be + buffer) overlap.
        return not self._busy.overlaps_padded(slot.start, slot.end, self._buffer)

    def free_room(self, slot: Interval) -> str | None:
        for room, timeline in self._rooms:
            if not timeline.overlaps(slot):  # rooms need no buffer: plain overlap
                return room
        return None

    def is_clear(self, slot: Interval, modality: str) -> bool:
        if not self.therapist_free(slot):
            return False
        return modality != "in_person" or self.free_room(slot) is not None


class BookingCheck:
    """Answers is_bookable for many starts of one request (schedule, modality, duration, now)."""

    __slots__ = ("calendar", "duration", "earliest", "grid", "latest", "modality")

    def __init__(
        self,
        schedule: Schedule,
        calendar: Calendar | CalendarIndex,
        *,
        modality: str,
        duration: timedelta,
        now: datetime,
    ) -> None:
        _check_request(modality, duration)
        now = to_utc(now, "now")
        self.grid = RuleGrid(schedule, modality)
        self.calendar = (
            calendar
            if isinstance(calendar, CalendarIndex)
            else CalendarIndex(calendar, schedule.buffer_minutes)
        )
        self.modality = modality
        self.duration = duration
        self.earliest = now + timedelta(hours=schedule.min_notice_hours)
        self.latest = now + timedelta(days=schedule.horizon_days)  # inclusive

    def is_bookable(self, start: datetime) -> bool:
        start = to_utc(start, "start")
        if not self.earliest <= start <= self.latest:
            return False
        if not self.grid.is_start(start, self.duration):
            return False
        return self.calendar.is_clear(Interval(start, start + self.duration), self.modality)

    def slots(self, window: Interval) -> list[Interval]:
        lower = max(window.start, self.earliest)
        upper = min(window.end, self.latest + _TICK)
        if lower >= upper:
            return []
        return [
            slot
            for slot in _grid_candidates(self.grid, self.duration, Interval(lower, upper))
            if self.calendar.is_clear(slot, self.modality)
        ]


def find_slots(
    schedule: Schedule,
    calendar: Calendar,
    *,
    modality: str,
    duration: timedelta,
    window: Interval,
    now: datetime,
) -> list[Interval]:
    """Bookable sessions starting in [window.start, window.end), sorted by start."""
    check = BookingCheck(schedule, calendar, modality=modality, duration=duration, now=now)
    return check.slots(window)


def is_bookable(
    schedule: Schedule,
    calendar: Calendar,
    *,
    modality: str,
    duration: timedelta,
    start: datetime,
    now: datetime,
) -> bool:
    """True iff `start` is exactly one of the slots find_slots would offer."""
    check = BookingCheck(schedule, calendar, modality=modality, duration=duration, now=now)
    return check.is_bookable(start)


def free_room(calendar: Calendar, slot: Interval) -> str | None:
    """First room id, in sorted order, with nothing booked overlapping the slot."""
    for room in sorted(calendar.rooms):
        if not any(slot.overlaps(taken) for taken in calendar.room_busy.get(room, ())):
            return room
    return None
