"""The waitlist's use cases: joining, seeing and leaving an entry, offering a freed time to the
first fitting entry, accepting and declining an offer, and the sweeps (lapsed offers, entries
past ``until``, clients who booked another way). Each change is one write transaction with its
outbox events; availability is asked before a transaction opens, never inside one.

Why an offer is safe against races: the offered time is held by real ``held`` rows of
``bookings`` (``claims.claim_time`` inside the offer's transaction, the exclusion constraints on
PostgreSQL), so nobody else can book it and no second entry can be offered it; the entry row is
locked and must still be ``waiting`` (a unique partial index allows one live offer per entry);
accepting and lapsing both change the offer only while it is ``live`` (locked, then tested), so
one of them wins and the other finds it closed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic import wire
from clinic.access import MANAGE_PREFIX, Caller, new_token
from clinic.db import UnitOfWork
from clinic.errors import (
    ClinicError,
    HoldExpired,
    InvalidState,
    NotFound,
    ServiceUnavailable,
    SlotUnavailable,
    Unauthorized,
)
from clinic.settings import Settings
from clinic.wire import iso, utc
from services.booking import claims, policy, waitlist
from services.booking import waitlist_repository as entries
from services.booking.claims import Slot, claim_time, is_exclusion_violation
from services.booking.repository import emit, update_booking
from services.booking.usecases import Availability, UseCases
from services.booking.waitlist import LIVE, OFFERED, WAITING, Entry, FreedTime

log = logging.getLogger(__name__)

RANGE = timedelta(days=91)  # what one find_slots may span (92 days with both ends)
MAX_RANGE_STARTS = 500  # a freed range's starts offered per event, earliest first

Answer = dict[str, Any]


class _Gone(Exception):
    """Internal: the entry stopped waiting (offered meanwhile, left, booked) before its offer."""


@dataclass
class WaitlistCases:
    uow: UnitOfWork
    now: Callable[[], datetime]
    availability: Availability
    settings: Settings
    cases: UseCases = field(init=False)

    def __post_init__(self) -> None:
        self.cases = UseCases(self.uow, self.now, self.availability, self.settings)

    # joining, seeing, leaving

    def join(self, body: Mapping[str, Any]) -> Answer:
        now = self.now()
        values = waitlist.entry_input(body, self.settings.clinic_timezone, now.date())
        client = policy.require_client(body.get("client"))
        if values["therapist_id"]:
            self.availability.get_therapist(values["therapist_id"])  # 404 for no such therapist
        token, hashed = new_token(MANAGE_PREFIX)
        with self.uow.transaction() as session:
            row = entries.insert_entry(session, {
                **values, **client, "id": str(uuid.uuid4()), "status": WAITING,
                "joined_at": now, "updated_at": now})
            entries.insert_entry_token(session, now, hashed, row["id"])
        return {**waitlist.entry_answer(row, None), "manage_token": token}

    def get(self, entry_id: str, caller: Caller) -> Answer:
        with self.uow.reading() as session:
            row = entries.entry_row(session, entry_id)
            self._authorise(session, caller, row)
            return waitlist.entry_answer(row, entries.live_offer(session, entry_id))

    def leave(self, entry_id: str, caller: Caller) -> None:
        with self.uow.transaction() as session:
            row = entries.entry_row(session, entry_id, for_update=True)
            self._authorise(session, caller, row)
            if row["status"] in waitlist.CLOSED:
                raise InvalidState(f"This waitlist entry is {row['status']}.")
            offer = entries.live_offer(session, entry_id, for_update=True)
            if offer is not None:
                self._close(session, offer, "declined", "offer_closed")
            entries.update_entry(session, entry_id, status="left", updated_at=self.now())

    def list_for_therapist(self, caller: Caller, therapist_id: str) -> list[Answer]:
        caller.require_therapist(therapist_id)
        with self.uow.reading() as session:
            return [waitlist.entry_answer(row, entries.live_offer(session, row["id"]))
                    for row in entries.therapist_entries(session, therapist_id)]

    def contact(self, entry_id: str) -> Answer:
        """For the offer letter (notifications): the client's name and address and a fresh
        manage token for the entry; raw tokens are never stored, so each letter gets its own."""
        token, hashed = new_token(MANAGE_PREFIX)
        with self.uow.transaction() as session:
            row = entries.entry_row(session, entry_id)
            entries.insert_entry_token(session, self.now(), hashed, entry_id)
        return {"name": row["client_name"], "email": row["client_email"],
                "timezone": row["client_timezone"] or row["timezone"], "manage_token": token}

    # offering a freed time

    def time_freed(self, event: Mapping[str, Any]) -> list[str]:
        """Offer each time an event freed to the first fitting entry; the offers' ids."""
        made = []
        for freed in waitlist.freed_times(event):
            offer_id = self.offer(freed)
            if offer_id:
                made.append(offer_id)
        return made

    def offer(self, freed: FreedTime) -> str | None:
        """The first waiting entry in joining order that the time fits gets it, held.

        Entries are read a batch at a time and the read closes before availability is asked
        and before the offer's own write transaction opens."""
        now = self.now()
        if freed.start <= now:
            return None
        plans: dict[tuple[str, str, int], list[Slot] | None] = {}
        after = None
        while True:
            with self.uow.reading() as session:
                if after is None:
                    offered_before = entries.offered_this_time(session, freed.therapist_id,
                                                               freed.start)
                batch = entries.waiting_batch(session, freed.therapist_id, freed.start, after)
            for entry in waitlist.in_joining_order(map(Entry.of_row, batch), freed, now,
                                                   offered_before):
                key = (entry.session_type, entry.modality, entry.sessions)
                if key not in plans:
                    plans[key] = self._plan(freed, *key)
                slots = plans[key]
                if slots is None or not waitlist.fits(
                        entry, freed.therapist_id, [(s.start, s.end) for s in slots], now):
                    continue
                try:
                    return self._make_offer(entry.id, slots)
                except _Gone:
                    continue
                except SlotUnavailable:
                    if entry.kind == "session":
                        return None  # the time itself is taken: no one else can have it
                    plans[key] = None  # this course's weeks are not all free
            if len(batch) < entries.SCAN_BATCH:
                return None
            after = batch[-1]["position"]

    def range_freed(self, event: Mapping[str, Any]) -> list[str]:
        """Availability freed a range (time off removed) or perhaps widened the week (a new
        schedule): the therapist's free starts in it, as availability finds them for each kind
        of session someone waits for, are offered one by one, earliest first."""
        data = event.get("data") or {}
        therapist_id, now = data.get("therapist_id"), self.now()
        start = max(wire.instant(data["start"], "start"), now) if data.get("start") else now
        end = wire.instant(data["end"], "end") if data.get("end") else now + RANGE
        end = min(end, start + RANGE)
        if not therapist_id or end <= start:
            return []
        with self.uow.reading() as session:
            kinds = entries.waiting_kinds(session, therapist_id)
        starts: set[datetime] = set()
        for session_type, modality in kinds:
            try:
                found = self.availability.find_slots(
                    therapist_id, session_type, modality, start.date().isoformat(),
                    end.date().isoformat(), "UTC")
            except ServiceUnavailable:
                raise  # the event is handled again later
            except ClinicError:
                continue
            starts |= {s for s in (wire.instant(slot["start"], "start")
                                   for slot in found["slots"]) if start <= s < end}
        made = []
        for moment in sorted(starts)[:MAX_RANGE_STARTS]:
            offer_id = self.offer(FreedTime(therapist_id, moment))
            if offer_id:
                made.append(offer_id)
        return made

    def _plan(self, freed: FreedTime, session_type: str, modality: str,
              sessions: int) -> list[Slot] | None:
        """The sessions the time would be, as availability approves them, or None."""
        start = iso(freed.start)
        try:
            if sessions == 1:
                return [Slot.from_check(self.availability.check_session(
                    freed.therapist_id, session_type, modality, start))]
            planned = self.availability.check_course(freed.therapist_id, session_type, modality,
                                                     start, sessions, [])
        except ServiceUnavailable:
            raise  # availability is away: the event goes back to its queue, nothing is lost
        except ClinicError:  # not on the schedule, no such modality or type: not this time
            return None
        if planned.get("conflicts"):
            return None
        return [Slot.from_check({**planned, **s}) for s in planned["sessions"]]

    def _make_offer(self, entry_id: str, slots: list[Slot]) -> str:
        """Hold the time for the entry and tell notifications, in one transaction."""
        minutes = self.settings.waitlist_offer_minutes
        try:
            with self.uow.transaction() as session:
                now = self.now()
                row = entries.entry_row(session, entry_id, for_update=True)
                if not waitlist.waiting_at(Entry.of_row(row), now):
                    raise _Gone()
                claimed, conflicts = claims.claim_course(session, now, slots)
                if conflicts:
                    raise SlotUnavailable(claims.TAKEN)
                expires = now + timedelta(minutes=minutes)
                holds = [self.cases._insert(session, slot, room, None, status="held",
                                            expires_at=expires) for slot, room in claimed]
                for hold in holds:
                    emit(session, "hold_placed", {"hold": policy.hold_view(hold)})
                first = slots[0]
                offer = {"id": str(uuid.uuid4()), "entry_id": entry_id,
                         "therapist_id": first.therapist_id, "session_type": first.session_type,
                         "modality": first.modality, "start": first.start,
                         "starts": [iso(s.start) for s in slots], "status": LIVE,
                         "expires_at": expires, "created_at": now}
                entries.insert_offer(session, offer, [h["id"] for h in holds])
                entries.update_entry(session, entry_id, status=OFFERED, updated_at=now)
                emit(session, "waitlist_offered", waitlist.offered_event(row, offer))
        except IntegrityError as error:
            if is_exclusion_violation(error):
                raise SlotUnavailable(claims.TAKEN) from None
            if "uq_waitlist_offers_live_entry" in str(error.orig):
                raise _Gone() from None
            raise
        log.info("waitlist entry %s offered %s at %s", entry_id, offer["id"], offer["starts"][0])
        return offer["id"]

    # the client answers

    def accept(self, entry_id: str, caller: Caller, offer_id: str) -> Answer:
        """The offer's holds become the booking (or course) in one transaction, or a 409 and
        the entry keeps its place (when the offer lapsed or its time was taken)."""
        token, hashed = new_token(MANAGE_PREFIX)
        with self.uow.transaction() as session:
            now = self.now()
            row = entries.entry_row(session, entry_id, for_update=True)
            self._authorise(session, caller, row)
            offer = entries.offer_row(session, offer_id, entry_id, for_update=True)
            holds = entries.offer_holds(session, offer["id"])
            if offer["status"] != LIVE:
                raise InvalidState(f"This offer was {offer['status']}.")
            if utc(offer["expires_at"]) <= now or any(
                    h["status"] != "held" or utc(h["expires_at"]) <= now for h in holds):
                raise HoldExpired("The offer has lapsed; you keep your place on the waitlist.")
            answer = self._book(session, row, holds, hashed)
            entries.close_offer(session, offer["id"], "accepted", now)
            entries.update_entry(session, entry_id, status="booked", updated_at=now,
                                 booking_id=None if row["kind"] == "course" else answer["id"],
                                 course_id=answer["id"] if row["kind"] == "course" else None)
        return {**answer, "manage_token": token}

    def _book(self, session: Session, row: Mapping[str, Any], holds: list[Mapping[str, Any]],
              hashed: str) -> Answer:
        now = self.now()
        client = {k: row[k] for k in ("client_name", "client_email", "client_phone",
                                      "client_timezone")}
        claimed = []
        for hold in holds:
            update_booking(session, hold["id"], status="converted", updated_at=now)
            emit(session, "hold_released", {"hold": policy.hold_view(hold),
                                            "reason": "converted"})
            slot = Slot.of_row(hold)
            claimed.append((slot, claim_time(session, now, slot)))
        if row["kind"] == "course":
            return self.cases._write_course(session, {"skip_weeks": []}, claimed, hashed, None,
                                            client)
        slot, room = claimed[0]
        booking = self.cases._insert(session, slot, room, hashed, status="confirmed",
                                     hold_id=holds[0]["id"], **client)
        emit(session, "booking_confirmed", {"booking": self.cases._view(booking)})
        return policy.booking_answer(booking, self.settings.video_base_url)

    def decline(self, entry_id: str, caller: Caller, offer_id: str) -> Answer:
        """The time goes on to the next entry at once (its holds' release events); this entry
        waits on for another time."""
        with self.uow.transaction() as session:
            row = entries.entry_row(session, entry_id, for_update=True)
            self._authorise(session, caller, row)
            offer = entries.offer_row(session, offer_id, entry_id, for_update=True)
            if offer["status"] != LIVE:
                raise InvalidState(f"This offer was {offer['status']}.")
            self._close(session, offer, "declined", "declined")
            row = entries.update_entry(session, entry_id, status=WAITING, updated_at=self.now())
            return waitlist.entry_answer(row, None)

    def _close(self, session: Session, offer: Mapping[str, Any], status: str,
               reason: str) -> None:
        """Close a live offer and free what it still holds (each release is an event, and the
        events offer the time on)."""
        now = self.now()
        entries.close_offer(session, offer["id"], status, now)
        for hold in entries.offer_holds(session, offer["id"]):
            if hold["status"] == "held":
                update_booking(session, hold["id"], status="released", updated_at=now)
                emit(session, "hold_released", {"hold": policy.hold_view(hold),
                                                "reason": reason})

    # sweeps

    def sweep(self) -> int:
        """Offers past their time lapse (their holds expire, and those events pass the time
        on; the entry waits again); entries past ``until`` expire. How many changed."""
        with self.uow.transaction() as session:
            now = self.now()
            lapsed = entries.lapsing_offers(session, now)
            for offer in lapsed:
                entries.close_offer(session, offer["id"], "lapsed", now)
                for hold in entries.offer_holds(session, offer["id"]):
                    if hold["status"] == "held":
                        claims.expire(session, now, hold)
                entry = entries.entry_row(session, offer["entry_id"], for_update=True)
                if entry["status"] == OFFERED:
                    entries.update_entry(session, entry["id"], status=WAITING, updated_at=now)
            return len(lapsed) + entries.expire_entries(session, now)

    def booked_elsewhere(self, event: Mapping[str, Any]) -> int:
        """A client who booked the session type another way stops waiting for it."""
        data = event.get("data") or {}
        booked = data.get("course") or data.get("booking") or {}
        email = (booked.get("client") or {}).get("email")
        if not email or not booked.get("session_type"):
            return 0
        with self.uow.transaction() as session:
            stopped = 0
            for row in entries.client_entries(session, email, booked["session_type"]):
                if row["therapist_id"] not in (None, booked.get("therapist_id")):
                    continue
                offer = entries.live_offer(session, row["id"], for_update=True)
                if offer is not None:
                    self._close(session, offer, "refused", "offer_closed")
                entries.update_entry(session, row["id"], status="booked", updated_at=self.now())
                stopped += 1
            return stopped

    # access

    def _authorise(self, session: Session, caller: Caller, row: Mapping[str, Any]) -> None:
        """The admin, the entry's therapist, or the holder of its manage token."""
        if caller.kind == "public":
            raise Unauthorized("This needs the waitlist entry's manage token.")
        if row["therapist_id"] and caller.acts_for_therapist(row["therapist_id"]):
            return
        if caller.is_admin:
            return
        if caller.kind == "manage" and caller.token and caller.holds_token(
                entries.entry_token_hashes(session, caller.token, row["id"])):
            return
        raise NotFound("No such waitlist entry.")
