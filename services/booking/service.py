"""The booking service: holds, bookings and courses; the one authority on who has which time.

Entrypoints only (those that need to know who asks take the ``caller`` first, as in every
service): each hands its arguments to the use cases (``usecases.UseCases``), which ask
availability whether the time is one the schedule offers (before any transaction is open), then
claim the time and write the change with its events in one transaction. After the commit the
outbox relay is woken to publish them.
"""

from __future__ import annotations

from typing import Any

from nameko.events import BROADCAST
from nameko.timer import timer

from clinic.access import Caller
from clinic.broker import reconnecting_event_handler
from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import rpc
from clinic.events import event_handler
from clinic.metrics import ServiceMetrics
from clinic.offer import OFFER_CHANGED
from clinic.outbox import OutboxRelay
from clinic.settings import SettingsProvider
from clinic.shutdown import ShutdownDeadline
from clinic.tracing import RequestTrace
from services.booking.gauges import booking_gauges
from services.booking.models import outbox
from services.booking.offers import AvailabilityWithOffers
from services.booking.usecases import UseCases
from services.booking.waitlist_usecases import WaitlistCases


class BookingService:
    name = "booking"

    db = Database("booking")
    clock = Clock()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    trace = RequestTrace()  # X-Request-ID in this worker's logs and outbox rows
    metrics = ServiceMetrics(booking_gauges)  # /metrics on METRICS_PORT
    events = OutboxRelay("booking", outbox)
    settings = SettingsProvider()
    # availability's RPCs (bounded by the caller's deadline), but whether a start is on offer
    # is decided here, from each therapist's offer kept in this process
    availability = AvailabilityWithOffers()

    @property
    def cases(self) -> UseCases:
        return UseCases(self.db, self.clock, self.availability, self.settings)

    @property
    def waitlist(self) -> WaitlistCases:
        return WaitlistCases(self.db, self.clock, self.availability, self.settings)

    def _published(self, answer: Any) -> Any:
        """A change was committed: its events go out now, not at the relay's next pass."""
        self.events.wake()
        return answer

    @rpc
    def ping(self) -> str:
        return "pong"

    # holds

    @rpc
    def place_hold(self, therapist_id: str, session_type: str, modality: str, start: str,
                   idempotency_key: str | None = None,
                   client_address: str | None = None) -> dict[str, Any]:
        return self._published(self.cases.place_hold(therapist_id, session_type, modality,
                                                     start, idempotency_key, client_address))

    @rpc
    def release_hold(self, caller: dict | None, hold_id: str) -> dict[str, Any]:
        return self._published(self.cases.release_hold(hold_id, Caller.from_rpc(caller)))

    @rpc
    def extend_hold(self, caller: dict | None, hold_id: str) -> dict[str, Any]:
        return self._published(self.cases.extend_hold(hold_id, Caller.from_rpc(caller)))

    @timer(interval=15)
    def expire_holds(self) -> None:
        if self.cases.expire_holds():
            self.events.wake()

    # bookings

    @rpc
    def create_booking(self, request: dict[str, Any], idempotency_key: str | None = None,
                       caller: dict | None = None,
                       client_address: str | None = None) -> dict[str, Any]:
        return self._published(self.cases.create_booking(
            request, idempotency_key, Caller.from_rpc(caller), client_address))

    @rpc
    def get_booking(self, caller: dict | None, booking_id: str) -> dict[str, Any]:
        return self.cases.get_booking(booking_id, Caller.from_rpc(caller))

    @rpc
    def cancel_booking(self, caller: dict | None, booking_id: str, reason: str | None = None,
                       idempotency_key: str | None = None) -> dict[str, Any]:
        return self._published(self.cases.cancel_booking(
            booking_id, Caller.from_rpc(caller), reason, idempotency_key))

    @rpc
    def reschedule_booking(self, caller: dict | None, booking_id: str, start: str,
                           idempotency_key: str | None = None) -> dict[str, Any]:
        return self._published(self.cases.reschedule_booking(
            booking_id, Caller.from_rpc(caller), start, idempotency_key))

    @rpc
    def mark_attendance(self, caller: dict | None, booking_id: str,
                        status: str) -> dict[str, Any]:
        return self._published(self.cases.mark_attendance(
            booking_id, Caller.from_rpc(caller), status))

    @rpc
    def sign_out(self, caller: dict | None, kind: str, id: str) -> dict[str, Any]:  # noqa: A002
        return self.cases.sign_out(kind, id, Caller.from_rpc(caller))

    @rpc
    def cancel_client_bookings(self, caller: dict | None, since: str, until: str,
                               client_address: str | None = None,
                               email: str | None = None) -> dict[str, Any]:
        return self._published(self.cases.cancel_client_bookings(
            Caller.from_rpc(caller), since, until, client_address, email))

    @rpc
    def export_client(self, caller: dict | None, email: str) -> dict[str, Any]:
        return self.cases.export_client(Caller.from_rpc(caller), email)

    @rpc
    def erase_client(self, caller: dict | None, email: str) -> dict[str, Any]:
        return self._published(self.cases.erase_client(Caller.from_rpc(caller), email))

    @rpc
    def audit_trail(self, caller: dict | None, booking_id: str | None = None,
                    course_id: str | None = None) -> list[dict[str, Any]]:
        return self.cases.audit_trail(Caller.from_rpc(caller), booking_id, course_id)

    @rpc
    def record_access(self, caller: dict | None, action: str, booking_id: str | None = None,
                      course_id: str | None = None) -> None:
        """The hook for other services' reads and changes of a booking's or course's data
        (the progress service: check-ins, progress, focus, letter) into the one audit log."""
        self.cases.record_access(Caller.from_rpc(caller), action, booking_id, course_id)

    @rpc
    def list_therapist_bookings(self, caller: dict | None, therapist_id: str,
                                from_date: str | None = None, to_date: str | None = None,
                                tz: str | None = None) -> list[dict[str, Any]]:
        return self.cases.list_therapist_bookings(therapist_id, Caller.from_rpc(caller),
                                                  from_date, to_date, tz)

    @rpc
    def feed_sessions(self, therapist_id: str) -> list[dict[str, Any]]:
        """A therapist's calendar feed, called by the gateway once a feed secret named them."""
        return self.cases.feed_sessions(therapist_id)

    @rpc
    def issue_manage_token(self, kind: str, id: str) -> str:  # noqa: A002 (the contract's name)
        return self.cases.issue_manage_token(kind, id)

    @timer(interval=3600)
    def clean_idempotency_keys(self) -> None:
        self.cases.clean_idempotency_keys()

    # courses

    @rpc
    def create_course(self, request: dict[str, Any], idempotency_key: str | None = None,
                      client_address: str | None = None) -> dict[str, Any]:
        return self._published(self.cases.create_course(request, idempotency_key,
                                                        client_address))

    @rpc
    def get_course(self, caller: dict | None, course_id: str) -> dict[str, Any]:
        return self.cases.get_course(course_id, Caller.from_rpc(caller))

    @rpc
    def cancel_course(self, caller: dict | None, course_id: str, reason: str | None = None,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        return self._published(self.cases.cancel_course(
            course_id, Caller.from_rpc(caller), reason, idempotency_key))

    # the waitlist (services/booking/waitlist.py)

    @rpc
    def join_waitlist(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.waitlist.join(body)

    @rpc
    def get_waitlist_entry(self, caller: dict | None, entry_id: str) -> dict[str, Any]:
        return self.waitlist.get(entry_id, Caller.from_rpc(caller))

    @rpc
    def leave_waitlist(self, caller: dict | None, entry_id: str) -> None:
        self._published(self.waitlist.leave(entry_id, Caller.from_rpc(caller)))

    @rpc
    def list_waitlist(self, caller: dict | None, therapist_id: str) -> list[dict[str, Any]]:
        return self.waitlist.list_for_therapist(Caller.from_rpc(caller), therapist_id)

    @rpc
    def accept_waitlist_offer(self, caller: dict | None, entry_id: str,
                              offer_id: str) -> dict[str, Any]:
        return self._published(self.waitlist.accept(entry_id, Caller.from_rpc(caller), offer_id))

    @rpc
    def decline_waitlist_offer(self, caller: dict | None, entry_id: str,
                               offer_id: str) -> dict[str, Any]:
        return self._published(self.waitlist.decline(entry_id, Caller.from_rpc(caller),
                                                     offer_id))

    @rpc
    def waitlist_contact(self, entry_id: str) -> dict[str, Any]:
        """For notifications' offer letter: the client's address and a fresh manage token."""
        return self.waitlist.contact(entry_id)

    @event_handler("booking", "booking_cancelled")
    def on_booking_cancelled(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.time_freed(payload))

    @event_handler("booking", "booking_rescheduled")
    def on_booking_rescheduled(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.time_freed(payload))

    @event_handler("booking", "hold_released")
    def on_hold_released(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.time_freed(payload))

    @event_handler("booking", "course_cancelled")
    def on_course_cancelled(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.time_freed(payload))

    @event_handler("availability", "time_off_removed")
    def on_time_off_removed(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.range_freed(payload))

    @event_handler("availability", "schedule_changed")
    def on_schedule_changed(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.range_freed(payload))

    @reconnecting_event_handler("availability", OFFER_CHANGED, handler_type=BROADCAST,
                                reliable_delivery=False)
    def forget_offer(self, payload: dict[str, Any]) -> None:
        """Availability changed what a therapist offers: every booking process drops its copy
        (a process that was away forgets all when it reconnects: ``services/booking/offers``)."""
        self.availability.cache.forget((payload.get("data") or {}).get("therapist_id"))

    @event_handler("booking", "booking_confirmed")
    def on_booking_confirmed(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.booked_elsewhere(payload))

    @event_handler("booking", "course_booked")
    def on_course_booked(self, payload: dict[str, Any]) -> None:
        self._published(self.waitlist.booked_elsewhere(payload))

    @timer(interval=5)
    def sweep_waitlist(self) -> None:
        """Lapsed offers pass on (their holds' release events), entries past until expire."""
        if self.waitlist.sweep():
            self.events.wake()
