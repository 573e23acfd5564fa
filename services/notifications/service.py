"""The notifications service: confirmation, reminder and end-of-course messages, each sent once.

Booking events become rows in the delivery log (in the event's own transaction, with its
``processed_events`` row); right after the commit, and on every timer tick, the due rows are
sent. The timer also adds reminders and end-of-course notices that have come due.
"""

from __future__ import annotations

from typing import Any

from nameko.rpc import RpcProxy
from nameko.timer import Timer

from clinic.access import Caller
from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import NotFound, rpc
from clinic.events import event_handler, first_delivery
from clinic.shutdown import ShutdownDeadline
from services.notifications import checkin_store, delivery, ledger
from services.notifications.mailer import Post
from services.notifications.models import processed_events
from services.notifications.settings import Config


class PollTimer(Timer):
    """nameko's timer, its interval read from ``NOTIFICATIONS_POLL_SECONDS``."""

    def setup(self) -> None:
        self.interval = float(self.container.config.get("NOTIFICATIONS_POLL_SECONDS") or 30)


class NotificationsService:
    name = "notifications"

    db = Database("notifications")
    clock = Clock()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    settings = Config()
    post = Post()
    booking = RpcProxy("booking")
    availability = RpcProxy("availability")

    @rpc
    def ping(self) -> str:
        return "pong"

    @rpc
    def list_notifications(self, caller: dict[str, Any], booking_id: str | None = None,
                           course_id: str | None = None) -> list[dict[str, Any]]:
        """The delivery log of a booking or course: admin, or that booking's therapist."""
        who = Caller.from_rpc(caller)
        with self.db.reading() as session:
            if not who.is_admin:
                if who.kind != "therapist" or not (booking_id or course_id):
                    who.require_admin()  # the whole log is the admin's
                owner = ledger.therapist_of(session, booking_id, course_id)
                if owner is None:
                    raise NotFound("No notifications for that booking or course.")
                who.require_therapist(owner)
            return ledger.listing(session, booking_id, course_id)

    @event_handler("booking", "booking_confirmed")
    def on_booking_confirmed(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload)

    @event_handler("booking", "booking_rescheduled")
    def on_booking_rescheduled(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload)

    @event_handler("booking", "booking_cancelled")
    def on_booking_cancelled(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload)

    @event_handler("booking", "course_booked")
    def on_course_booked(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload)

    @event_handler("booking", "course_cancelled")
    def on_course_cancelled(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload)

    @event_handler("availability", "outside_conflict_found")
    def on_outside_conflict(self, payload: dict[str, Any]) -> None:
        """The therapist's outside calendar now overlaps a booking: tell them, once."""
        self._record_and_send(payload)

    @event_handler("progress", "checkin_submitted")
    def on_checkin_submitted(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload, checkin_store.apply_progress_event)

    @event_handler("progress", "letter_shared")
    def on_letter_shared(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload, checkin_store.apply_progress_event)

    @PollTimer.decorator(interval=30)
    def send_due(self) -> None:
        """Add reminders and ending notices that came due, then send whatever is due."""
        with self.db.transaction() as session:
            ledger.plan_due(session, self.clock(), self.settings.reminder_hours,
                            self.settings.course_ending_notice_sessions)
            checkin_store.plan_invitations(session, self.clock(), self.settings.checkin_hours)
        self._deliver()

    def _record_and_send(self, payload: dict[str, Any], apply=ledger.apply_event) -> None:
        with self.db.transaction() as session:
            if not first_delivery(session, processed_events, payload["id"]):
                return
            added = apply(session, payload, self.clock())
        if added:
            self._deliver()  # after the commit: the rows are safe before anything is sent

    def _deliver(self) -> delivery.Outcome:
        directory = delivery.Directory(self.booking, self.availability,
                                       self.settings.rpc_timeout)
        return delivery.deliver_due(self.db, self.clock, self.settings, self.post, directory)
