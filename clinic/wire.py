"""The wire format every service and the gateway read and write: instants, zones, days, text.

One parser per kind of value, so the same bad field gets the same 400 (an ``InvalidRequest``
naming the field as the HTTP API names it) whichever service found it. Instants travel as
RFC 3339 text with an offset and are handled as aware UTC datetimes; naive ones are refused,
never guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clinic.errors import InvalidRequest

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Nothing is booked a thousand years ahead (or before 1900), and date arithmetic near
# 0001-01-01 or 9999-12-31 overflows: every date and instant taken lies between these years.
FIRST_YEAR, LAST_YEAR = 1900, 2999

INSTANT_HELP = "Give an instant such as 2026-12-01T10:00:00Z."
NAIVE_HELP = "The time needs an offset (Z or +01:00); naive times are ambiguous."
DAY_HELP = "Give a date as YYYY-MM-DD."
ZONE_HELP = "Give an IANA time zone such as Europe/London."
NUL_HELP = "The text contains a NUL character."


def invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest.field(field, message)


def utc(moment: datetime | None) -> datetime | None:
    """An aware instant in UTC; a naive one is UTC already (SQLite keeps no offset)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None, tz: ZoneInfo | None = None) -> str | None:
    """An instant for the wire, with its offset (UTC, or local to ``tz`` when given)."""
    return None if moment is None else utc(moment).astimezone(tz or UTC).isoformat()


def instant(value: Any, field: str) -> datetime:
    """An RFC 3339 instant with an offset as aware UTC; anything else is a 400 on ``field``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise invalid(field, INSTANT_HELP) from None
    else:
        raise invalid(field, INSTANT_HELP)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise invalid(field, NAIVE_HELP)
    try:
        return not_too_far(moment, field).astimezone(UTC)
    except OverflowError:
        raise invalid(field, "The time is out of range.") from None


def zone(name: Any, field: str = "tz") -> ZoneInfo:
    """An IANA time zone; an unknown one is a 400 on ``field``."""
    if not isinstance(name, str) or not name.strip():
        raise invalid(field, ZONE_HELP)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise invalid(field, f"{name!r} is not a known IANA time zone.") from None


def zone_or(name: str | None, fallback: str) -> ZoneInfo:
    """The zone ``name`` if it is one, else ``fallback`` (for writing, never for refusing)."""
    try:
        return zone(name)
    except InvalidRequest:
        return ZoneInfo(fallback)


def not_too_far(value: date, field: str) -> date:
    """``value`` (a date or an instant) if its year is between FIRST_YEAR and LAST_YEAR."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise invalid(field, f"Give a date between the years {FIRST_YEAR} and {LAST_YEAR}.")
    return value


def day(value: Any, field: str) -> date:
    """A calendar date as YYYY-MM-DD; anything else is a 400 on ``field``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return not_too_far(value, field)
    if not isinstance(value, str) or not ISO_DATE.match(value):
        raise invalid(field, DAY_HELP)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise invalid(field, f"{value!r} is not a calendar date.") from None
    return not_too_far(parsed, field)


def optional_text(value: Any, field: str) -> str | None:
    """Free text as stored, None kept: PostgreSQL cannot hold NUL characters, so they are a
    400."""
    if value is None:
        return None
    value = str(value)
    if "\x00" in value:
        raise invalid(field, NUL_HELP)
    return value


def text(value: Any, field: str, *, required: bool = True, limit: int = 200) -> str | None:
    """A name or label: something visible, at most ``limit`` characters, stripped."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "This must be a non-empty text.")
    optional_text(value, field)
    if len(value) > limit:
        raise invalid(field, f"At most {limit} characters.")
    return value.strip()


def clean_key(value: Any) -> bool:
    """Whether ``value`` can be looked up as an id at all (PostgreSQL refuses NUL bytes)."""
    return isinstance(value, str) and "\x00" not in value and len(value) <= 200
