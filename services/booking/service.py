"""The booking service: holds, bookings and courses; the one authority on who has which time.

Each entrypoint asks availability whether the time is one the schedule offers (an RPC, made
before any transaction is open), then hands the answer to the ``Ledger``, which claims the time
and writes the change with its events in one transaction. After the commit the outbox relay is
woken to publish them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from clinic.access import Caller
from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import InvalidRequest, rpc
from clinic.outbox import OutboxRelay
from clinic.rpc import ServiceRpc
from clinic.settings import Settings
from clinic.shutdown import ShutdownDeadline
from services.booking import policy
from services.booking.ledger import Ledger, Slot, reschedule_request
from services.booking.models import outbox

DEFAULT_LIST_DAYS = 90
FEED_DAYS_BACK = 90  # API.md: a feed shows sessions from 90 days back


class BookingSettings(DependencyProvider):
    """The settings the ledger needs, read once from the config."""

    def setup(self) -> None:
        config = self.container.config
        settings = Settings.from_config(config)
        self.values = {
            "hold_minutes": settings.hold_minutes,
            "cancellation_notice_hours": settings.cancellation_notice_hours,
            "video_base": str(config.get("CLINIC_VIDEO_BASE_URL") or "").strip(),
            "clinic_timezone": settings.clinic_timezone,
        }

    def get_dependency(self, worker_ctx) -> dict[str, Any]:
        return self.values


class BookingService:
    name = "booking"

    db = Database("booking")
    clock = Clock()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    events = OutboxRelay("booking", outbox)
    settings = BookingSettings()
    availability = ServiceRpc("availability")  # bounded by the caller's deadline

    def _ledger(self) -> Ledger:
        return Ledger(self.db, self.clock, hold_minutes=self.settings["hold_minutes"],
                      cancellation_notice_hours=self.settings["cancellation_notice_hours"],
                      video_base=self.settings["video_base"])

    def _check_session(self, therapist_id: str, session_type: str, modality: str,
                       start: str) -> Slot:
        policy.parse_instant(start, "start")
        return Slot.from_check(self.availability.check_session(
            therapist_id, session_type, modality, start))

    @rpc
    def ping(self) -> str:
        return "pong"

    # holds

    @rpc
    def place_hold(self, therapist_id: str, session_type: str, modality: str, start: str,
                   idempotency_key: str | None = None) -> dict[str, Any]:
        ledger = self._ledger()
        request = {"therapist_id": therapist_id, "session_type": session_type,
                   "modality": modality, "start": start}
        if idempotency_key:  # a repeat: the time is its own hold's now
            replayed = ledger.replay("holds", idempotency_key, request)
            if replayed is not None:
                return replayed
        slot = self._check_session(therapist_id, session_type, modality, start)
        hold = ledger.place_hold(slot, idempotency_key, request)
        self.events.wake()
        return hold

    @rpc
    def release_hold(self, hold_id: str, caller: dict | None = None) -> dict[str, Any]:
        hold = self._ledger().release_hold(hold_id, Caller.from_rpc(caller))
        self.events.wake()
        return hold

    @rpc
    def extend_hold(self, hold_id: str, caller: dict | None = None) -> dict[str, Any]:
        hold = self._ledger().extend_hold(hold_id, Caller.from_rpc(caller))
        self.events.wake()
        return hold

    @timer(interval=15)
    def expire_holds(self) -> None:
        if self._ledger().expire_holds():
            self.events.wake()

    # bookings

    @rpc
    def create_booking(self, request: dict[str, Any],
                       idempotency_key: str | None = None) -> dict[str, Any]:
        ledger = self._ledger()
        if idempotency_key:
            replayed = ledger.replay("bookings", idempotency_key, request)
            if replayed is not None:
                return replayed
        slot = None
        if not request.get("hold_id"):  # a live hold was checked when it was placed
            slot = self._check_session(request.get("therapist_id"), request.get("session_type"),
                                       request.get("modality"), request.get("start"))
        booking = ledger.create_booking(request, slot, idempotency_key)
        self.events.wake()
        return booking

    @rpc
    def get_booking(self, booking_id: str, caller: dict | None = None) -> dict[str, Any]:
        return self._ledger().get_booking(booking_id, Caller.from_rpc(caller))

    @rpc
    def cancel_booking(self, booking_id: str, caller: dict | None = None,
                       reason: str | None = None,
                       idempotency_key: str | None = None) -> dict[str, Any]:
        booking = self._ledger().cancel_booking(booking_id, Caller.from_rpc(caller), reason,
                                                idempotency_key)
        self.events.wake()
        return booking

    @rpc
    def reschedule_booking(self, booking_id: str, caller: dict | None, start: str,
                           idempotency_key: str | None = None) -> dict[str, Any]:
        ledger, who = self._ledger(), Caller.from_rpc(caller)
        current = ledger.get_booking(booking_id, who)  # authorises before asking availability
        if idempotency_key:  # a repeat: the time is its own now, availability would refuse it
            replayed = ledger.replay("reschedule_booking", idempotency_key, reschedule_request(
                booking_id, policy.parse_instant(start, "start")))
            if replayed is not None:
                return replayed
        slot = self._check_session(current["therapist_id"], current["session_type"],
                                   current["modality"], start)
        booking = ledger.reschedule_booking(booking_id, who, slot, idempotency_key)
        self.events.wake()
        return booking

    @rpc
    def mark_attendance(self, booking_id: str, caller: dict | None,
                        status: str) -> dict[str, Any]:
        booking = self._ledger().mark_attendance(booking_id, Caller.from_rpc(caller), status)
        self.events.wake()
        return booking

    @rpc
    def list_therapist_bookings(self, therapist_id: str, caller: dict | None = None,
                                from_date: str | None = None, to_date: str | None = None,
                                tz: str | None = None) -> list[dict[str, Any]]:
        who = Caller.from_rpc(caller)
        who.require_therapist(therapist_id)
        if not tz:
            therapist = self.availability.get_therapist(therapist_id)
            tz = therapist.get("timezone") or self.settings["clinic_timezone"]
        zone = policy.zone(tz)
        first = _date(from_date, "from") if from_date else self.clock().astimezone(zone).date()
        try:
            last = _date(to_date, "to") if to_date else first + timedelta(days=DEFAULT_LIST_DAYS)
        except OverflowError:
            raise InvalidRequest.field("from", "The date is out of range.") from None
        start, end = policy.day_range(first, last, zone)  # a 400 at the calendar's edge
        return self._ledger().list_therapist_bookings(therapist_id, who, start, end)

    @rpc
    def feed_sessions(self, therapist_id: str) -> list[dict[str, Any]]:
        """A therapist's calendar feed: from 90 days back to the last booked session.

        Called by the gateway once a feed secret has named the therapist; the answer is
        privacy-safe by construction (``policy.feed_view``).
        """
        since = self.clock() - timedelta(days=FEED_DAYS_BACK)
        return self._ledger().feed_sessions(therapist_id, since)

    @rpc
    def issue_manage_token(self, kind: str, id: str) -> str:  # noqa: A002 (the contract's name)
        return self._ledger().issue_manage_token(kind, id)

    @timer(interval=3600)
    def clean_idempotency_keys(self) -> None:
        self._ledger().clean_idempotency_keys()

    # courses

    @rpc
    def create_course(self, request: dict[str, Any],
                      idempotency_key: str | None = None) -> dict[str, Any]:
        ledger = self._ledger()
        if idempotency_key:
            replayed = ledger.replay("courses", idempotency_key, request)
            if replayed is not None:
                return replayed
        policy.parse_instant(request.get("first_start"), "first_start")
        planned = self.availability.check_course(
            request.get("therapist_id"), request.get("session_type"), request.get("modality"),
            request.get("first_start"), request.get("sessions", 16),
            list(request.get("skip_weeks") or []))
        course = ledger.create_course(request, planned, idempotency_key)
        self.events.wake()
        return course

    @rpc
    def get_course(self, course_id: str, caller: dict | None = None) -> dict[str, Any]:
        return self._ledger().get_course(course_id, Caller.from_rpc(caller))

    @rpc
    def cancel_course(self, course_id: str, caller: dict | None = None,
                      reason: str | None = None,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        course = self._ledger().cancel_course(course_id, Caller.from_rpc(caller), reason,
                                              idempotency_key)
        self.events.wake()
        return course


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidRequest.field(field, "Use a date as YYYY-MM-DD.") from None
