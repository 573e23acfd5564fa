"""Claiming time: the one place that decides whether a therapist's time and a room are free.

Double booking is impossible because the time is claimed inside the write transaction: on
SQLite that transaction began IMMEDIATE (one writer at a time, across processes), so the overlap
query cannot be outdated by the time the row is inserted; on PostgreSQL the same query gives a
clean answer in the common case and the exclusion constraints of migration 0002 refuse the rest
(two transactions that both saw the time free), which the use cases turn into the same 409.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic import wire
from clinic.errors import SlotUnavailable
from clinic.wire import iso, utc
from services.booking import policy, repository

TAKEN = "That time is no longer available."


@dataclass(frozen=True)
class Slot:
    """A time availability approved (``check_session``), as a claim needs it."""

    therapist_id: str
    session_type: str
    modality: str
    start: datetime
    end: datetime
    buffer_minutes: int
    rooms: tuple[str, ...]

    @property
    def blocked_end(self) -> datetime:
        return self.end + timedelta(minutes=self.buffer_minutes)

    @classmethod
    def from_check(cls, checked: Mapping[str, Any]) -> Slot:
        return cls(therapist_id=checked["therapist_id"], session_type=checked["session_type"],
                   modality=checked["modality"],
                   start=wire.instant(checked["start"], "start"),
                   end=wire.instant(checked["end"], "end"),
                   buffer_minutes=int(checked.get("buffer_minutes") or 0),
                   rooms=tuple(checked.get("rooms") or ()))

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> Slot:
        """The time a hold (or booking) row holds, its room the only one it may take."""
        end = utc(row["end"])
        return cls(therapist_id=row["therapist_id"], session_type=row["session_type"],
                   modality=row["modality"], start=utc(row["start"]), end=end,
                   buffer_minutes=int((utc(row["blocked_end"]) - end).total_seconds() // 60),
                   rooms=(row["room"],) if row["room"] else ())


def is_exclusion_violation(error: IntegrityError) -> bool:
    """PostgreSQL refused an overlapping row (sqlstate 23P01, psycopg2's ExclusionViolation)."""
    return getattr(error.orig, "pgcode", None) == "23P01"


def claim_time(session: Session, now: datetime, slot: Slot, exclude: Iterable[str] = (),
               prefer_room: str | None = None, rooms: Iterable[str] | None = None) -> str | None:
    """Check that the slot is free for the therapist and pick a free room (in person).

    Returns the room (None unless in person); raises SlotUnavailable when the time is taken.
    Must run inside the write transaction that then writes the row. One query finds every
    active row in the way (the therapist's, or a candidate room's); holds among them that are
    past their expiry are expired here, with their events, and stop counting.
    """
    rooms = list(slot.rooms if rooms is None else rooms) if slot.modality == "in_person" else []
    if rooms:
        # Two transactions that both saw room A free would both pick it, and the room
        # constraint would refuse the second with a 409 though room B is free.
        repository.take_room_turn(session)
    live = []
    for row in repository.active_in_the_way(session, slot.therapist_id, slot.start, slot.end,
                                            slot.blocked_end, rooms, exclude):
        if not (row["status"] == "held" and utc(row["expires_at"]) <= now):
            live.append(row)
        else:
            expire(session, now, row)
    if policy.therapist_busy(live, slot.therapist_id, slot.start, slot.blocked_end):
        raise SlotUnavailable(TAKEN)
    if slot.modality != "in_person":
        return None
    return policy.choose_room(rooms, live, slot.start, slot.end, prefer_room)


def claim_course(session: Session, now: datetime,
                 slots: list[Slot]) -> tuple[list[tuple[Slot, str | None]], list[str]]:
    """Claim each session's time in turn; sessions already claimed count as taken.
    Returns the claims and the starts that could not be claimed."""
    claimed: list[tuple[Slot, str | None]] = []
    conflicts: list[str] = []
    for slot in slots:
        try:
            if any(policy.overlaps(slot.start, slot.blocked_end, other.start, other.blocked_end)
                   for other, _ in claimed):
                raise SlotUnavailable("The course overlaps itself.")
            own_rooms = {room for other, room in claimed
                         if room and policy.overlaps(slot.start, slot.end, other.start, other.end)}
            room = claim_time(session, now, slot,
                              rooms=[r for r in slot.rooms if r not in own_rooms])
        except SlotUnavailable:
            conflicts.append(iso(slot.start))
            continue
        claimed.append((slot, room))
    return claimed, conflicts


def expire_stale_holds(session: Session, now: datetime, limit: int = 500) -> int:
    """Mark holds past their expiry as expired, each with a hold_released event (the timer)."""
    return sum(expire(session, now, row) for row in repository.stale_holds(session, now, limit))


def expire(session: Session, now: datetime, row: Mapping[str, Any]) -> bool:
    """Expire one stale hold, once across processes, with its event."""
    changed = repository.mark_expired(session, row["id"], now)
    if changed:
        repository.emit(session, "hold_released",
                        {"hold": policy.hold_view(row), "reason": "expired"})
    return changed
