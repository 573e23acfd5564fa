"""Queries and writes on the availability database; every function takes an open Session.

Slot searches read only the rows that can matter to the asked window, through the
(therapist_id, start) and (room, start) indexes: a session is never longer than a day, so a row
that starts more than a day before the window cannot reach into it. The cost of a search then
depends on the window, not on how many bookings the therapist has elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from clinic import wire
from clinic.access import FEED_PREFIX, new_token
from clinic.errors import InvalidRequest, NotFound
from clinic.events import Event
from clinic.offer import OFFER_CHANGED, Offer
from clinic.offer import engine_schedule as stored_schedule
from clinic.outbox import record
from clinic.slots import Calendar, Interval, Schedule
from clinic.sql import upsert
from services.availability import inputs
from services.availability.models import (
    BusyTime,
    CalendarFeed,
    OutsideBusy,
    Room,
    ScheduleRow,
    SearchStamp,
    SessionType,
    Therapist,
    TherapistToken,
    TimeOff,
    outbox,
)
from services.availability.search_cache import (
    ROOM_PREFIX,
    Stamp,
    room_scope,
    stamp_of,
    therapist_scope,
)

# No session, hold or course session spans more than this (session types are at most 12 h).
LONGEST_BUSY = timedelta(days=1)


# --- catalogue ---------------------------------------------------------------------------------


def therapist(session: Session, therapist_id: str) -> Therapist:
    found = session.get(Therapist, therapist_id) if wire.clean_key(therapist_id) else None
    if found is None:
        raise NotFound(f"No therapist {therapist_id!r}.")
    return found


def therapist_with_schedule(session: Session, therapist_id: Any, session_type_id: Any,
                            ) -> tuple[Therapist, ScheduleRow | None, timedelta]:
    """A search's therapist, schedule and session length in one round trip (404 before 400)."""
    if not wire.clean_key(therapist_id):
        raise NotFound(f"No therapist {therapist_id!r}.")
    kind = session_type_id if wire.clean_key(session_type_id) else ""
    duration = (select(SessionType.duration_minutes).where(SessionType.id == kind)
                .scalar_subquery())
    found = session.execute(
        select(Therapist, ScheduleRow, duration)
        .outerjoin(ScheduleRow, ScheduleRow.therapist_id == Therapist.id)
        .where(Therapist.id == therapist_id)).first()
    if found is None:
        raise NotFound(f"No therapist {therapist_id!r}.")
    therapist_row, schedule, minutes = found
    if minutes is None:
        raise InvalidRequest.field("session_type", f"No session type {session_type_id!r}.")
    return therapist_row, schedule, timedelta(minutes=minutes)


def room_ids(session: Session) -> list[str]:
    return list(session.connection().execute(select(Room.id).order_by(Room.id)).scalars())


def session_lengths(session: Session) -> dict[str, int]:
    """Every session type's length in minutes."""
    rows = session.connection().execute(select(SessionType.id, SessionType.duration_minutes))
    return {kind: minutes for kind, minutes in rows}


def _away_selects(therapist_id: str, window: Interval, leading: tuple = (),
                  trailing: tuple = ()) -> list:
    """Time off and outside-calendar busy times (which block like time off) overlapping
    ``window``: one SELECT of ``*leading, start, end, *trailing`` each."""
    return [select(*leading, table.start, table.end, *trailing)
            .where(table.therapist_id == therapist_id, table.start < window.end,
                   table.end > window.start)
            for table in (TimeOff, OutsideBusy)]


def away_times(session: Session, therapist_id: str, window: Interval) -> tuple[Interval, ...]:
    """The therapist's time off and outside-calendar busy times overlapping ``window``."""
    rows = session.connection().execute(union_all(*_away_selects(therapist_id, window))).all()
    return tuple(sorted((Interval(start, end) for start, end in rows),
                        key=lambda span: span.start))


def public_therapist(row: Therapist) -> dict[str, Any]:
    """What anyone may see of a therapist: never the email."""
    return {"id": row.id, "name": row.name, "title": row.title, "bio": row.bio,
            "specialties": list(row.specialties), "modalities": list(row.modalities),
            "timezone": row.timezone}


def therapists(session: Session, specialty: str | None, modality: str | None) -> list[Therapist]:
    rows = session.scalars(select(Therapist).order_by(Therapist.name, Therapist.id)).all()
    # JSON list columns differ per backend; the clinic has tens of therapists, filter here.
    if specialty:
        wanted = specialty.strip().lower()
        rows = [r for r in rows if any(s.lower() == wanted for s in r.specialties)]
    if modality:
        rows = [r for r in rows if modality in r.modalities]
    return rows


def free_therapist_id(session: Session, name: str) -> str:
    base = inputs.slugify(name)
    candidate, number = base, 1
    while session.get(Therapist, candidate) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def therapist_for_token(session: Session, digest: str) -> str | None:
    return session.scalar(select(TherapistToken.therapist_id)
                          .where(TherapistToken.token_hash == digest))


def therapist_for_feed(session: Session, digest: str) -> Therapist | None:
    return session.scalar(select(Therapist).join(CalendarFeed)
                          .where(CalendarFeed.secret_hash == digest))


def calendar_feed(session: Session, therapist_id: str, now: datetime) -> CalendarFeed:
    """The therapist's feed row, locked; made with a fresh secret if there was none.

    Insert-or-nothing first, so two first requests at once on PostgreSQL share one secret.
    """
    secret, digest = new_token(FEED_PREFIX)
    session.execute(upsert(session, CalendarFeed)
                    .values(therapist_id=therapist_id, secret=secret, secret_hash=digest,
                            rotated_at=now)
                    .on_conflict_do_nothing(index_elements=["therapist_id"]))
    return session.scalars(select(CalendarFeed).where(CalendarFeed.therapist_id == therapist_id)
                           .with_for_update()).one()


# --- schedules and time off --------------------------------------------------------------------


def schedule_row(session: Session, therapist_id: str) -> ScheduleRow | None:
    return session.get(ScheduleRow, therapist_id)


def schedule_dict(row: ScheduleRow) -> dict[str, Any]:
    return {"timezone": row.timezone, "weekly": list(row.weekly),
            "buffer_minutes": row.buffer_minutes,
            "slot_interval_minutes": row.slot_interval_minutes,
            "min_notice_hours": row.min_notice_hours, "horizon_days": row.horizon_days}


def offer(session: Session, therapist_row: Therapist, row: ScheduleRow | None,
          durations: dict[str, int], covers: Interval, *, rooms: bool = True) -> Offer:
    """What the therapist offers over ``covers`` (``clinic.offer``); ``rooms`` False leaves
    the clinic's rooms out (they matter only in person)."""
    return Offer(therapist_id=therapist_row.id, timezone=therapist_row.timezone,
                 schedule=schedule_dict(row) if row else None, durations=durations,
                 rooms=tuple(room_ids(session)) if rooms else (),
                 away=away_times(session, therapist_row.id, covers), covers=covers)


def offer_changed(session: Session, therapist_id: str | None) -> None:
    """Tell the booking service (in this transaction's outbox) that what this therapist offers
    changed (None: every therapist's, as with rooms and session types): it drops its copy."""
    record(session, outbox, Event(OFFER_CHANGED, {"therapist_id": therapist_id}, "availability"))


def therapist_offer_changed(session: Session, therapist_id: str) -> None:
    """A change to this therapist's schedule, time off or outside busy times, in its
    transaction: searches computed before it stop (the stamp), booking drops its copy."""
    touch_therapist(session, therapist_id)
    offer_changed(session, therapist_id)


def engine_schedule(row: ScheduleRow) -> Schedule:
    return stored_schedule(**schedule_dict(row))


def time_off_dict(row: TimeOff) -> dict[str, Any]:
    return {"id": row.id, "start": wire.iso(row.start), "end": wire.iso(row.end),
            "reason": row.reason}


# --- busy times --------------------------------------------------------------------------------


def _in_force(now: datetime):
    return and_(BusyTime.active.is_(True),
                or_(BusyTime.expires_at.is_(None), BusyTime.expires_at > now))


def _overlapping(window: Interval):
    return and_(BusyTime.start < window.end, BusyTime.start > window.start - LONGEST_BUSY,
                BusyTime.end > window.start)


def calendar(session: Session, therapist_id: str, schedule: Schedule, modality: str,
             window: Interval, duration: timedelta, now: datetime, *,
             with_busy: bool = True) -> Calendar:
    return calendar_and_lapse(session, therapist_id, schedule, modality, window, duration, now,
                              with_busy=with_busy)[0]


def calendar_and_lapse(session: Session, therapist_id: str, schedule: Schedule, modality: str,
                       window: Interval, duration: timedelta, now: datetime, *,
                       with_busy: bool = True) -> tuple[Calendar, datetime | None]:
    """What is taken around sessions starting in ``window``, as the slot engine reads it.

    Time off, the therapist's busy rows and (in person) the rooms' busy rows come back as one
    UNION ALL, each part through its own index; in person, the room ids are read first.
    ``with_busy=False`` leaves out bookings and holds: the booking service's own check of a
    start (check_session) ignores them, since it is the authority on those. The second value is
    the first ``expires_at`` among the holds read: from then on the same query reads less.
    """
    reach = duration + timedelta(minutes=schedule.buffer_minutes)
    around = Interval(window.start - reach - timedelta(minutes=1), window.end + reach)
    no_expiry = cast(null(), BusyTime.expires_at.type)
    parts = _away_selects(therapist_id, around,
                          (literal("off").label("part"), cast(null(), String).label("room")),
                          (no_expiry.label("expires_at"),))
    if with_busy:
        parts.append(select(literal("busy"), BusyTime.room, BusyTime.start, BusyTime.end,
                            BusyTime.expires_at)
                     .where(BusyTime.therapist_id == therapist_id, _overlapping(around),
                            _in_force(now)))
    rooms_taken: dict[str, list[Interval]] = {}
    if modality == "in_person":
        rooms_taken = {room: [] for room in room_ids(session)}
        if with_busy and rooms_taken:
            # The ids as literals, not a subquery: PostgreSQL then walks the (room, start)
            # index once per room instead of scanning the whole table.
            parts.append(select(literal("room_busy"), BusyTime.room, BusyTime.start,
                                BusyTime.end, BusyTime.expires_at)
                         .where(BusyTime.room.in_(list(rooms_taken)), _overlapping(around),
                                _in_force(now)))
    time_off: list[Interval] = []
    busy: list[Interval] = []
    # Core execution: plain rows, without the ORM's per-row bookkeeping.
    lapses: datetime | None = None
    for part, room, start, end, expires in session.connection().execute(union_all(*parts)).all():
        if expires is not None and (lapses is None or expires < lapses):
            lapses = expires
        if part == "off":
            time_off.append(Interval(start, end))
        elif part == "busy":
            busy.append(Interval(start, end))
        else:
            rooms_taken[room].append(Interval(start, end))
    return Calendar(time_off=tuple(time_off), busy=tuple(busy),
                    rooms=tuple(sorted(rooms_taken)),
                    room_busy={room: tuple(spans) for room, spans in rooms_taken.items()}
                    ), lapses


# --- search stamps (search_cache) --------------------------------------------------------------


def search_stamp(session: Session, therapist_id: Any, in_person: bool) -> Stamp:
    """The stamps a search of this therapist depends on, in one query; read before its rows.

    In person, every room's too: another therapist's booking can take the room a slot needs.
    The table holds a row per therapist and room, so the prefix scan stays small.
    """
    scope = therapist_scope(str(therapist_id))
    wanted = SearchStamp.scope == scope
    if in_person:
        wanted = or_(wanted, SearchStamp.scope.startswith(ROOM_PREFIX, autoescape=True))
    rows = session.connection().execute(select(SearchStamp.scope, SearchStamp.stamp)
                                        .where(wanted)).all()
    return stamp_of([(row[0], row[1]) for row in rows])


def touch(session: Session, scopes: Iterable[str]) -> None:
    """New stamps for ``scopes``, in the transaction that changes what they cover.

    One statement, scopes sorted: two transactions touching the same rooms lock them in the
    same order.
    """
    wanted = sorted(set(scopes))
    if not wanted:
        return
    statement = upsert(session, SearchStamp).values(
        [{"scope": scope, "stamp": uuid.uuid4().hex} for scope in wanted])
    session.execute(statement.on_conflict_do_update(
        index_elements=["scope"], set_={"stamp": statement.excluded.stamp}))


def touch_therapist(session: Session, therapist_id: str) -> None:
    touch(session, [therapist_scope(therapist_id)])


def busy_scopes(values: dict[str, Any]) -> set[str]:
    """What a busy row's change is seen by: its therapist's searches and its room's."""
    scopes = {therapist_scope(values["therapist_id"])}
    if values.get("room"):
        scopes.add(room_scope(values["room"]))
    return scopes


def record_busy(session: Session, values: dict[str, Any]) -> set[str]:
    """Apply one hold's or booking's latest known state; older news never overwrites newer.

    Insert-or-nothing first, then lock the row and compare sequences, so two handlers of the same
    booking running at once on PostgreSQL neither fail on the key nor lose an update. Returns the
    search stamp scopes to renew (``touch``) before the transaction ends: the row's, before and
    after.
    """
    scopes = busy_scopes(values)
    inserted = session.execute(
        upsert(session, BusyTime).values(**values).on_conflict_do_nothing(index_elements=["id"]))
    if inserted.rowcount == 1:
        return scopes
    row = session.scalars(select(BusyTime).where(BusyTime.id == values["id"])
                          .with_for_update()).one()
    scopes |= busy_scopes({"therapist_id": row.therapist_id, "room": row.room})
    _apply_busy(row, values)
    return scopes


def _apply_busy(row: BusyTime, values: dict[str, Any]) -> None:
    if values["kind"] == "hold":
        # A hold changes only by ending, or by being extended (a hold_placed with a later
        # expiry, services/booking/hold_extension.py): the later expiry wins, an end is final.
        if row.active and not values["active"]:
            row.active = False
            row.updated_at = values["updated_at"]
        elif row.active and _later(values["expires_at"], row.expires_at):
            row.expires_at = values["expires_at"]
            row.updated_at = values["updated_at"]
        return
    if values["sequence"] < row.sequence:
        return
    if values["sequence"] == row.sequence and not row.active:
        return  # same version already applied; a cancellation at this sequence stands
    for name, value in values.items():
        setattr(row, name, value)


def _later(new: datetime | None, old: datetime | None) -> bool:
    return new is not None and old is not None and new > old


def hold_values(hold: dict[str, Any], *, active: bool, now: datetime) -> dict[str, Any]:
    return {
        "id": hold["id"], "kind": "hold", "therapist_id": hold["therapist_id"],
        "room": hold.get("room"), "start": wire.instant(hold["start"], "start"),
        "end": wire.instant(hold["end"], "end"),
        "blocked_end": wire.instant(hold.get("blocked_end") or hold["end"], "blocked_end"),
        "active": active,
        "expires_at": (wire.instant(hold["expires_at"], "expires_at")
                       if hold.get("expires_at") else None),
        "sequence": 0, "updated_at": now,
    }


def booking_values(booking: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": booking["id"], "kind": "booking", "therapist_id": booking["therapist_id"],
        "room": booking.get("room"), "start": wire.instant(booking["start"], "start"),
        "end": wire.instant(booking["end"], "end"),
        "blocked_end": wire.instant(booking.get("blocked_end") or booking["end"],
                                      "blocked_end"),
        "active": booking.get("status") != "cancelled", "expires_at": None,
        "sequence": int(booking.get("sequence") or 0), "updated_at": now,
    }
