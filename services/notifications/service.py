"""The notifications service: confirmation, reminder and end-of-course messages, each sent once.

Booking events become rows in the delivery log (in the event's own transaction, with its
``processed_events`` row); right after the commit, and on every timer tick, the due rows are
sent. The timer also adds reminders and end-of-course notices that have come due.
"""

from __future__ import annotations

import logging
from typing import Any

from nameko.timer import Timer, timer

from clinic.access import Caller
from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import rpc
from clinic.events import event_handler
from clinic.metrics import ServiceMetrics
from clinic.rpc import ServiceRpc
from clinic.settings import SettingsProvider
from clinic.shutdown import ShutdownDeadline
from clinic.tracing import RequestTrace
from services.notifications import checkin_store, usecases
from services.notifications.contacts import TherapistContacts
from services.notifications.gauges import notification_gauges
from services.notifications.mailer import Post
from services.notifications.settings import NotificationSettings

log = logging.getLogger(__name__)


class PollTimer(Timer):
    """nameko's timer, its interval read from ``NOTIFICATIONS_POLL_SECONDS``."""

    def setup(self) -> None:
        self.interval = float(self.container.config.get("NOTIFICATIONS_POLL_SECONDS") or 30)


class NotificationsService:
    name = "notifications"

    db = Database("notifications")
    clock = Clock()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    trace = RequestTrace()  # X-Request-ID in this worker's logs, rows and mail
    metrics = ServiceMetrics(notification_gauges)  # /metrics on METRICS_PORT
    settings = SettingsProvider(NotificationSettings.from_config)
    post = Post()
    booking = ServiceRpc("booking")  # each call bounded by RPC_TIMEOUT_SECONDS
    availability = ServiceRpc("availability")
    contacts = TherapistContacts()  # therapists' names and addresses, kept a few minutes

    @rpc
    def ping(self) -> str:
        return "pong"

    @rpc
    def list_notifications(self, caller: dict[str, Any], booking_id: str | None = None,
                           course_id: str | None = None) -> list[dict[str, Any]]:
        """The delivery log of a booking or course: admin, or that booking's therapist."""
        return usecases.list_notifications(self.db, Caller.from_rpc(caller), booking_id,
                                           course_id)

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

    @rpc
    def export_client(self, caller: dict[str, Any], email: str) -> list[dict[str, Any]]:
        return usecases.export_client(self.db, Caller.from_rpc(caller), email)

    @event_handler("booking", "client_erased")
    def on_client_erased(self, payload: dict[str, Any]) -> None:
        usecases.erase_client(self.db, payload)

    @event_handler("booking", "course_cancelled")
    def on_course_cancelled(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload)

    @event_handler("availability", "outside_conflict_found")
    def on_outside_conflict(self, payload: dict[str, Any]) -> None:
        """The therapist's outside calendar now overlaps a booking: tell them, once."""
        self._record_and_send(payload)

    @event_handler("booking", "waitlist_offered")
    def on_waitlist_offered(self, payload: dict[str, Any]) -> None:
        if usecases.record_offer(self.db, payload, self.clock()):
            self._deliver()

    @event_handler("progress", "checkin_submitted")
    def on_checkin_submitted(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload, checkin_store.apply_progress_event)

    @event_handler("progress", "letter_shared")
    def on_letter_shared(self, payload: dict[str, Any]) -> None:
        self._record_and_send(payload, checkin_store.apply_progress_event)

    @PollTimer.decorator(interval=30)
    def send_due(self) -> None:
        """Add reminders and ending notices that came due, then send whatever is due."""
        usecases.plan_due(self.db, self.clock(), self.settings)
        self._deliver()

    @timer(interval=3600)
    def drop_old_bodies(self) -> None:
        try:  # a failed pass (the database away) must not end the container; the next retries
            usecases.drop_old_bodies(self.db, self.clock(), self.settings)
        except Exception:
            log.warning("dropping old message bodies failed; will retry", exc_info=True)

    def _record_and_send(self, payload: dict[str, Any],
                         apply=usecases.BOOKING_EVENT) -> None:
        if usecases.record_event(self.db, payload, self.clock(), apply):
            self._deliver()  # after the commit: the rows are safe before anything is sent

    def _deliver(self) -> usecases.Outcome:
        directory = usecases.Directory(self.booking, self.availability, self.contacts)
        return usecases.deliver_due(self.db, self.clock, self.settings, self.post, directory)
