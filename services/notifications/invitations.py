"""The .ics an email carries (RFC 5546 iTIP): REQUEST to add or update, CANCEL to remove.

Every VEVENT is built by ``clinic.ical`` with the feed's UID and the booking's own sequence, so
a calendar that already holds the session (from an earlier email or the therapist's feed)
updates it instead of adding a second one. A course confirmation carries all its sessions in
one calendar. The invitation names only the reader as attendee: neither client nor therapist
learns the other's address from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clinic import ical
from clinic.ical import client_initials
from services.notifications.composer import Letterhead, session_type_label

METHODS = {"confirmation": "REQUEST", "reschedule": "REQUEST", "cancellation": "CANCEL"}


def method_for(kind: str) -> str | None:
    """The iTIP method of a notification kind; reminders and notices carry no invitation."""
    return METHODS.get(kind)


def summary(booking: dict[str, Any], role: str, therapist_name: str | None) -> str:
    label = session_type_label(str(booking.get("session_type", "session")))
    if booking.get("session_number") and booking.get("course_sessions"):
        label = f"{label} {booking['session_number']}/{booking['course_sessions']}"
    if role == "therapist":  # lands in cloud calendars and on lock screens: initials only
        client = client_initials((booking.get("client") or {}).get("name") or "")
        return f"{label} – {client}".strip(" –")
    return f"{label} with {therapist_name}" if therapist_name else label


def location(booking: dict[str, Any], head: Letterhead) -> str | None:
    modality = booking.get("modality")
    if modality == "in_person":
        room = booking.get("room")
        return f"Room {room}, {head.clinic_address}" if room else head.clinic_address
    if modality == "video":
        return booking.get("video_url") or "Video"
    return "Phone" if modality == "phone" else None


def invitation(kind: str, role: str, payload: dict[str, Any], head: Letterhead, *,
               organizer: str, attendee: tuple[str, str], dtstamp: datetime,
               therapist_name: str | None = None) -> tuple[str, str] | None:
    """(method, iCalendar text) for the email, or None when this kind carries none."""
    method = method_for(kind)
    if method is None:
        return None
    events = []
    for booking in payload["bookings"]:
        shown = dict(booking)
        if method == "CANCEL":
            shown["status"] = "cancelled"  # RFC 5546: a CANCEL's VEVENT is STATUS:CANCELLED
        event = ical.booking_event(
            shown, summary=summary(booking, role, therapist_name),
            timezone=head.clinic_timezone, dtstamp=dtstamp,
            location=location(booking, head))
        ical.add_attendees(event, organizer=organizer, organizer_name=head.clinic_name,
                           attendees=[attendee])
        events.append(event)
    return method, ical.calendar(events, method=method).to_ical().decode()
