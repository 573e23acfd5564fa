"""The availability service: therapists, schedules, time off; finds free slots and course times.

Entrypoints only: each delegates to a use case (``usecases``), which owns its transaction. Busy
times come from the booking service's events; the booking service stays the authority on who
has which time.
"""

from __future__ import annotations

from typing import Any

from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import rpc
from clinic.events import event_handler
from clinic.metrics import ServiceMetrics
from clinic.outbox import OutboxRelay
from clinic.settings import SettingsProvider
from clinic.shutdown import ShutdownDeadline
from clinic.tracing import RequestTrace
from services.availability import outside_usecases as outside
from services.availability import usecases as ops
from services.availability.models import outbox
from services.availability.outside_poller import OutsideCalendars, OutsidePollTimer


class AvailabilityService:
    name = "availability"

    db = Database("availability")
    clock = Clock()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    trace = RequestTrace()  # X-Request-ID in this worker's logs
    metrics = ServiceMetrics()  # /metrics on METRICS_PORT
    settings = SettingsProvider()  # the clinic's zone for new therapists
    outside_calendars = OutsideCalendars()
    # outside_conflict_found; time_off_removed and schedule_changed (booking's waitlist);
    # offer_changed (booking's copies of what therapists offer)
    relay = OutboxRelay("availability", outbox)

    def _published(self, answer: Any = None) -> Any:
        """A change to what therapists offer was committed: its ``offer_changed`` is published
        before the answer, so a booking asked for next is decided on the change."""
        self.relay.publish_now()
        return answer

    @rpc
    def ping(self) -> str:
        return "pong"

    # --- catalogue ---

    @rpc
    def list_session_types(self) -> list[dict]:
        return ops.list_session_types(self.db)

    @rpc
    def create_session_type(self, caller: dict | None, data: dict) -> dict:
        return self._published(ops.create_session_type(self.db, caller, data))

    @rpc
    def list_rooms(self) -> list[dict]:
        return ops.list_rooms(self.db)

    @rpc
    def create_room(self, caller: dict | None, data: dict) -> dict:
        return self._published(ops.create_room(self.db, caller, data))

    @rpc
    def create_therapist(self, caller: dict | None, data: dict) -> dict:
        return ops.create_therapist(self.db, caller, data, self.settings.clinic_timezone,
                                    self.clock())

    @rpc
    def list_therapists(self, specialty: str | None = None,
                        modality: str | None = None) -> list[dict]:
        return ops.list_therapists(self.db, specialty, modality)

    @rpc
    def get_therapist(self, therapist_id: str) -> dict:
        return ops.get_therapist(self.db, therapist_id)

    @rpc
    def get_therapist_contact(self, therapist_id: str) -> dict:
        """Name and email for notifications; never exposed by the gateway."""
        return ops.get_therapist_contact(self.db, therapist_id)

    @rpc
    def issue_therapist_token(self, caller: dict | None, therapist_id: str) -> str:
        return ops.issue_therapist_token(self.db, caller, therapist_id, self.clock())

    @rpc
    def revoke_therapist_tokens(self, caller: dict | None, therapist_id: str) -> int:
        return ops.revoke_therapist_tokens(self.db, caller, therapist_id)

    @rpc
    def authenticate_therapist(self, token: str) -> str | None:
        return ops.authenticate_therapist(self.db, token)

    # --- calendar feeds ---

    @rpc
    def calendar_feed(self, caller: dict | None, therapist_id: str) -> str:
        return ops.calendar_feed(self.db, caller, therapist_id, self.clock())

    @rpc
    def rotate_calendar_feed(self, caller: dict | None, therapist_id: str) -> str:
        return ops.rotate_calendar_feed(self.db, caller, therapist_id, self.clock())

    @rpc
    def feed_owner(self, secret: str) -> dict | None:
        return ops.feed_owner(self.db, secret)

    # --- schedules and time off ---

    @rpc
    def put_schedule(self, caller: dict | None, therapist_id: str, data: dict) -> dict:
        # offer_changed; schedule_changed: the waitlist looks for times it opened
        return self._published(ops.put_schedule(self.db, caller, therapist_id, data,
                                                self.clock()))

    @rpc
    def get_schedule(self, therapist_id: str) -> dict:
        return ops.get_schedule(self.db, therapist_id)

    @rpc
    def add_time_off(self, caller: dict | None, therapist_id: str, data: dict) -> dict:
        return self._published(ops.add_time_off(self.db, caller, therapist_id, data))

    @rpc
    def list_time_off(self, caller: dict | None, therapist_id: str) -> list[dict]:
        return ops.list_time_off(self.db, caller, therapist_id)

    @rpc
    def delete_time_off(self, caller: dict | None, therapist_id: str, time_off_id: str) -> None:
        ops.delete_time_off(self.db, caller, therapist_id, time_off_id)
        self._published()  # offer_changed; time_off_removed: the waitlist offers the time on

    # --- outside calendars ---

    @rpc
    def link_outside_calendar(self, caller: dict | None, therapist_id: str, data: dict) -> dict:
        # Who may (401/403) and whom (404) first; then the address, DNS included, before the
        # transaction opens.
        with self.db.reading() as session:
            outside.require_owner(session, caller, therapist_id)
        url = outside.checked_url(data, self.outside_calendars.settings.limits)
        with self.db.transaction() as session:
            linked = outside.link(session, caller, therapist_id, url, self.clock())
        self.outside_calendars.sync_soon(therapist_id)
        return linked

    @rpc
    def outside_calendar(self, caller: dict | None, therapist_id: str) -> dict:
        with self.db.reading() as session:
            return outside.status(session, caller, therapist_id)

    @rpc
    def unlink_outside_calendar(self, caller: dict | None, therapist_id: str) -> None:
        with self.db.transaction() as session:
            outside.unlink(session, caller, therapist_id)
        self._published()  # offer_changed

    @rpc
    def outside_busy_times(self, caller: dict | None, therapist_id: str, from_date: str,
                           to_date: str, tz: str | None = None) -> dict:
        with self.db.reading() as session:
            return outside.busy_times(session, caller, therapist_id, from_date, to_date, tz)

    @OutsidePollTimer.decorator(interval=300)
    def poll_outside_calendars(self) -> None:
        """Every EXTERNAL_CALENDAR_POLL_SECONDS: fetch the calendars that are due."""
        self.outside_calendars.sync_due()
        self.relay.wake()

    # --- finding a time ---

    @rpc
    def find_slots(self, therapist_id: str, session_type: str, modality: str, from_date: str,
                   to_date: str, tz: str | None = None) -> dict:
        return ops.find_slots(self.db, self.clock(), therapist_id, session_type, modality,
                              from_date, to_date, tz)

    @rpc
    def course_options(self, therapist_id: str, session_type: str, modality: str,
                       sessions: int = 16, from_date: str | None = None, tz: str | None = None,
                       skip_weeks: list[str] | None = None) -> dict:
        return ops.course_options(self.db, self.clock(), therapist_id, session_type,
                                  modality, sessions, from_date, tz, skip_weeks)

    @rpc
    def therapist_offer(self, therapist_id: str) -> dict:
        """What booking needs to decide bookings of this therapist alone (``clinic.offer``)."""
        return ops.therapist_offer(self.db, self.clock(), therapist_id)

    @rpc
    def check_session(self, therapist_id: str, session_type: str, modality: str,
                      start: str) -> dict:
        return ops.check_session(self.db, self.clock(), therapist_id, session_type,
                                 modality, start)

    @rpc
    def check_course(self, therapist_id: str, session_type: str, modality: str,
                     first_start: str, sessions: int = 16,
                     skip_weeks: list[str] | None = None) -> dict:
        return ops.check_course(self.db, self.clock(), therapist_id, session_type, modality,
                                first_start, sessions, skip_weeks)

    # --- busy times, from the booking service's events ---

    def _apply(self, payload: dict[str, Any], change) -> None:
        ops.apply_event(self.db, payload, change, self.clock())

    @event_handler("booking", "hold_placed")
    def on_hold_placed(self, payload: dict) -> None:
        self._apply(payload, ops.on_hold_placed)

    @event_handler("booking", "hold_released")
    def on_hold_released(self, payload: dict) -> None:
        self._apply(payload, ops.on_hold_released)

    @event_handler("booking", "booking_confirmed")
    def on_booking_confirmed(self, payload: dict) -> None:
        self._apply(payload, ops.on_booking_changed)

    @event_handler("booking", "booking_rescheduled")
    def on_booking_rescheduled(self, payload: dict) -> None:
        self._apply(payload, ops.on_booking_changed)

    @event_handler("booking", "booking_cancelled")
    def on_booking_cancelled(self, payload: dict) -> None:
        self._apply(payload, ops.on_booking_changed)

    @event_handler("booking", "attendance_marked")
    def on_attendance_marked(self, payload: dict) -> None:
        self._apply(payload, ops.on_booking_changed)

    @event_handler("booking", "course_booked")
    def on_course_booked(self, payload: dict) -> None:
        self._apply(payload, ops.on_course_booked)

    @event_handler("booking", "course_cancelled")
    def on_course_cancelled(self, payload: dict) -> None:
        self._apply(payload, ops.on_course_cancelled)
