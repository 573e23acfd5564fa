"""The event envelope and the table of who listens to what.

Events are past-tense facts (``booking_confirmed``). Each carries a unique id so consumers can
drop redeliveries. ``SUBSCRIPTIONS`` is the one list of handler queues: the outbox relay declares
them before it publishes (an event published before its handler's queue exists is dropped by
RabbitMQ), and a test checks it against the services' ``@event_handler`` entrypoints.
Handlers are ``event_handler`` from here (``clinic.handlers``): nameko's, except that an event
whose handler failed goes back to its queue, and after a few failures to a dead-letter queue.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic.handlers import RetryingEventHandler, event_handler  # noqa: F401 (the services')
from clinic.sql import upsert

# (source service, event type) -> handlers as (service name, method name).
SUBSCRIPTIONS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("booking", "hold_placed"): (("availability", "on_hold_placed"),),
    ("booking", "hold_released"): (("availability", "on_hold_released"),),
    ("booking", "booking_confirmed"): (("availability", "on_booking_confirmed"),
        ("notifications", "on_booking_confirmed"), ("progress", "on_booking_confirmed")),
    ("booking", "booking_rescheduled"): (("availability", "on_booking_rescheduled"),
        ("notifications", "on_booking_rescheduled"), ("progress", "on_booking_rescheduled")),
    ("booking", "booking_cancelled"): (("availability", "on_booking_cancelled"),
        ("notifications", "on_booking_cancelled"), ("progress", "on_booking_cancelled")),
    ("booking", "course_booked"): (("availability", "on_course_booked"),
        ("notifications", "on_course_booked"), ("progress", "on_course_booked")),
    ("booking", "course_cancelled"): (("availability", "on_course_cancelled"),
        ("notifications", "on_course_cancelled"), ("progress", "on_course_cancelled")),
    ("booking", "attendance_marked"): (("availability", "on_attendance_marked"),),
    ("progress", "checkin_submitted"): (("notifications", "on_checkin_submitted"),),
    ("progress", "letter_shared"): (("notifications", "on_letter_shared"),),
    ("availability", "outside_conflict_found"): (("notifications", "on_outside_conflict"),),
    ("booking", "client_erased"): (("notifications", "on_client_erased"),),
}


# The waitlist (booking's own handlers): times that became free are offered on; a client who
# booked another way stops waiting; notifications writes the offer letter.
for _freeing in ("booking_cancelled", "booking_rescheduled", "hold_released", "course_cancelled",
                 "booking_confirmed", "course_booked"):
    SUBSCRIPTIONS[("booking", _freeing)] += (("booking", f"on_{_freeing}"),)
SUBSCRIPTIONS[("booking", "waitlist_offered")] = (("notifications", "on_waitlist_offered"),)
SUBSCRIPTIONS[("availability", "time_off_removed")] = (("booking", "on_time_off_removed"),)
SUBSCRIPTIONS[("availability", "schedule_changed")] = (("booking", "on_schedule_changed"),)


def handler_queue_name(source: str, event_type: str, service: str, method: str) -> str:
    """The queue nameko's SERVICE_POOL ``event_handler`` consumes from."""
    return f"evt-{source}-{event_type}--{service}.{method}"


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    source: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Event:
        return cls(**{k: payload[k] for k in ("type", "data", "source", "id", "occurred_at")})


def processed_events_table(metadata: MetaData) -> Table:
    """Ids of events a consumer has already handled; one row per event."""
    return Table(
        "processed_events",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("handled_at", DateTime(timezone=True), nullable=False),
    )


def first_delivery(session: Session, table: Table, event_id: str) -> bool:
    """Record ``event_id`` in the handler's transaction; False if it was handled before.

    Called inside the same transaction as the handler's own writes, so a crash between the
    two cannot mark an event handled that was not (or handle it twice).
    """
    statement = (
        upsert(session, table)
        .values(event_id=event_id, handled_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    try:
        return session.execute(statement).rowcount == 1
    except IntegrityError:  # pragma: no cover - on_conflict_do_nothing covers it
        return False
