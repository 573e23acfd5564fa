"""The progress service: check-ins with PHQ-9 and GAD-7, the focus, the goodbye letter, risk.

It learns each course's sessions from booking's events (never from booking's tables) and owns
what the client and therapist write. Its own events (``checkin_submitted``, ``letter_shared``)
leave through its outbox and carry ids and the risk flag only.
"""

from __future__ import annotations

from typing import Any

from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import rpc
from clinic.events import event_handler
from clinic.metrics import ServiceMetrics
from clinic.outbox import OutboxRelay
from clinic.rpc import ServiceRpc
from clinic.shutdown import ShutdownDeadline
from clinic.tracing import RequestTrace
from services.progress.models import outbox
from services.progress.usecases import Progress


class BookingKeeper:
    """``CourseKeeper`` over RPC: booking checks the manage token as it does for its course."""

    def __init__(self, booking) -> None:
        self.booking = booking

    def course(self, course_id: str, caller: dict[str, Any]) -> dict[str, Any]:
        return self.booking.get_course(caller, course_id)

    def record_access(self, caller: dict[str, Any], action: str, course_id: str) -> None:
        self.booking.record_access(caller, action, None, course_id)


class ProgressService:
    name = "progress"

    db = Database("progress")
    clock = Clock()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    trace = RequestTrace()  # X-Request-ID in this worker's logs and outbox rows
    metrics = ServiceMetrics()  # /metrics on METRICS_PORT
    events = OutboxRelay("progress", outbox)
    booking = ServiceRpc("booking")  # bounded by the caller's deadline

    def _progress(self) -> Progress:
        return Progress(self.db, self.clock, BookingKeeper(self.booking))

    @rpc
    def ping(self) -> str:
        return "pong"

    @rpc
    def questionnaires(self) -> list[dict[str, Any]]:
        return self._progress().questionnaires()

    @rpc
    def get_progress(self, caller: dict[str, Any], course_id: str) -> dict[str, Any]:
        return self._progress().progress(caller, course_id)

    @rpc
    def therapist_courses(self, caller: dict[str, Any], therapist_id: str
                          ) -> list[dict[str, Any]]:
        return self._progress().therapist_courses(caller, therapist_id)

    @rpc
    def submit_check_in(self, caller: dict[str, Any], course_id: str, answers: dict[str, Any],
                        reflection: str | None = None) -> dict[str, Any]:
        answer = self._progress().submit_check_in(caller, course_id, answers, reflection)
        self.events.wake()
        return answer

    @rpc
    def put_focus(self, caller: dict[str, Any], course_id: str, interpersonal: str,
                  affective: str) -> dict[str, Any]:
        return self._progress().put_focus(caller, course_id, interpersonal, affective)

    @rpc
    def put_letter(self, caller: dict[str, Any], course_id: str, text: str) -> dict[str, Any]:
        return self._progress().put_letter(caller, course_id, text)

    @rpc
    def share_letter(self, caller: dict[str, Any], course_id: str) -> dict[str, Any]:
        answer = self._progress().share_letter(caller, course_id)
        self.events.wake()
        return answer

    @rpc
    def mark_risk_seen(self, caller: dict[str, Any], course_id: str) -> dict[str, Any]:
        return self._progress().mark_risk_seen(caller, course_id)

    @rpc
    def export_courses(self, caller: dict[str, Any], course_ids: list[str]
                       ) -> list[dict[str, Any]]:
        return self._progress().export_courses(caller, course_ids)

    @rpc
    def erase_courses(self, caller: dict[str, Any], course_ids: list[str]) -> int:
        return self._progress().erase_courses(caller, course_ids)

    @event_handler("booking", "course_booked")
    def on_course_booked(self, payload: dict[str, Any]) -> None:
        self._progress().apply_booking_event(payload)

    @event_handler("booking", "course_cancelled")
    def on_course_cancelled(self, payload: dict[str, Any]) -> None:
        self._progress().apply_booking_event(payload)

    @event_handler("booking", "booking_confirmed")
    def on_booking_confirmed(self, payload: dict[str, Any]) -> None:
        self._progress().apply_booking_event(payload)

    @event_handler("booking", "booking_rescheduled")
    def on_booking_rescheduled(self, payload: dict[str, Any]) -> None:
        self._progress().apply_booking_event(payload)

    @event_handler("booking", "booking_cancelled")
    def on_booking_cancelled(self, payload: dict[str, Any]) -> None:
        self._progress().apply_booking_event(payload)
