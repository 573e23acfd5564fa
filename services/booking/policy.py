"""The booking rules as pure functions: times, cancellation policy, attendance, the shapes of
bookings, holds and courses as they leave the service (events and RPC answers)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clinic.access import Caller
from clinic.errors import InvalidRequest
from clinic.ical import client_initials
from clinic.phases import phase_of

IDEMPOTENCY_TTL = timedelta(hours=24)
HOLD_STATUSES = ("held", "expired", "released", "converted")
BOOKING_STATUSES = ("confirmed", "cancelled", "attended", "no_show")
ATTENDANCE_STATUSES = ("attended", "no_show")
ENDED_STATUSES = ("attended", "no_show")


def as_utc(moment: datetime | None) -> datetime | None:
    """A database value as aware UTC (SQLite hands back naive UTC, PostgreSQL any offset)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def parse_instant(value: Any, field: str) -> datetime:
    """An RPC argument (ISO 8601 with an offset) as aware UTC; a naive or bad one is a 400."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest.field(field, "Not an RFC 3339 instant.") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRequest.field(field, "The time needs an offset (e.g. Z or +01:00).")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest.field(field, "The time is out of range.") from None


def zone(name: str, field: str = "tz") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest.field(field, f"Unknown time zone {name!r}.") from None


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
    """A booking as the event contract (COMMON.md) describes it."""
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
        status, end = session["status"], as_utc(session["end"])
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
        "first_start": iso(min(as_utc(s["start"]) for s in live)),
        "last_end": iso(max(as_utc(s["end"]) for s in live)),
        "status": course["status"],
    }


def course_answer(course: Mapping[str, Any], sessions: list[Mapping[str, Any]], now: datetime,
                  video_base: str = "") -> dict[str, Any]:
    """What API.md shows of a course: numbered sessions and completed/remaining counts."""
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
                cancelled_by=course["cancelled_by"])
    return view


def to_cancel_in_course(sessions: Iterable[Mapping[str, Any]], now: datetime) -> list:
    """Sessions a course cancellation cancels: confirmed ones not yet started."""
    return [s for s in sessions if s["status"] == "confirmed" and as_utc(s["start"]) > now]


def text(value: Any, field: str) -> str | None:
    """Free text as stored: PostgreSQL cannot hold NUL characters, so they are a 400."""
    if value is None:
        return None
    value = str(value)
    if "\x00" in value:
        raise InvalidRequest.field(field, "The text contains a NUL character.")
    return value


def require_client(client: Any) -> dict[str, Any]:
    """The client part of a request, checked (the gateway validates too; RPC callers may not)."""
    if not isinstance(client, Mapping):
        raise InvalidRequest.field("client", "The client's name and email are required.")
    name, email = str(client.get("name") or "").strip(), str(client.get("email") or "").strip()
    if not name:
        raise InvalidRequest.field("client.name", "The client's name is required.")
    if "@" not in email:
        raise InvalidRequest.field("client.email", "A valid email address is required.")
    timezone = text(client.get("timezone"), "client.timezone")
    if timezone:
        zone(timezone, "client.timezone")
    return {"client_name": text(name, "client.name"), "client_email": text(email, "client.email"),
            "client_phone": text(client.get("phone"), "client.phone"),
            "client_timezone": timezone}
