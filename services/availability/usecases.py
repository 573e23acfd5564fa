"""What each RPC method of the availability service does, given a database session and "now".

The service class only opens the transaction and calls one of these; they raise
``clinic.errors`` for the gateway to turn into HTTP statuses. Instants cross the wire as ISO 8601
strings with an offset, dates as YYYY-MM-DD.
"""

from __future__ import annotations

import dataclasses
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinic import offer, wire
from clinic.access import FEED_PREFIX, THERAPIST_PREFIX, Caller, new_token, token_hash
from clinic.db import reads, writes
from clinic.errors import Conflict, InvalidRequest, NotFound
from clinic.events import Event, first_delivery
from clinic.outbox import record
from clinic.slots import Interval, RuleGrid
from clinic.slots import find_slots as engine_find_slots
from services.availability import inputs, models
from services.availability import repository as repo
from services.availability.course_planner import course_conflicts, course_starts
from services.availability.course_planner import plan_course_options as plan_options
from services.availability.models import (
    Room,
    ScheduleRow,
    SessionType,
    Therapist,
    TimeOff,
    outbox,
)
from services.availability.search_cache import (
    SPARE_HORIZON_DAYS,
    Entry,
    SearchCache,
    SlotsEntry,
    course_until,
    next_grid_start,
    request_key,
    room_scope,
    slots_until,
)

WEEK = timedelta(days=7)

# Computed searches, one cache per database engine (tests open many databases in one process);
# 256 entries of at most a few hundred slots each: tens of MB at worst.
_CACHES: weakref.WeakKeyDictionary[Any, SearchCache] = weakref.WeakKeyDictionary()


def _cache(session: Session) -> SearchCache:
    bind = session.get_bind()
    found = _CACHES.get(bind)
    if found is None:
        found = _CACHES[bind] = SearchCache()
    return found


def _caller(data: dict[str, Any] | None) -> Caller:
    return Caller.from_rpc(data)


def _conflict_exists(what: str, key: str) -> Conflict:
    return Conflict(f"A {what} with id {key!r} already exists.", {"id": key}, "already_exists")


# --- session types and rooms -------------------------------------------------------------------


def session_type_dict(row: SessionType) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "duration_minutes": row.duration_minutes}


@reads
def list_session_types(session: Session) -> list[dict[str, Any]]:
    return [session_type_dict(row)
            for row in session.scalars(select(SessionType).order_by(SessionType.id))]


@writes
def create_session_type(session: Session, caller: dict | None,
                        data: dict[str, Any]) -> dict[str, Any]:
    _caller(caller).require_admin()
    fields = inputs.new_session_type(data)
    if session.get(SessionType, fields["id"]) is not None:
        raise _conflict_exists("session type", fields["id"])
    row = SessionType(**fields)
    session.add(row)
    repo.offer_changed(session, None)
    return session_type_dict(row)


@reads
def list_rooms(session: Session) -> list[dict[str, Any]]:
    return [{"id": row.id, "name": row.name}
            for row in session.scalars(select(Room).order_by(Room.id))]


@writes
def create_room(session: Session, caller: dict | None, data: dict[str, Any]) -> dict[str, Any]:
    _caller(caller).require_admin()
    fields = inputs.new_room(data)
    if session.get(Room, fields["id"]) is not None:
        raise _conflict_exists("room", fields["id"])
    session.add(Room(**fields))
    repo.offer_changed(session, None)
    repo.touch(session, [room_scope(fields["id"])])  # in-person searches now see one more room
    return fields


# --- therapists and their tokens ---------------------------------------------------------------


@writes
def create_therapist(session: Session, caller: dict | None, data: dict[str, Any],
                     clinic_timezone: str, now: datetime) -> dict[str, Any]:
    _caller(caller).require_admin()
    fields = inputs.new_therapist(data, clinic_timezone)
    if fields["id"] is None:
        fields["id"] = repo.free_therapist_id(session, fields["name"])
    elif session.get(Therapist, fields["id"]) is not None:
        raise _conflict_exists("therapist", fields["id"])
    row = Therapist(**fields, created_at=now)
    session.add(row)
    repo.touch_therapist(session, row.id)
    # The admin who created the therapist may see the email; nobody else is shown it.
    return {**repo.public_therapist(row), "email": row.email}


@reads
def list_therapists(session: Session, specialty: str | None = None,
                    modality: str | None = None) -> list[dict[str, Any]]:
    if modality:
        inputs.modality(modality)
    return [repo.public_therapist(row) for row in repo.therapists(session, specialty, modality)]


@reads
def get_therapist(session: Session, therapist_id: str) -> dict[str, Any]:
    return repo.public_therapist(repo.therapist(session, therapist_id))


@reads
def get_therapist_contact(session: Session, therapist_id: str) -> dict[str, Any]:
    row = repo.therapist(session, therapist_id)
    return {"id": row.id, "name": row.name, "email": row.email, "timezone": row.timezone}


@writes
def issue_therapist_token(session: Session, caller: dict | None, therapist_id: str,
                          now: datetime) -> str:
    _caller(caller).require_admin()
    repo.therapist(session, therapist_id)
    token, digest = new_token(THERAPIST_PREFIX)
    session.add(models.TherapistToken(token_hash=digest, therapist_id=therapist_id, created_at=now))
    return token


@writes
def revoke_therapist_tokens(session: Session, caller: dict | None, therapist_id: str) -> int:
    _caller(caller).require_admin()
    repo.therapist(session, therapist_id)
    result = session.execute(delete(models.TherapistToken)
                             .where(models.TherapistToken.therapist_id == therapist_id))
    return result.rowcount


@reads
def authenticate_therapist(session: Session, token: Any) -> str | None:
    if not isinstance(token, str) or not token.startswith(THERAPIST_PREFIX):
        return None
    # Looked up by its SHA-256: an index lookup on a hash leaks nothing usable about the token.
    return repo.therapist_for_token(session, token_hash(token))


# --- calendar feeds ----------------------------------------------------------------------------


@writes
def calendar_feed(session: Session, caller: dict | None, therapist_id: str,
                  now: datetime) -> str:
    """The therapist's feed secret, made on first asking."""
    _caller(caller).require_therapist(therapist_id)
    repo.therapist(session, therapist_id)
    return repo.calendar_feed(session, therapist_id, now).secret


@writes
def rotate_calendar_feed(session: Session, caller: dict | None, therapist_id: str,
                         now: datetime) -> str:
    """A new secret; the old one stops working as this transaction commits."""
    _caller(caller).require_therapist(therapist_id)
    repo.therapist(session, therapist_id)
    feed = repo.calendar_feed(session, therapist_id, now)
    feed.secret, feed.secret_hash = new_token(FEED_PREFIX)
    feed.rotated_at = now
    return feed.secret


@reads
def feed_owner(session: Session, secret: Any) -> dict[str, Any] | None:
    """The therapist whose feed this secret opens, or None."""
    if not isinstance(secret, str) or not secret.startswith(FEED_PREFIX):
        return None
    row = repo.therapist_for_feed(session, token_hash(secret))
    return None if row is None else repo.public_therapist(row)


# --- schedules and time off --------------------------------------------------------------------


@writes
def put_schedule(session: Session, caller: dict | None, therapist_id: str,
                 data: dict[str, Any], now: datetime) -> dict[str, Any]:
    _caller(caller).require_therapist(therapist_id)
    therapist = repo.therapist(session, therapist_id)
    checked = inputs.schedule_input(data, therapist.timezone)
    row = repo.schedule_row(session, therapist_id)
    if row is None:
        row = ScheduleRow(therapist_id=therapist_id)
        session.add(row)
    for name, value in vars(checked).items():
        setattr(row, name, value)
    row.updated_at = now
    repo.therapist_offer_changed(session, therapist_id)
    # The booking service's waitlist looks for times the new week opened (ids only).
    record(session, outbox, Event("schedule_changed", {"therapist_id": therapist_id},
                                  "availability"))
    return repo.schedule_dict(row)


@reads
def get_schedule(session: Session, therapist_id: str) -> dict[str, Any]:
    therapist = repo.therapist(session, therapist_id)
    row = repo.schedule_row(session, therapist_id)
    if row is None:  # not set yet: an empty week with the defaults
        return {"timezone": therapist.timezone, "weekly": [], **inputs.SCHEDULE_DEFAULTS}
    return repo.schedule_dict(row)


@writes
def add_time_off(session: Session, caller: dict | None, therapist_id: str,
                 data: dict[str, Any]) -> dict[str, Any]:
    _caller(caller).require_therapist(therapist_id)
    repo.therapist(session, therapist_id)
    start, end, reason = inputs.time_off_input(data)
    row = TimeOff(id=uuid.uuid4().hex, therapist_id=therapist_id, start=start, end=end,
                  reason=reason)
    session.add(row)
    repo.therapist_offer_changed(session, therapist_id)
    return repo.time_off_dict(row)


@reads
def list_time_off(session: Session, caller: dict | None, therapist_id: str) -> list[dict]:
    _caller(caller).require_therapist(therapist_id)
    repo.therapist(session, therapist_id)
    rows = session.scalars(select(TimeOff).where(TimeOff.therapist_id == therapist_id)
                           .order_by(TimeOff.start))
    return [repo.time_off_dict(row) for row in rows]


@writes
def delete_time_off(session: Session, caller: dict | None, therapist_id: str,
                    time_off_id: str) -> None:
    _caller(caller).require_therapist(therapist_id)
    repo.therapist(session, therapist_id)
    row = session.get(TimeOff, time_off_id) if wire.clean_key(time_off_id) else None
    if row is None or row.therapist_id != therapist_id:
        raise NotFound(f"No time off {time_off_id!r} for this therapist.")
    # The time it covered may be free now: the booking service's waitlist offers it on.
    record(session, outbox, Event("time_off_removed", {
        "therapist_id": therapist_id, "start": wire.iso(row.start), "end": wire.iso(row.end)},
        "availability"))
    session.delete(row)
    repo.therapist_offer_changed(session, therapist_id)


# --- finding a time ----------------------------------------------------------------------------


def _request(session: Session, therapist_id: str, session_type: Any, modality: Any):
    """The therapist, its schedule row, the session's length and the checked modality."""
    therapist, schedule, duration = repo.therapist_with_schedule(session, therapist_id,
                                                                 session_type)
    return therapist, schedule, duration, inputs.modality(modality)


@reads
def find_slots(session: Session, now: datetime, therapist_id: str, session_type: Any,
               modality: Any, from_date: Any, to_date: Any,
               tz: str | None = None) -> dict[str, Any]:
    """Free slots in the window; a search computed earlier is reused while it still holds
    (``search_cache``): the stamps are read first, so a change committed after them is seen by
    the next search, never hidden under them."""
    key = request_key("slots", therapist_id, session_type, modality, from_date, to_date, tz)
    stamp = repo.search_stamp(session, therapist_id, modality == "in_person")
    cache = _cache(session)
    cached = cache.get(key, stamp, now)
    if cached is not None:
        return cached.answer(now)
    therapist, row, duration, modality = _request(session, therapist_id, session_type, modality)
    zone = wire.zone(tz or therapist.timezone)
    window = inputs.date_window(from_date, to_date, zone)
    if row is None:
        return {"slots": [], "timezone": zone.key}
    schedule = repo.engine_schedule(row)
    notice = timedelta(hours=schedule.min_notice_hours)
    horizon = timedelta(days=schedule.horizon_days)
    # Computed a day past the horizon, then cut at ``now``'s horizon by each answer: the entry
    # serves as the horizon moves on (SlotsEntry).
    spare = dataclasses.replace(schedule, horizon_days=schedule.horizon_days + SPARE_HORIZON_DAYS)
    computed_until = now + timedelta(days=spare.horizon_days)
    # Only the part of the window between the notice and the horizon can hold a slot.
    lower = max(window.start, now + notice)
    upper = min(window.end, computed_until + timedelta(minutes=1))
    if lower >= upper:
        return {"slots": [], "timezone": zone.key}
    searched = Interval(lower, upper)
    taken, lapses = repo.calendar_and_lapse(session, therapist_id, spare, modality, searched,
                                            duration, now)
    slots = engine_find_slots(spare, taken, modality=modality, duration=duration,
                              window=searched, now=now)
    found = SlotsEntry(
        starts=tuple(s.start for s in slots),
        slots=tuple({"start": wire.iso(s.start, zone), "end": wire.iso(s.end, zone)}
                    for s in slots),
        timezone=zone.key, min_notice=notice, horizon=horizon)
    complete_until = None if window.end <= computed_until else computed_until
    cache.put(key, Entry(stamp, slots_until(horizon, complete_until, lapses), found))
    return found.answer(now)


@reads
def course_options(session: Session, now: datetime, therapist_id: str, session_type: Any,
                   modality: Any, sessions: Any = 16, from_date: Any = None,
                   tz: str | None = None, skip_weeks: Any = None) -> dict[str, Any]:
    """Weekly times the whole course fits; reused, as slots are, while the stamps hold and the
    notice has not passed the next grid start (``search_cache.course_until``)."""
    key = request_key("course", therapist_id, session_type, modality, sessions, from_date, tz,
                      skip_weeks)
    stamp = repo.search_stamp(session, therapist_id, modality == "in_person")
    cache = _cache(session)
    cached = cache.get(key, stamp, now)
    # Without ``from`` the course starts from today in the caller's zone: a new day, a new key.
    if cached is not None and (from_date is not None
                               or cached["today"] == now.astimezone(cached["zone"]).date()):
        return cached["answer"]
    therapist, row, duration, modality = _request(session, therapist_id, session_type, modality)
    count = inputs.sessions_count(sessions)
    zone = wire.zone(tz or therapist.timezone)
    first_day = wire.day(from_date, "from") if from_date is not None else (
        now.astimezone(zone).date())
    skipped = inputs.skip_dates(skip_weeks)
    if row is None:
        return {"options": [], "timezone": therapist.timezone}
    schedule = repo.engine_schedule(row)
    schedule_zone = wire.zone(schedule.timezone, "timezone")
    # ``from`` is read in the caller's zone; the planner counts days in the schedule's.
    not_before = inputs.local_midnight(first_day, zone)
    start_day = not_before.astimezone(schedule_zone).date()
    # Every option's first session lies within a week (plus skipped weeks) of the later of
    # ``from`` and the notice; its last one that many course weeks on.
    notice = timedelta(hours=schedule.min_notice_hours)
    first = max(not_before, now + notice) - timedelta(days=2)
    span = WEEK * (count + 2 * len(skipped) + 2)
    horizon_end = now + timedelta(days=schedule.horizon_days)
    last = min(first + span, horizon_end + timedelta(days=1))
    if last <= first:
        return {"options": [], "timezone": schedule.timezone}
    taken, lapses = repo.calendar_and_lapse(session, therapist_id, schedule, modality,
                                            Interval(first, last), duration, now)
    try:
        options = plan_options(schedule, taken, modality=modality, duration=duration,
                               sessions=count, from_date=start_day, skip_weeks=skipped, now=now)
    except ValueError as error:
        raise InvalidRequest.field("skip_weeks", str(error)) from None
    answer = {"timezone": schedule.timezone, "options": [
        {"weekday": option.weekday, "local_time": option.local_time,
         "sessions": [wire.iso(s.start, zone) for s in option.sessions]}
        for option in options if option.sessions[0].start >= not_before]}
    # Reused only while the horizon cannot have cut a course (it would let more in as it moves).
    if first + span <= horizon_end:
        until = course_until(notice, next_grid_start(RuleGrid(schedule, modality), now + notice),
                             lapses)
        cache.put(key, Entry(stamp, until, {"answer": answer, "zone": zone, "today": first_day}))
    return answer


def _booking_facts(therapist, duration: timedelta, schedule, modality: str,
                   rooms: list[str]) -> dict[str, Any]:
    return {"therapist_id": therapist.id, "modality": modality,
            "duration_minutes": int(duration.total_seconds() // 60),
            "buffer_minutes": schedule.buffer_minutes if schedule else 0,
            "rooms": rooms if modality == "in_person" else [],
            "timezone": schedule.timezone if schedule else therapist.timezone}


@reads
def check_session(session: Session, now: datetime, therapist_id: str, session_type: Any,
                  modality: Any, start: Any) -> dict[str, Any]:
    """Is ``start`` on offer, ignoring bookings and holds (the booking service checks those)?
    Decided by ``clinic.offer.check_session``, as the booking service decides it alone."""
    therapist, row, duration, modality = _request(session, therapist_id, session_type, modality)
    begins = wire.instant(start, "start")
    reach = duration + timedelta(minutes=(row.buffer_minutes if row else 0) + 1)
    found = repo.offer(session, therapist, row, {session_type: duration // timedelta(minutes=1)},
                       Interval(begins - reach, begins + reach), rooms=modality == "in_person")
    return offer.check_session(found, session_type, modality, start, now)


@reads
def therapist_offer(session: Session, now: datetime, therapist_id: str) -> dict[str, Any]:
    """Everything booking needs to check any start of this therapist's on its own, from a day
    back to a day past the horizon (``clinic.offer``); ``offer_changed`` says when it is stale."""
    therapist = repo.therapist(session, therapist_id)
    row = repo.schedule_row(session, therapist_id)
    ahead = timedelta(days=(row.horizon_days if row else 0) + 1)
    covers = Interval(now - timedelta(days=1), now + ahead)
    return repo.offer(session, therapist, row, repo.session_lengths(session), covers).to_wire()


@reads
def check_course(session: Session, now: datetime, therapist_id: str, session_type: Any,
                 modality: Any, first_start: Any, sessions: Any = 16,
                 skip_weeks: Any = None) -> dict[str, Any]:
    """The course's weekly sessions and those the schedule does not offer (busy ignored)."""
    therapist, row, duration, modality = _request(session, therapist_id, session_type, modality)
    begins = wire.instant(first_start, "first_start")
    count = inputs.sessions_count(sessions)
    skipped = inputs.skip_dates(skip_weeks)
    schedule = repo.engine_schedule(row) if row else None
    try:
        starts = course_starts(schedule.timezone if schedule else therapist.timezone, begins,
                               count, skipped)
    except ValueError as error:
        raise InvalidRequest.field("first_start", str(error)) from None
    if schedule is None:
        conflicts, rooms = starts, []
    else:
        window = Interval(starts[0], starts[-1] + timedelta(minutes=1))
        taken = repo.calendar(session, therapist_id, schedule, modality, window, duration, now,
                              with_busy=False)
        conflicts = course_conflicts(schedule, taken, modality=modality, duration=duration,
                                     first_start=begins, sessions=count, skip_weeks=skipped,
                                     now=now)
        rooms = list(taken.rooms)
    return {**_booking_facts(therapist, duration, schedule, modality, rooms),
            "session_type": session_type,
            "sessions": [{"start": wire.iso(s), "end": wire.iso(s + duration)}
                         for s in starts],
            "conflicts": [wire.iso(s) for s in conflicts]}


# --- busy times from booking events ------------------------------------------------------------


@writes
def apply_event(session: Session, payload: dict[str, Any],
                change: Callable[[Session, dict[str, Any], datetime], set[str]],
                now: datetime) -> None:
    """One booking event, once: its id is recorded in the transaction that applies it."""
    if first_delivery(session, models.processed_events, payload["id"]):
        # Searches computed from the old rows stop being reused as this commits.
        repo.touch(session, change(session, payload["data"], now))


def on_hold_placed(session: Session, data: dict[str, Any], now: datetime) -> set[str]:
    return repo.record_busy(session, repo.hold_values(data["hold"], active=True, now=now))


def on_hold_released(session: Session, data: dict[str, Any], now: datetime) -> set[str]:
    # Recorded even if the placement has not arrived yet: the tombstone keeps it from counting.
    return repo.record_busy(session, repo.hold_values(data["hold"], active=False, now=now))


def on_booking_changed(session: Session, data: dict[str, Any], now: datetime) -> set[str]:
    """booking_confirmed, _rescheduled, _cancelled and attendance_marked: its latest state."""
    return repo.record_busy(session, repo.booking_values(data["booking"], now))


def on_course_booked(session: Session, data: dict[str, Any], now: datetime) -> set[str]:
    scopes: set[str] = set()
    for booking in data["course"]["sessions"]:
        scopes |= repo.record_busy(session, repo.booking_values(booking, now))
    return scopes


def on_course_cancelled(session: Session, data: dict[str, Any], now: datetime) -> set[str]:
    scopes: set[str] = set()
    for booking in data.get("cancelled", []):
        scopes |= repo.record_busy(session, repo.booking_values(booking, now))
    return scopes
