"""Use cases of outside calendars: link, read, unlink, and store what a fetch found.

The fetch itself (network, seconds) runs outside any transaction (see ``outside_poller``); these
functions each run inside one the caller opened, and are quick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from clinic import wire
from clinic.access import Caller
from clinic.errors import InvalidRequest, NotFound
from clinic.events import Event
from clinic.outbox import record
from services.availability import inputs
from services.availability import outside_repository as outside
from services.availability import repository as repo
from services.availability.calendar_fetch import FetchLimits, FetchRefused, check_link
from services.availability.models import OutsideCalendar, outbox
from services.availability.outside_calendar import BusySpan, clashes

# Busy times are read from a day back (an event running into today) to the horizon and a day.
MARGIN = timedelta(days=1)
# Re-read the whole feed (no conditional GET) once the stored expansion falls this short of
# the horizon: a 304 keeps the old expansion, which does not reach as far as time moves on.
REEXPAND_AFTER = timedelta(days=1)
CONFLICT_EVENT = "outside_conflict_found"


def _iso(moment: datetime | None) -> str | None:
    return wire.iso(moment) if moment is not None else None


def checked_url(data: Any, limits: FetchLimits) -> str:
    """The address of a link request, refused (400) unless it may be fetched."""
    if not isinstance(data, dict) or set(data) != {"url"}:
        extra = sorted(set(data) - {"url"}) if isinstance(data, dict) else []
        raise InvalidRequest.field(extra[0] if extra else "url",
                                   "Unknown field." if extra else "Give the calendar's url.")
    try:
        return check_link(data["url"], allow_private=limits.allow_private,
                          trusted=limits.trusted)
    except FetchRefused as refusal:
        raise InvalidRequest.field("url", str(refusal)) from None


def require_owner(session: Session, caller: dict | None, therapist_id: str) -> None:
    """That therapist or the admin (else 401/403), and the therapist exists (else 404)."""
    Caller.from_rpc(caller).require_therapist(therapist_id)
    repo.therapist(session, therapist_id)


def link(session: Session, caller: dict | None, therapist_id: str, url: str,
         now: datetime) -> dict[str, Any]:
    require_owner(session, caller, therapist_id)
    row = outside.linked(session, therapist_id, lock=True)
    if row is None:
        row = OutsideCalendar(therapist_id=therapist_id, generation=0, busy_count=0)
        session.add(row)
    elif row.url != url:
        outside.forget(session, therapist_id)  # another calendar: the old one's times go
        row.busy_count = 0
        row.last_synced_at = row.expanded_until = None
    row.url, row.linked_at, row.status = url, now, "pending"
    row.generation += 1
    row.etag = row.last_modified = row.last_error = row.last_attempt_at = None
    return {"url": url, "status": "pending"}


def status(session: Session, caller: dict | None, therapist_id: str) -> dict[str, Any]:
    row = _linked_for(session, caller, therapist_id)
    return {"url": row.url, "status": row.status, "last_synced_at": _iso(row.last_synced_at),
            "last_error": row.last_error, "busy_count": row.busy_count,
            "conflicts": [{"booking_id": c.booking_id, "start": _iso(c.start),
                           "end": _iso(c.end), "busy_start": _iso(c.busy_start),
                           "busy_end": _iso(c.busy_end)}
                          for c in outside.conflicts(session, therapist_id)]}


def unlink(session: Session, caller: dict | None, therapist_id: str) -> None:
    """Idempotent, as a DELETE is: a therapist with nothing linked is already unlinked."""
    require_owner(session, caller, therapist_id)
    row = outside.linked(session, therapist_id)
    if row is not None:
        outside.forget(session, therapist_id)
        session.delete(row)


def busy_times(session: Session, caller: dict | None, therapist_id: str, from_date: Any,
               to_date: Any, tz: str | None = None) -> dict[str, Any]:
    """The busy spans found, for the therapist's own week grid: times only, no titles."""
    require_owner(session, caller, therapist_id)
    therapist = repo.therapist(session, therapist_id)
    zone = wire.zone(tz or therapist.timezone)
    window = inputs.date_window(from_date, to_date, zone)
    spans = outside.busy(session, therapist_id, window.start, window.end)
    return {"timezone": zone.key, "linked": outside.linked(session, therapist_id) is not None,
            "busy": [{"start": wire.iso(s.start, zone), "end": wire.iso(s.end, zone)}
                     for s in spans]}


def _linked_for(session: Session, caller: dict | None, therapist_id: str) -> OutsideCalendar:
    require_owner(session, caller, therapist_id)
    row = outside.linked(session, therapist_id)
    if row is None:
        raise NotFound("This therapist has no outside calendar linked.")
    return row


# --- polling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchJob:
    """What one fetch needs, read in a short transaction before the network is touched."""

    therapist_id: str
    url: str
    generation: int
    etag: str | None
    last_modified: str | None
    zone: str
    window_start: datetime
    window_end: datetime


def claim_job(session: Session, therapist_id: str, now: datetime, poll: timedelta,
              *, force: bool = False) -> FetchJob | None:
    """The fetch to run for this therapist now, or None (another process has it, or unlinked)."""
    row = outside.linked(session, therapist_id)
    if row is None or not (force or outside.claim(session, therapist_id, now, poll)):
        return None
    row.last_attempt_at = now
    zone, horizon_days = outside.zone_and_horizon(session, therapist_id)
    window_end = now + timedelta(days=horizon_days) + MARGIN
    whole = row.expanded_until is None or row.expanded_until < window_end - REEXPAND_AFTER
    return FetchJob(therapist_id, row.url, row.generation, None if whole else row.etag,
                    None if whole else row.last_modified, zone, now - MARGIN, window_end)


def store_failure(session: Session, job: FetchJob, error: str) -> None:
    """A failing feed keeps its last good busy times; its status says what went wrong."""
    row = _current(session, job)
    if row is not None:
        row.status, row.last_error = "failing", error


def store_success(session: Session, job: FetchJob, spans: list[BusySpan] | None,
                  etag: str | None, last_modified: str | None, now: datetime) -> int:
    """Store the spans (None: 304, the stored copy stands), flag bookings they now overlap.

    Returns how many bookings were newly flagged (each with its event in the outbox).
    """
    row = _current(session, job)
    if row is None:
        return 0
    if spans is not None:
        outside.replace_busy(session, job.therapist_id, spans)
        row.busy_count, row.expanded_until = len(spans), job.window_end
    row.etag, row.last_modified = etag, last_modified
    row.status, row.last_error, row.last_synced_at = "ok", None, now
    found = clashes(outside.future_bookings(session, job.therapist_id, now),
                    spans if spans is not None else outside.busy(session, job.therapist_id))
    added = outside.replace_conflicts(session, job.therapist_id, found, now)
    for conflict in added:
        # Ids and times only: the notifications service looks up the rest.
        record(session, outbox, Event(CONFLICT_EVENT, {
            "therapist_id": job.therapist_id, "booking_id": conflict.booking_id,
            "start": wire.iso(conflict.start), "end": wire.iso(conflict.end),
            "busy_start": wire.iso(conflict.busy_start),
            "busy_end": wire.iso(conflict.busy_end)}, "availability"))
    return len(added)


def _current(session: Session, job: FetchJob) -> OutsideCalendar | None:
    """The calendar row, locked, if it still is the address this job fetched."""
    row = outside.linked(session, job.therapist_id, lock=True)
    return row if row is not None and row.generation == job.generation else None
