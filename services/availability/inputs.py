"""Reading what callers send to the availability service: plain checks, no broker, no database.

Every refusal is an ``InvalidRequest`` naming the field as the HTTP API names it, so a client
that called the gateway sees which of its fields was wrong even when the service found it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinic.slots import MODALITIES, WEEKDAY_NAMES, Interval
from clinic.wire import (  # one parser per kind of value, everywhere
    day,
    instant,
    invalid,
    text,
    zone,
)
from services.availability.course_planner import MAX_SESSIONS, MIN_SESSIONS

MAX_RANGE_DAYS = 92
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_SESSION_MINUTES = 12 * 60

SCHEDULE_DEFAULTS = {"buffer_minutes": 10, "slot_interval_minutes": 60, "min_notice_hours": 24,
                     "horizon_days": 180}
# field -> (lowest, highest) allowed
SCHEDULE_LIMITS = {"buffer_minutes": (0, 240), "slot_interval_minutes": (5, 1440),
                   "min_notice_hours": (0, 24 * 365), "horizon_days": (1, 3 * 365)}


def modality(value: Any, field: str = "modality") -> str:
    if value not in MODALITIES:
        raise invalid(field, f"Modality must be one of {', '.join(MODALITIES)}.")
    return value


def slug(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not SLUG.match(value) or len(value) > 64:
        raise invalid(field, "Use lowercase letters, digits and single hyphens (at most 64).")
    return value


def whole_number(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(field, f"Give a whole number from {low} to {high}.")
    return value


def sessions_count(value: Any) -> int:
    return whole_number(value, "sessions", MIN_SESSIONS, MAX_SESSIONS)


def slugify(name: str) -> str:
    words = re.findall(r"[a-z0-9]+", name.lower())
    return "-".join(words)[:48].strip("-") or "therapist"


def date_window(from_value: Any, to_value: Any, tz: ZoneInfo) -> Interval:
    """[from 00:00, to + 1 day 00:00) in ``tz``: an inclusive date range as instants."""
    first = day(from_value, "from")
    last = day(to_value, "to")
    if last < first:
        raise invalid("to", "'to' must not be before 'from'.")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise invalid("to", f"A range spans at most {MAX_RANGE_DAYS} days.")
    return Interval(local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz))


def local_midnight(value: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(value, time(0), tzinfo=tz).astimezone(UTC)


def skip_dates(values: Iterable[Any] | None, field: str = "skip_weeks") -> list[date]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    return [day(value.strip() if isinstance(value, str) else value, field) for value in values]


# --- therapists, session types, rooms ----------------------------------------------------------


def new_therapist(data: dict[str, Any], clinic_timezone: str) -> dict[str, Any]:
    """The checked fields of a new therapist (``id`` may be None: the caller generates one)."""
    allowed = {"id", "name", "email", "title", "bio", "specialties", "modalities", "timezone"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise invalid(extra[0], "Unknown field.")
    specialties = data.get("specialties", [])
    if not isinstance(specialties, list) or not all(
            isinstance(s, str) and s.strip() and len(s) <= 100 and "\x00" not in s
            for s in specialties):
        raise invalid("specialties", "Give a list of specialties, each a short text.")
    modalities = data.get("modalities")
    if not isinstance(modalities, list) or not modalities:
        raise invalid("modalities", f"Give at least one of {', '.join(MODALITIES)}.")
    for index, item in enumerate(modalities):
        modality(item, f"modalities.{index}")
    email = text(data.get("email"), "email", required=False, limit=320)
    if email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        raise invalid("email", "This is not an email address.")
    timezone = data.get("timezone") or clinic_timezone
    zone(timezone, "timezone")
    return {
        "id": slug(data["id"]) if data.get("id") is not None else None,
        "name": text(data.get("name"), "name"),
        "email": email,
        "title": text(data.get("title"), "title", required=False),
        "bio": text(data.get("bio"), "bio", required=False, limit=4000),
        "specialties": sorted({s.strip() for s in specialties}, key=str.lower),
        "modalities": [m for m in MODALITIES if m in modalities],
        "timezone": timezone,
    }


def new_session_type(data: dict[str, Any]) -> dict[str, Any]:
    return {"id": slug(data.get("id")), "name": text(data.get("name"), "name"),
            "duration_minutes": whole_number(data.get("duration_minutes"), "duration_minutes", 5,
                                             MAX_SESSION_MINUTES)}


def new_room(data: dict[str, Any]) -> dict[str, Any]:
    return {"id": slug(data.get("id")), "name": text(data.get("name"), "name")}


# --- schedules and time off --------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleInput:
    timezone: str
    weekly: list[dict[str, Any]]
    buffer_minutes: int
    slot_interval_minutes: int
    min_notice_hours: int
    horizon_days: int


def _wall(value: Any, field: str) -> time:
    if not isinstance(value, str) or not HH_MM.match(value):
        raise invalid(field, "Give a wall-clock time as HH:MM (00:00 to 23:59).")
    return time.fromisoformat(value)


def schedule_input(data: dict[str, Any], therapist_timezone: str) -> ScheduleInput:
    allowed = {"timezone", "weekly", *SCHEDULE_DEFAULTS}
    extra = sorted(set(data) - allowed)
    if extra:
        raise invalid(extra[0], "Unknown field.")
    timezone = data.get("timezone") or therapist_timezone
    zone(timezone, "timezone")
    weekly = data.get("weekly")
    if not isinstance(weekly, list):
        raise invalid("weekly", "Give a list of weekly rules.")
    rules = []
    for index, rule in enumerate(weekly):
        where = f"weekly.{index}"
        if not isinstance(rule, dict):
            raise invalid(where, "Each rule is {weekday, start, end, modalities}.")
        extra = sorted(set(rule) - {"weekday", "start", "end", "modalities"})
        if extra:
            raise invalid(f"{where}.{extra[0]}", "Unknown field.")
        if rule.get("weekday") not in WEEKDAY_NAMES:
            raise invalid(f"{where}.weekday", "Give a lowercase English weekday, e.g. tuesday.")
        start = _wall(rule.get("start"), f"{where}.start")
        end = _wall(rule.get("end"), f"{where}.end")
        if end <= start:
            raise invalid(f"{where}.end", "The rule must end after it starts.")
        offered = rule.get("modalities")
        if not isinstance(offered, list) or not offered:
            raise invalid(f"{where}.modalities", f"Give at least one of {', '.join(MODALITIES)}.")
        for position, item in enumerate(offered):
            modality(item, f"{where}.modalities.{position}")
        rules.append({"weekday": rule["weekday"], "start": rule["start"], "end": rule["end"],
                      "modalities": [m for m in MODALITIES if m in offered]})
    policy = {}
    for name, default in SCHEDULE_DEFAULTS.items():
        value = data.get(name)
        policy[name] = default if value is None else whole_number(value, name,
                                                                  *SCHEDULE_LIMITS[name])
    return ScheduleInput(timezone=timezone, weekly=rules, **policy)


def time_off_input(data: dict[str, Any]) -> tuple[datetime, datetime, str | None]:
    extra = sorted(set(data) - {"start", "end", "reason"})
    if extra:
        raise invalid(extra[0], "Unknown field.")
    start = instant(data.get("start"), "start")
    end = instant(data.get("end"), "end")
    if end <= start:
        raise invalid("end", "Time off must end after it starts.")
    return start, end, text(data.get("reason"), "reason", required=False, limit=500)


