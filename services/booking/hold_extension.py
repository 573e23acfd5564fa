"""Extending a hold, once: a client warned that the hold is about to lapse may ask for more time
(WCAG 2.2.1, "Timing adjustable"), without the slot being withheld for ever.

The hold row's ``sequence`` (0 for every new hold; holds never changed before) counts the
extension, so "once" needs no new column. The new expiry travels as a repeated ``hold_placed``
event; availability keeps the later expiry of the two (``record_busy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from clinic.errors import HoldExpired, InvalidState
from clinic.wire import utc
from services.booking.models import bookings

MAX_EXTENSIONS = 1


def extended_expiry(row: Mapping[str, Any], now: datetime, hold_minutes: int) -> datetime:
    """The hold's new expiry (another ``hold_minutes`` from now), or why it cannot have one."""
    if row["status"] == "expired" or (row["status"] == "held"
                                      and utc(row["expires_at"]) <= now):
        raise HoldExpired("The hold has expired; choose the time again.")
    if row["status"] != "held":
        raise InvalidState(f"The hold was already {row['status']}.")
    if (row["sequence"] or 0) >= MAX_EXTENSIONS:
        raise InvalidState("This hold was already extended once.")
    return now + timedelta(minutes=hold_minutes)


def extend_hold_row(session: Session, row: Mapping[str, Any], now: datetime,
                    hold_minutes: int) -> dict[str, Any]:
    """Write the extension; the conditions in the UPDATE make a concurrent expiry or second
    extension lose cleanly rather than both winning."""
    expires_at = extended_expiry(row, now, hold_minutes)
    changed = session.execute(
        update(bookings).where(bookings.c.id == row["id"], bookings.c.status == "held",
                               bookings.c.sequence == row["sequence"],
                               bookings.c.expires_at > now)
        .values(expires_at=expires_at, sequence=(row["sequence"] or 0) + 1,
                updated_at=now)).rowcount
    if not changed:
        raise InvalidState("This hold changed meanwhile; please look at it again.")
    return {**row, "expires_at": expires_at, "sequence": (row["sequence"] or 0) + 1}
