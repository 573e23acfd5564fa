"""What a therapist offers, bookings aside, and the one rule that says whether a start is on it.

An ``Offer`` is a therapist's schedule, the session types' lengths, the clinic's rooms and the
times the therapist is away (time off and outside-calendar busy times) over a span of time.
``check_session`` decides whether one start is on offer. Availability answers its
``check_session`` RPC with it, from its tables; booking keeps each therapist's offer in memory
(``services/booking/offers.py``), fetched once from availability and dropped when availability
announces a change, and decides each booking with the same function, without a call.
Bookings and holds are not part of an offer: the booking service is the authority on those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Any

from clinic import wire
from clinic.errors import InvalidRequest, SlotUnavailable
from clinic.slots import (
    MODALITIES,
    WEEKDAY_NAMES,
    BookingCheck,
    Calendar,
    Interval,
    Schedule,
    WeeklyRule,
)

OFFER_CHANGED = "offer_changed"  # availability's event: {"therapist_id": id, or None for all}
NO_SCHEDULE = "This therapist has no schedule yet."
NOT_OFFERED = "That time is not one this therapist offers."


class BeyondOffer(LookupError):
    """The start lies outside the span the offer knows the therapist's absences for."""


def engine_schedule(timezone: str, weekly: list[dict[str, Any]], **policy: int) -> Schedule:
    """A stored schedule (weekday names, "HH:MM" times) as the slot engine reads it."""
    rules = tuple(
        WeeklyRule(WEEKDAY_NAMES.index(rule["weekday"]), time.fromisoformat(rule["start"]),
                   time.fromisoformat(rule["end"]), frozenset(rule["modalities"]))
        for rule in weekly)
    return Schedule(timezone, rules, **policy)


@dataclass(frozen=True)
class Offer:
    therapist_id: str
    timezone: str  # the therapist's own zone; a schedule's zone wins where there is one
    schedule: Mapping[str, Any] | None  # as stored: timezone, weekly, buffer, notice, horizon
    durations: Mapping[str, int]  # session type id -> minutes
    rooms: tuple[str, ...]  # the clinic's room ids, sorted
    away: tuple[Interval, ...]  # time off and outside-calendar busy times within ``covers``
    covers: Interval  # the span ``away`` is complete for

    @cached_property  # built once per offer, however many starts are checked against it
    def engine_schedule(self) -> Schedule | None:
        return None if self.schedule is None else engine_schedule(**self.schedule)

    def to_wire(self) -> dict[str, Any]:
        return {"therapist_id": self.therapist_id, "timezone": self.timezone,
                "schedule": dict(self.schedule) if self.schedule else None,
                "durations": dict(self.durations), "rooms": list(self.rooms),
                "away": [[wire.iso(span.start), wire.iso(span.end)] for span in self.away],
                "covers": [wire.iso(self.covers.start), wire.iso(self.covers.end)]}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Offer:
        def interval(pair: list[str]) -> Interval:
            return Interval(datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1]))

        return cls(therapist_id=data["therapist_id"], timezone=data["timezone"],
                   schedule=data["schedule"], durations=dict(data["durations"]),
                   rooms=tuple(data["rooms"]), away=tuple(map(interval, data["away"])),
                   covers=interval(data["covers"]))


def _reach(duration: timedelta, schedule: Schedule) -> timedelta:
    """How far around a start an absence can matter (the session, its buffer, a minute)."""
    return duration + timedelta(minutes=schedule.buffer_minutes + 1)


def check_session(offer: Offer, session_type: Any, modality: Any, start: Any,
                  now: datetime) -> dict[str, Any]:
    """The session as booking needs it, if ``start`` is on offer (bookings and holds aside);
    else the same refusal availability has always given."""
    minutes = offer.durations.get(session_type) if isinstance(session_type, str) else None
    if minutes is None:
        raise InvalidRequest.field("session_type", f"No session type {session_type!r}.")
    if modality not in MODALITIES:
        raise InvalidRequest.field("modality",
                                   f"Modality must be one of {', '.join(MODALITIES)}.")
    begins = wire.instant(start, "start")
    schedule = offer.engine_schedule
    if schedule is None:
        raise SlotUnavailable(NO_SCHEDULE)
    duration = timedelta(minutes=minutes)
    reach = _reach(duration, schedule)
    around = Interval(begins - reach, begins + reach)
    if around.start < offer.covers.start or around.end > offer.covers.end:
        raise BeyondOffer(begins)
    calendar = Calendar(time_off=tuple(span for span in offer.away if span.overlaps(around)),
                        rooms=offer.rooms if modality == "in_person" else ())
    check = BookingCheck(schedule, calendar, modality=modality, duration=duration, now=now)
    if not check.is_bookable(begins):
        raise SlotUnavailable(NOT_OFFERED)
    return {"therapist_id": offer.therapist_id, "modality": modality,
            "duration_minutes": minutes, "buffer_minutes": schedule.buffer_minutes,
            "rooms": list(offer.rooms) if modality == "in_person" else [],
            "timezone": schedule.timezone, "session_type": session_type,
            "start": wire.iso(begins), "end": wire.iso(begins + duration)}

