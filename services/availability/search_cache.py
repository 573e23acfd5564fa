"""Computed slot searches and course options, kept per process until their inputs change.

A search's answer depends on rows of this service's database and on ``now``. The rows: every
transaction that changes what a search reads (busy times, time off, outside busy times, a
schedule, a room, a therapist) also gives the scopes it touched a new random stamp
(``repository.touch``), so an entry is reused only while the stamps read *before* its rows are
still the ones in the database: several availability processes each keep their own entries and
none is ever answered from rows another process has since changed. Stamps are random, not
counters, so a database rebuilt under a running process cannot repeat an old one.

``now`` moves on by itself, and an entry is only reused for a ``now`` that gives the same answer:

- slots: the minimum notice and the horizon only cut the sorted list of starts, so an entry
  computed once (with one spare day of horizon) is cut again at each answer (``SlotsEntry``);
- course options: which week each weekly time's course starts in changes when the notice passes
  that time's next start, so the entry holds until the earliest of those (``next_grid_start``);
- a hold that lapses by its ``expires_at`` frees its time with no event: no entry outlives the
  first lapse among the rows it was computed from.

Pure: no database, no clock of its own.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from clinic.slots import RuleGrid

# What one entry is computed for beyond the horizon, so a search the horizon cuts is still
# reused for a day as the horizon moves on with ``now``.
SPARE_HORIZON_DAYS = 1
_TICK = timedelta(microseconds=1)  # turns "now <= limit" into "now < limit + tick"

Stamp = tuple[tuple[str, str], ...]


def therapist_scope(therapist_id: str) -> str:
    return f"therapist:{therapist_id}"


ROOM_PREFIX = "room:"


def room_scope(room: str) -> str:
    return f"{ROOM_PREFIX}{room}"


def earliest(*moments: datetime | None) -> datetime | None:
    """The earliest of the given instants, None if none is given."""
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


@dataclass(frozen=True, slots=True)
class Entry:
    """One computed answer: right while the stamp is unchanged and ``now`` is before ``until``."""

    stamp: Stamp
    until: datetime | None  # None: no instant ends it
    answer: Any

    def fresh(self, stamp: Stamp, now: datetime) -> bool:
        return stamp == self.stamp and (self.until is None or now < self.until)


@dataclass(frozen=True, slots=True)
class SlotsEntry:
    """A slot search's free slots (formatted) by UTC start, to be cut by notice and horizon.

    ``starts`` holds every free grid start of the searched window from the notice at compute
    time up to ``complete_until`` (the horizon plus a spare day, when that cut the window).
    """

    starts: tuple[datetime, ...]  # UTC, ascending
    slots: tuple[dict[str, str], ...]  # the reply's items, in the caller's zone
    timezone: str
    min_notice: timedelta
    horizon: timedelta

    def answer(self, now: datetime) -> dict[str, Any]:
        # Exactly what a search at ``now`` keeps: notice <= start <= now + horizon.
        low = bisect_left(self.starts, now + self.min_notice)
        high = bisect_right(self.starts, now + self.horizon)
        return {"slots": list(self.slots[low:high]), "timezone": self.timezone}


def slots_until(horizon: timedelta, complete_until: datetime | None,
                lapses_at: datetime | None) -> datetime | None:
    """Until when a SlotsEntry answers right: the horizon must stay within what was computed."""
    horizon_limit = None if complete_until is None else complete_until - horizon + _TICK
    return earliest(horizon_limit, lapses_at)


def next_grid_start(grid: RuleGrid, after: datetime) -> datetime | None:
    """The first weekly grid time's instant at or after ``after``, as the course planner reads
    one (``combine(day, wall).replace(tzinfo=zone)``); None if the grid is empty.

    Every course's first session is such an instant, so course options stay the same while the
    notice's earliest start has not passed it.
    """
    times = grid.weekly_times()
    if not times:
        return None
    first_day = after.astimezone(grid.zone).date() - timedelta(days=1)
    best: datetime | None = None
    # Eight local days after the one before cover one occurrence of each weekday past ``after``.
    for offset in range(9):
        day = first_day + timedelta(days=offset)
        for weekday, wall in times:
            if weekday != day.weekday():
                continue
            instant = _grid_instant(grid, day, wall)
            if instant >= after and (best is None or instant < best):
                best = instant
    return best


def _grid_instant(grid: RuleGrid, day: date, wall: time) -> datetime:
    return datetime.combine(day, wall).replace(tzinfo=grid.zone).astimezone(UTC)


def course_until(min_notice: timedelta, next_start: datetime | None,
                 lapses_at: datetime | None) -> datetime | None:
    """Until when course options answer right, ``next_start`` read from the notice then.

    The options change when ``now + notice`` passes the next grid start (that time's course
    would then begin a week later) or when a hold lapses.
    """
    notice_limit = None if next_start is None else next_start - min_notice + _TICK
    return earliest(notice_limit, lapses_at)


def request_key(*parts: Any) -> Hashable | None:
    """A key for the request's raw arguments, or None when they cannot make one (not cached)."""
    key = tuple(tuple(part) if isinstance(part, list) else part for part in parts)
    try:
        hash(key)
    except TypeError:
        return None
    return key


class SearchCache:
    """The last ``size`` entries, least recently used dropped first; one per process."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable | None, stamp: Stamp, now: datetime) -> Any | None:
        """The entry's answer if it is still right for ``stamp`` and ``now``."""
        if key is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if not entry.fresh(stamp, now):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.answer

    def put(self, key: Hashable | None, entry: Entry) -> None:
        if key is None:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def stamp_of(rows: Sequence[tuple[str, str]]) -> Stamp:
    return tuple(sorted((scope, value) for scope, value in rows))
