"""The booking rules as pure functions: times, cancellation policy, attendance, the shapes of
bookings, holds and courses as they leave the service (events and RPC answers)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinic.access import Caller
from clinic.errors import (
    Forbidden,
    HoldExpired,
    InvalidRequest,
    InvalidState,
    NotFound,
    SlotUnavailable,
    Unauthorized,
)
from clinic.ical import client_initials
from clinic.phases import phase_of
from clinic.wire import instant, iso, optional_text, utc, zone

IDEMPOTENCY_TTL = timedelta(hours=24)
HOLD_STATUSES = ("held", "expired", "released", "converted")
BOOKING_STATUSES = ("confirmed", "cancelled", "attended", "no_show")
ATTENDANCE_STATUSES = ("attended", "no_show")
ENDED_STATUSES = ("attended", "no_show")


def day_range(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The inclusive local dates [first, last] in ``tz`` as a half-open UTC range."""
    if last < first:
        raise InvalidRequest.field("to", "'to' is before 'from'.")
    try:
        start = datetime.combine(first, time(0), tz).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(0), tz).astimezone(UTC)
    except OverflowError:
        raise InvalidRequest.field("to", "The dates are out of range.") from None
    return start, end


def request_hash(request: Mapping[str, Any]) -> str:
    """Fingerprint of a request body, independent of key order (Idempotency-Key comparison)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def canceller(caller: Caller) -> str:
    """Who cancelled, as events and answers name it."""
    return {"admin": "admin", "therapist": "therapist"}.get(caller.kind, "client")


def is_late_cancellation(caller: Caller, start: datetime, now: datetime,
                         notice_hours: float) -> bool:
    """Only a client's cancellation can be late; the clinic's own never is."""
    if caller.kind != "manage":
        return False
    return start - now < timedelta(hours=notice_hours)


def has_started(start: datetime, now: datetime) -> bool:
    return now >= start


def video_url(base: str, modality: str, booking_id: str) -> str | None:
    if modality != "video" or not base:
        return None
    return f"{base.rstrip('/')}/{booking_id}"


def client_of(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": row["client_name"], "email": row["client_email"],
            "phone": row["client_phone"], "timezone": row["client_timezone"]}


def claimed_time(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a hold and a booking both say: whose time, which session, when, where."""
    return {
        "id": row["id"],
        "therapist_id": row["therapist_id"],
        "session_type": row["session_type"],
        "modality": row["modality"],
        "start": iso(row["start"]),
        "end": iso(row["end"]),
        "blocked_end": iso(row["blocked_end"]),
        "room": row["room"],
    }


def booking_view(row: Mapping[str, Any], video_base: str = "") -> dict[str, Any]:
    """A booking as the event contract (docs/architecture.md, "Events") describes it."""
    return {
        **claimed_time(row),
        "status": row["status"],
        "video_url": video_url(video_base, row["modality"], row["id"]),
        "course_id": row["course_id"],
        "session_number": row["session_number"],
        "course_sessions": row["course_sessions"],
        "client": client_of(row),
        "sequence": row["sequence"],
        "late_cancellation": bool(row["late_cancellation"]),
        "cancelled_by": row["cancelled_by"],
        "notes_present": bool(row["notes"]),
    }


def booking_answer(row: Mapping[str, Any], video_base: str = "") -> dict[str, Any]:
    """What an authorised caller sees: the event form plus notes and timestamps."""
    return {**booking_view(row, video_base), "notes": row["notes"],
            "cancel_reason": row["cancel_reason"], "cancelled_at": iso(row["cancelled_at"]),
            "cancelled_by_id": row["cancelled_by_id"],
            "created_at": iso(row["created_at"])}


def feed_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A booking as a therapist's calendar feed may show it: the client's initials, no more.

    Feed URLs end up in calendar apps and their sync servers, so no contact detail, note or
    cancellation reason (health data) ever leaves this service by this road.
    """
    return {
        **claimed_time(row),
        "status": row["status"],
        "sequence": row["sequence"],
        "course_id": row["course_id"],
        "session_number": row["session_number"],
        "course_sessions": row["course_sessions"],
        "client_initials": client_initials(row["client_name"] or ""),
        "updated_at": iso(row["updated_at"]),
    }


def hold_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**claimed_time(row), "expires_at": iso(row["expires_at"])}


def course_counts(sessions: Iterable[Mapping[str, Any]], now: datetime) -> tuple[int, int]:
    """(completed, remaining): sessions that took place, and confirmed ones still to come."""
    completed = remaining = 0
    for session in sessions:
        status, end = session["status"], utc(session["end"])
        if status in ENDED_STATUSES or (status == "confirmed" and end <= now):
            completed += 1
        elif status == "confirmed":
            remaining += 1
    return completed, remaining


def course_view(course: Mapping[str, Any], sessions: list[Mapping[str, Any]],
                video_base: str = "") -> dict[str, Any]:
    """A course as the event contract describes it; sessions are full booking dicts."""
    ordered = sorted(sessions, key=lambda s: s["session_number"])
    live = [s for s in ordered if s["status"] != "cancelled"] or ordered
    return {
        "id": course["id"],
        "therapist_id": course["therapist_id"],
        "client": client_of(course),
        "session_type": course["session_type"],
        "modality": course["modality"],
        "sessions": [booking_view(s, video_base) for s in ordered],
        "first_start": iso(min(utc(s["start"]) for s in live)),
        "last_end": iso(max(utc(s["end"]) for s in live)),
        "status": course["status"],
    }


def course_answer(course: Mapping[str, Any], sessions: list[Mapping[str, Any]], now: datetime,
                  video_base: str = "") -> dict[str, Any]:
    """A course as the HTTP contract shows it: numbered sessions and completed/remaining
    counts."""
    view = course_view(course, sessions, video_base)
    completed, remaining = course_counts(sessions, now)
    view["sessions"] = [
        {"number": s["session_number"], "booking_id": s["id"], "start": s["start"],
         "end": s["end"], "status": s["status"], "room": s["room"], "video_url": s["video_url"],
         "sequence": s["sequence"],
         "phase": phase_of(s["session_number"], course["session_count"])}
        for s in view["sessions"]
    ]
    view.update(completed=completed, remaining=remaining, session_count=course["session_count"],
                skip_weeks=course["skip_weeks"], cancelled_at=iso(course["cancelled_at"]),
                cancelled_by=course["cancelled_by"], cancelled_by_id=course["cancelled_by_id"])
    return view


def to_cancel_in_course(sessions: Iterable[Mapping[str, Any]], now: datetime) -> list:
    """Sessions a course cancellation cancels: confirmed ones not yet started."""
    return [s for s in sessions if s["status"] == "confirmed" and utc(s["start"]) > now]


def require_client(client: Any) -> dict[str, Any]:
    """The client part of a request, checked (the gateway validates too; RPC callers may not)."""
    if not isinstance(client, Mapping):
        raise InvalidRequest.field("client", "The client's name and email are required.")
    name, email = str(client.get("name") or "").strip(), str(client.get("email") or "").strip()
    if not name:
        raise InvalidRequest.field("client.name", "The client's name is required.")
    if "@" not in email:
        raise InvalidRequest.field("client.email", "A valid email address is required.")
    timezone = optional_text(client.get("timezone"), "client.timezone")
    if timezone:
        zone(timezone, "client.timezone")
    return {"client_name": optional_text(name, "client.name"),
            "client_email": optional_text(email, "client.email"),
            "client_phone": optional_text(client.get("phone"), "client.phone"),
            "client_timezone": timezone}


# --- state checks: whether a change may happen, decided from the rows alone ------------------

def check_cancellable(row: Mapping[str, Any], now: datetime) -> None:
    """Only a confirmed session that has not started can be cancelled."""
    if row["status"] != "confirmed":
        raise InvalidState(f"This booking is {row['status']}; it cannot be cancelled.")
    if has_started(utc(row["start"]), now):
        raise InvalidState("This session has already started.")


def check_movable(row: Mapping[str, Any], therapist_id: str, session_type: str, modality: str,
                  now: datetime) -> None:
    """A reschedule keeps the therapist, session type and modality, and moves only a confirmed
    session that has not started."""
    if (row["therapist_id"], row["session_type"], row["modality"]) != (
            therapist_id, session_type, modality):
        raise InvalidRequest.field("start", "The new time is for another session.")
    if row["status"] != "confirmed":
        raise InvalidState(f"This booking is {row['status']}; it cannot be moved.")
    if has_started(utc(row["start"]), now):
        raise InvalidState("This session has already started.")


def check_releasable(hold: Mapping[str, Any], now: datetime) -> None:
    if hold["status"] != "held" or utc(hold["expires_at"]) <= now:
        raise InvalidState("This hold is no longer held.")


def check_convertible(hold: Mapping[str, Any], request: Mapping[str, Any],
                      now: datetime) -> None:
    """A hold becomes the booking it was placed for, while it is still held."""
    start = instant(request.get("start"), "start")
    if (hold["therapist_id"], hold["session_type"], hold["modality"], utc(hold["start"])) \
            != (request.get("therapist_id"), request.get("session_type"),
                request.get("modality"), start):
        raise InvalidRequest.field("hold_id", "The hold is for another session.")
    if hold["status"] == "expired" or (hold["status"] == "held"
                                       and utc(hold["expires_at"]) <= now):
        raise HoldExpired("The hold has expired; choose the time again.")
    if hold["status"] != "held":
        raise InvalidState(f"The hold was already {hold['status']}.")


def attendance_status(status: Any) -> str:
    if status not in ATTENDANCE_STATUSES:
        raise InvalidRequest.field("status", "Use 'attended' or 'no_show'.")
    return status


def check_attendance(row: Mapping[str, Any], caller: Caller, now: datetime) -> None:
    """The therapist or the admin marks attendance of a session that has started."""
    if not caller.acts_for_therapist(row["therapist_id"]):
        raise Forbidden("Only the therapist or the admin may mark attendance.")
    if row["status"] == "cancelled":
        raise InvalidState("This booking was cancelled.")
    if not has_started(utc(row["start"]), now):
        raise InvalidState("Attendance can be marked once the session has started.")


def check_course_cancellable(course: Mapping[str, Any]) -> None:
    if course["status"] != "active":
        raise InvalidState(f"This course is {course['status']}.")


def check_access(caller: Caller, therapist_id: str, holds_token: Callable[[], bool],
                 what: str) -> None:
    """The admin, the therapist, or a holder of the row's manage token; to anyone else the
    booking or course does not exist. ``holds_token`` is asked only when it matters."""
    if caller.kind == "public":
        raise Unauthorized(f"This needs the {what}'s manage token or a therapist's token.")
    if caller.acts_for_therapist(therapist_id) or holds_token():
        return
    raise NotFound(f"No such {what}.")


# --- time: who is in the way, which room --------------------------------------------------

def overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    return start < other_end and other_start < end


def therapist_busy(live: Iterable[Mapping[str, Any]], therapist_id: str, start: datetime,
                   blocked_end: datetime) -> bool:
    """Whether a live row of the therapist blocks [start, blocked_end)."""
    return any(row["therapist_id"] == therapist_id
               and overlaps(start, blocked_end, utc(row["start"]), utc(row["blocked_end"]))
               for row in live)


def choose_room(rooms: Iterable[str], live: Iterable[Mapping[str, Any]], start: datetime,
                end: datetime, prefer: str | None = None) -> str:
    """The first room no live row occupies during [start, end); a moved session keeps its
    room when it can (``prefer``)."""
    taken = {row["room"] for row in live
             if row["room"] and overlaps(start, end, utc(row["start"]), utc(row["end"]))}
    ordered = list(rooms)
    if prefer in ordered:
        ordered.remove(prefer)
        ordered.insert(0, prefer)
    for room in ordered:
        if room not in taken:
            return room
    raise SlotUnavailable("No room is free at that time.")


def sorted_instants(values: Iterable[str]) -> list[str]:
    """Distinct instants, earliest first, in the one ISO form answers use."""
    return sorted({iso(instant(value, "conflicts")) for value in values},
                  key=lambda value: instant(value, "conflicts"))
