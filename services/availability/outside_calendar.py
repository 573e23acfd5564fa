"""A therapist's outside calendar, read as the busy times it holds: pure, no network, no database.

``icalendar`` parses the feed and ``recurring-ical-events`` expands it (RRULE, RDATE, EXDATE,
moved occurrences by RECURRENCE-ID, across DST). What a busy time means here:

- a ``TRANSP:TRANSPARENT`` event ("free" in calendar apps) or a ``STATUS:CANCELLED`` one blocks
  nothing;
- an all-day event blocks that whole day (or days) in the therapist's zone;
- a floating time (no zone, no ``Z``) is read in the therapist's zone.

What a feed may cost is bounded: expansion walks the window week by week (so an every-minute rule
cannot run away) and stops past ``MAX_OCCURRENCES``. Only times leave this module: titles,
places and descriptions never do, so nothing the therapist wrote elsewhere is stored here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

MAX_OCCURRENCES = 5000
# Walking the window in steps bounds what one step can produce before the cap is checked.
STEP = timedelta(days=7)
# An event may start before the window and still reach into it.
LOOK_BACK = timedelta(days=1)


class FeedRefused(ValueError):
    """The feed cannot be used; its message is shown to the therapist as ``last_error``."""


@dataclass(frozen=True, order=True, slots=True)
class BusySpan:
    """A half-open span [start, end) in UTC that the therapist is busy elsewhere."""

    start: datetime
    end: datetime


def parse(body: bytes) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except Exception as error:  # icalendar raises ValueError and friends for bad text
        raise FeedRefused(f"The address did not return a readable iCalendar file "
                          f"({type(error).__name__}).") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise FeedRefused("The address did not return an iCalendar file (no VCALENDAR).")
    return calendar


def busy_spans(body: bytes, zone: str, window_start: datetime, window_end: datetime, *,
               cap: int = MAX_OCCURRENCES) -> list[BusySpan]:
    """The busy spans of an iCalendar file that reach into [window_start, window_end), merged.

    Raises ``FeedRefused`` for a file that cannot be read or holds more than ``cap``
    occurrences in the window.
    """
    return merge(expand(parse(body), ZoneInfo(zone), window_start, window_end, cap=cap))


def expand(calendar: icalendar.Calendar, zone: ZoneInfo, window_start: datetime,
           window_end: datetime, *, cap: int = MAX_OCCURRENCES) -> list[BusySpan]:
    window_start, window_end = window_start.astimezone(UTC), window_end.astimezone(UTC)
    try:
        query = recurring_ical_events.of(calendar, skip_bad_series=True)
    except Exception as error:
        raise FeedRefused(f"The calendar's events could not be read "
                          f"({type(error).__name__}).") from None
    found: set[BusySpan] = set()
    step_start = window_start - LOOK_BACK
    while step_start < window_end:
        step_end = min(step_start + STEP, window_end)
        try:
            occurrences = query.between(step_start, step_end)
        except Exception as error:
            raise FeedRefused(f"The calendar's repeating events could not be expanded "
                              f"({type(error).__name__}).") from None
        for event in occurrences:
            span = busy_span(event, zone)
            if span is not None and span.start < window_end and span.end > window_start:
                found.add(span)
        if len(found) > cap:
            raise FeedRefused(f"The calendar holds more than {cap} events before the booking "
                              f"horizon; link a calendar with fewer events.")
        step_start = step_end
    return sorted(found)


def busy_span(event: icalendar.Event, zone: ZoneInfo) -> BusySpan | None:
    """One occurrence as a busy span, or None when it blocks nothing."""
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return None
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return None
    starts = event.get("DTSTART")
    if starts is None:
        return None
    begin = starts.dt
    ends = event.get("DTEND")
    if ends is not None:
        finish = ends.dt
    elif event.get("DURATION") is not None:
        finish = begin + event.get("DURATION").dt
    else:  # RFC 5545: a date lasts the day, a date-time no time at all
        finish = begin + timedelta(days=1) if not isinstance(begin, datetime) else begin
    start, end = instant(begin, zone), instant(finish, zone)
    if end <= start:
        return None  # a zero-length event (a reminder) blocks no time
    return BusySpan(start, end)


def instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A DTSTART/DTEND value in UTC: a date is its midnight and a floating time its wall clock,
    both in the therapist's zone."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def merge(spans: Iterable[BusySpan]) -> list[BusySpan]:
    """Overlapping or touching spans joined, sorted."""
    merged: list[BusySpan] = []
    for span in sorted(spans):
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = BusySpan(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


@dataclass(frozen=True, slots=True)
class Clash:
    """A clinic booking that an outside busy span now overlaps."""

    booking_id: str
    start: datetime
    end: datetime
    busy: BusySpan


def clashes(bookings: Iterable[tuple[str, datetime, datetime]],
            busy: list[BusySpan]) -> list[Clash]:
    """Each booking (id, start, end) that overlaps a busy span, with the first span it meets."""
    found = []
    for booking_id, start, end in bookings:
        for span in busy:  # sorted and merged: stop at the first span past the booking
            if span.start >= end:
                break
            if span.end > start:
                found.append(Clash(booking_id, start, end, span))
                break
    return found
