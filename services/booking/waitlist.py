"""The waitlist's rules as pure functions: what an entry is, whether a freed time fits it,
which times an event frees, who is offered a time first, and the shapes entries and offers
take as they leave the service. No broker, no database.

A freed time is a therapist's time from one start. It fits a waiting entry when the therapist
is the entry's (or the entry takes any therapist), the session type and modality are the
entry's, each session it would hold lies inside one of the entry's weekly windows in the
entry's zone, and the (first) session starts before the entry's ``until`` ends. For a course
entry the time is the first of its N weekly sessions, all of which must be free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinic import wire
from clinic.errors import InvalidRequest
from clinic.wire import iso, utc

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MODALITIES = ("in_person", "video", "phone")
KINDS = ("session", "course")
HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_WINDOWS = 21
MAX_COURSE_SESSIONS = 52
DEFAULT_COURSE_SESSIONS = 16

# Entry statuses: waiting for a time, holding a live offer, or done.
WAITING, OFFERED, BOOKED, LEFT, EXPIRED = "waiting", "offered", "booked", "left", "expired"
CLOSED = (BOOKED, LEFT, EXPIRED)
# Offer statuses: live until accepted, declined, lapsed, or refused (its time went elsewhere).
LIVE = "live"
# Why a hold was released: these free its time; a converted hold became a booking.
FREEING_REASONS = ("expired", "released", "declined", "offer_closed")


@dataclass(frozen=True)
class Window:
    """When the client could come on one weekday, wall-clock in the entry's zone."""

    weekday: int  # 0 = Monday
    start: time
    end: time

    def holds(self, start: datetime, end: datetime, tz: ZoneInfo) -> bool:
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        return (local_start.weekday() == self.weekday and local_start.date() == local_end.date()
                and self.start <= local_start.time() and local_end.time() <= self.end)


@dataclass(frozen=True)
class Entry:
    id: str
    therapist_id: str | None
    session_type: str
    modality: str
    kind: str
    sessions: int
    windows: tuple[Window, ...]
    timezone: str
    until_at: datetime | None  # the end of the ``until`` day in the entry's zone
    status: str = WAITING

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> Entry:
        return cls(id=row["id"], therapist_id=row["therapist_id"],
                   session_type=row["session_type"], modality=row["modality"], kind=row["kind"],
                   sessions=int(row["sessions"] or 1), windows=windows_of(row["windows"]),
                   timezone=row["timezone"], until_at=utc(row["until_at"]),
                   status=row["status"])


@dataclass(frozen=True)
class FreedTime:
    """A therapist's time that became free at ``start`` (the start of what freed it)."""

    therapist_id: str
    start: datetime


def windows_of(stored: Iterable[Mapping[str, str]]) -> tuple[Window, ...]:
    return tuple(Window(WEEKDAYS.index(w["weekday"]), time.fromisoformat(w["start"]),
                        time.fromisoformat(w["end"])) for w in stored)


# --- where in the UTC week an entry could fit: a coarse filter the database applies --------

def _offsets(tz: ZoneInfo, today: date) -> set[timedelta]:
    """Every UTC offset the zone uses in the coming two years (DST included)."""
    return {datetime.combine(today + timedelta(days=d), time(12), tz).utcoffset() or timedelta()
            for d in range(0, 731, 7)}


def reach(windows: Iterable[Mapping[str, str]], timezone: str,
          today: date) -> tuple[int, int]:
    """(UTC weekdays, UTC hours) as bit masks (Monday = bit 0, hour h = bit h): every UTC
    weekday and hour at which a session inside one of the windows could start, under any of
    the zone's offsets. A superset: the exact test is ``fits``; this only lets the scan skip
    entries in SQL that cannot fit."""
    tz = wire.zone(timezone, "tz")
    weekdays = hours = 0
    for window in windows_of(windows):
        first = window.start.hour * 60 + window.start.minute
        last = window.end.hour * 60 + window.end.minute
        for offset in _offsets(tz, today):
            shift = int(offset.total_seconds() // 60)
            begin = window.weekday * 1440 + first - shift  # UTC minutes into the week
            end = window.weekday * 1440 + last - shift
            for hour in range(begin // 60, (end - 1) // 60 + 1):  # every UTC hour it touches
                weekdays |= 1 << ((hour // 24) % 7)
                hours |= 1 << (hour % 24)
    return weekdays, hours


def reach_bits(start: datetime) -> tuple[int, int]:
    """The bits a freed start sets in ``reach``'s masks."""
    at = start.astimezone(UTC)
    return 1 << at.weekday(), 1 << at.hour


# --- joining -----------------------------------------------------------------------------

def _windows_input(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value or len(value) > MAX_WINDOWS:
        raise InvalidRequest.field("windows", f"Give 1 to {MAX_WINDOWS} weekly windows.")
    windows = []
    for index, window in enumerate(value):
        where = f"windows[{index}]"
        if not isinstance(window, Mapping) or set(window) != {"weekday", "start", "end"}:
            raise InvalidRequest.field(where, "Each window is {weekday, start, end}.")
        if window["weekday"] not in WEEKDAYS:
            raise InvalidRequest.field(f"{where}.weekday",
                                       "Give a lowercase English weekday, e.g. tuesday.")
        for part in ("start", "end"):
            if not isinstance(window[part], str) or not HH_MM.match(window[part]):
                raise InvalidRequest.field(f"{where}.{part}", "Give a time as HH:MM.")
        if window["start"] >= window["end"]:
            raise InvalidRequest.field(f"{where}.end", "A window ends after it starts.")
        windows.append({"weekday": window["weekday"], "start": window["start"],
                        "end": window["end"]})
    return windows


def entry_input(body: Mapping[str, Any], clinic_timezone: str, today: date) -> dict[str, Any]:
    """A join request as the columns of a new entry (a clear 400 for anything wrong)."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("The body must be a JSON object.")
    therapist_id = wire.optional_text(body.get("therapist_id"), "therapist_id")
    session_type = wire.text(body.get("session_type"), "session_type", limit=64)
    modality = body.get("modality")
    if modality not in MODALITIES:
        raise InvalidRequest.field("modality", "Use in_person, video or phone.")
    kind = body.get("kind", "session")
    if kind not in KINDS:
        raise InvalidRequest.field("kind", "Use session or course.")
    sessions = body.get("sessions", DEFAULT_COURSE_SESSIONS if kind == "course" else 1)
    if kind == "session":
        sessions = 1
    elif (isinstance(sessions, bool) or not isinstance(sessions, int)
          or not 1 <= sessions <= MAX_COURSE_SESSIONS):
        raise InvalidRequest.field("sessions", f"A course has 1 to {MAX_COURSE_SESSIONS} sessions.")
    timezone = wire.optional_text(body.get("tz"), "tz") or clinic_timezone
    tz = wire.zone(timezone, "tz")
    until_at = None
    if body.get("until") is not None:
        until = wire.day(body.get("until"), "until")
        if until < today:
            raise InvalidRequest.field("until", "'until' is in the past.")
        try:
            until_at = datetime.combine(until + timedelta(days=1), time(0), tz).astimezone(UTC)
        except OverflowError:
            raise InvalidRequest.field("until", "The date is out of range.") from None
    windows = _windows_input(body.get("windows"))
    weekdays, hours = reach(windows, timezone, today)
    return {"therapist_id": therapist_id, "session_type": session_type, "modality": modality,
            "kind": kind, "sessions": sessions, "windows": windows, "timezone": timezone,
            "until_at": until_at, "utc_weekdays": weekdays, "utc_hours": hours}


# --- fitting -----------------------------------------------------------------------------

def waiting_at(entry: Entry, now: datetime) -> bool:
    return entry.status == WAITING and (entry.until_at is None or now < entry.until_at)


def for_therapist(entry: Entry, therapist_id: str) -> bool:
    return entry.therapist_id in (None, therapist_id)


def fits(entry: Entry, therapist_id: str, sessions: Iterable[tuple[datetime, datetime]],
         now: datetime, count: bool = True) -> bool:
    """Whether a time (its sessions' starts and ends) fits a waiting entry; ``count``: it has
    as many sessions as the entry asks for."""
    sessions = list(sessions)
    if not sessions or not waiting_at(entry, now) or not for_therapist(entry, therapist_id):
        return False
    if count and len(sessions) != entry.sessions:
        return False
    first = sessions[0][0]
    if first <= now or (entry.until_at is not None and first >= entry.until_at):
        return False
    tz = wire.zone_or(entry.timezone, "UTC")
    return all(any(window.holds(start, end, tz) for window in entry.windows)
               for start, end in sessions)


def may_fit(entry: Entry, freed: FreedTime, now: datetime) -> bool:
    """A cheap first look before availability is asked how long the session is and how the
    course's weeks fall: the freed start itself lies in a window and before ``until``."""
    first = [(freed.start, freed.start + timedelta(minutes=1))]
    return fits(entry, freed.therapist_id, first, now, count=False)


def in_joining_order(entries: Iterable[Entry], freed: FreedTime, now: datetime,
                     offered_before: set[str]) -> list[Entry]:
    """The entries a freed time may go to, first joined first; ``entries`` arrive in joining
    order. An entry that already declined or let lapse an offer of this very time is passed
    over (it would only be offered it again)."""
    return [entry for entry in entries
            if entry.id not in offered_before and may_fit(entry, freed, now)]


def freed_times(event: Mapping[str, Any]) -> list[FreedTime]:
    """The times a booking event frees: a cancellation's, a reschedule's former time, a hold's
    that lapsed or was released (not one that became a booking), every session a course
    cancellation cancelled."""
    kind, data = event.get("type"), event.get("data") or {}
    found: list[tuple[str, str]] = []
    if kind == "booking_cancelled":
        found = [(data["booking"]["therapist_id"], data["booking"]["start"])]
    elif kind == "booking_rescheduled" and data.get("previous"):
        found = [(data["booking"]["therapist_id"], data["previous"]["start"])]
    elif kind == "hold_released" and data.get("reason") in FREEING_REASONS:
        found = [(data["hold"]["therapist_id"], data["hold"]["start"])]
    elif kind == "course_cancelled":
        found = [(b["therapist_id"], b["start"]) for b in data.get("cancelled") or []]
    times = {FreedTime(therapist, wire.instant(start, "start")) for therapist, start in found}
    return sorted(times, key=lambda t: (t.start, t.therapist_id))


# --- views -------------------------------------------------------------------------------

def offer_view(offer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {"id": offer["id"], "therapist_id": offer["therapist_id"],
            "session_type": offer["session_type"], "modality": offer["modality"],
            "start": iso(offer["start"]), "sessions": list(offer["starts"]),
            "expires_at": iso(offer["expires_at"]), "status": offer["status"]}


def entry_answer(row: Mapping[str, Any], offer: Mapping[str, Any] | None) -> dict[str, Any]:
    """An entry as its client, its therapist or the admin sees it."""
    return {
        "id": row["id"], "status": row["status"], "therapist_id": row["therapist_id"],
        "session_type": row["session_type"], "modality": row["modality"], "kind": row["kind"],
        "sessions": row["sessions"], "windows": list(row["windows"]), "tz": row["timezone"],
        "until": until_day(row), "joined_at": iso(row["joined_at"]),
        "client": {"name": row["client_name"], "email": row["client_email"]},
        "offer": offer_view(offer) if offer is not None and offer["status"] == LIVE else None,
        "booking_id": row["booking_id"], "course_id": row["course_id"],
    }


def until_day(row: Mapping[str, Any]) -> str | None:
    if row["until_at"] is None:
        return None
    tz = wire.zone_or(row["timezone"], "UTC")
    return (utc(row["until_at"]).astimezone(tz) - timedelta(days=1)).date().isoformat()


def offered_event(entry: Mapping[str, Any], offer: Mapping[str, Any]) -> dict[str, Any]:
    """``waitlist_offered``: ids and times only (the client's address stays here; notifications
    asks for it when it writes the letter)."""
    return {"entry_id": entry["id"], "offer_id": offer["id"],
            "therapist_id": offer["therapist_id"], "session_type": offer["session_type"],
            "modality": offer["modality"], "starts": list(offer["starts"]),
            "expires_at": iso(offer["expires_at"])}
