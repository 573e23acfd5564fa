"""Which messages a booking event, or a due reminder or ending, calls for: one ``Notice`` each.

A notice's ``dedupe_key`` names what it is for (the event id, or the session and its start, or
the course), its recipient and its channel. The key is unique in the ``notifications`` table,
so a redelivered event or a second timer tick can only ever find the row already there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.notifications.schedule import KnownSession

EVENT_KINDS = {
    "booking_confirmed": "confirmation",
    "course_booked": "confirmation",
    "booking_rescheduled": "reschedule",
    "booking_cancelled": "cancellation",
    "course_cancelled": "cancellation",
}


@dataclass(frozen=True)
class Notice:
    purpose: str
    kind: str
    recipient_role: str  # client | therapist
    channel: str  # email | sms
    recipient: str | None  # None: the therapist's address, looked up when sending
    therapist_id: str
    booking_id: str | None
    course_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        return f"{self.purpose}|{self.recipient_role}|{self.channel}"


def _to_both(purpose: str, kind: str, client: dict[str, Any], therapist_id: str,
             booking_id: str | None, course_id: str | None,
             payload: dict[str, Any]) -> list[Notice]:
    notices = []
    if client.get("email"):
        notices.append(Notice(purpose, kind, "client", "email", client["email"], therapist_id,
                              booking_id, course_id, payload))
    notices.append(Notice(purpose, kind, "therapist", "email", None, therapist_id, booking_id,
                          course_id, payload))
    return notices


def for_event(event: dict[str, Any], applied: list[dict[str, Any]],
              course: dict[str, Any] | None) -> list[Notice]:
    """The notices of one booking event, about the bookings that event changed (``applied``:
    those not superseded by a newer sequence already seen; none means nothing to say)."""
    kind = EVENT_KINDS.get(event["type"])
    if kind is None or not applied:
        return []
    data = event["data"]
    first = applied[0]
    client = (data.get("course") or {}).get("client") or first.get("client") or {}
    payload: dict[str, Any] = {"bookings": applied, "client": client, "course": course,
                               "previous": data.get("previous")}
    is_course_event = event["type"] in ("course_booked", "course_cancelled")
    booking_id = None if is_course_event else first["id"]
    return _to_both(f"event:{event['id']}", kind, client, first["therapist_id"], booking_id,
                    first.get("course_id"), payload)


def reminder(session: KnownSession, course: dict[str, Any] | None) -> list[Notice]:
    """Email, and SMS when the client gave a phone number; to the client."""
    booking = session.booking
    client = booking.get("client") or {}
    purpose = f"reminder:{session.booking_id}@{session.start.isoformat()}"
    payload = {"bookings": [booking], "client": client, "course": course}
    notices = []
    if client.get("email"):
        notices.append(Notice(purpose, "reminder", "client", "email", client["email"],
                              session.therapist_id, session.booking_id, session.course_id,
                              payload))
    if client.get("phone"):
        notices.append(Notice(purpose, "reminder", "client", "sms", client["phone"],
                              session.therapist_id, session.booking_id, session.course_id,
                              payload))
    return notices


def course_ending(course_id: str, remaining_sessions: list[KnownSession],
                  course: dict[str, Any]) -> list[Notice]:
    first = remaining_sessions[0]
    client = first.booking.get("client") or {}
    payload = {"bookings": [s.booking for s in remaining_sessions], "client": client,
               "course": course, "remaining": len(remaining_sessions)}
    return _to_both(f"course_ending:{course_id}", "course_ending", client, first.therapist_id,
                    None, course_id, payload)


def outside_conflict(event: dict[str, Any], booking: dict[str, Any] | None) -> Notice:
    """The therapist is told, once per booking and time, that their outside calendar now
    overlaps a clinic booking (the booking stands; they decide what to do)."""
    data = event["data"]
    booking = booking or {"id": data["booking_id"], "therapist_id": data["therapist_id"],
                          "start": data["start"], "end": data["end"]}
    busy = {"start": data["busy_start"], "end": data["busy_end"]}
    return Notice(f"outside_conflict:{data['booking_id']}:{data['start']}", "outside_conflict",
                  "therapist", "email", None, data["therapist_id"], data["booking_id"],
                  booking.get("course_id"), {"bookings": [booking], "busy": busy})
