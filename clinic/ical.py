"""Calendar pieces shared by the therapist's iCal feed and the invitations in email (RFC 5545).

A booking is one VEVENT everywhere: the same UID (``event_uid``) and the booking's own
``sequence`` as SEQUENCE, so an invitation, its update and the feed are recognised by calendar
apps as one event. Times carry TZID with a matching VTIMEZONE generated from zoneinfo.

Privacy: the feed must never show a client's email, phone or notes, so ``booking_event`` takes
only what a calendar may show (times, status, the caller's summary/description/location); an
email invitation adds ORGANIZER/ATTENDEE itself (``add_attendees``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

PRODID = "-//Clinic scheduling//EN"
Method = Literal["REQUEST", "CANCEL", "PUBLISH"]

# A booking's status -> the VEVENT STATUS a calendar understands.
_STATUS = {"confirmed": "CONFIRMED", "attended": "CONFIRMED", "no_show": "CONFIRMED",
           "cancelled": "CANCELLED"}


def event_uid(booking_id: str) -> str:
    """The stable UID of a booking's VEVENT, the same in every feed and invitation."""
    return f"booking-{booking_id}@clinic"


def instant(value: str | datetime) -> datetime:
    """An aware datetime from an ISO 8601 string with offset (RPC and events carry strings)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"naive instant {value!r}")
    return moment


def booking_event(booking: Mapping[str, Any], *, summary: str, timezone: str,
                  dtstamp: datetime, description: str | None = None,
                  location: str | None = None, url: str | None = None) -> Event:
    """The VEVENT of a booking dict (the events' shape): times in ``timezone`` with TZID.

    Only ``id``, ``start``, ``end``, ``status`` and ``sequence`` are read from the booking;
    anything else shown comes from the caller, who decides what its audience may see.
    """
    zone = ZoneInfo(timezone)
    event = Event()
    event.add("uid", event_uid(str(booking["id"])))
    event.add("dtstamp", dtstamp)
    event.add("dtstart", instant(booking["start"]).astimezone(zone))
    event.add("dtend", instant(booking["end"]).astimezone(zone))
    event.add("sequence", int(booking.get("sequence") or 0))
    event.add("status", _STATUS.get(str(booking.get("status")), "CONFIRMED"))
    event.add("summary", summary)
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    if url:
        event.add("url", url)
    return event


def add_attendees(event: Event, *, organizer: str, attendees: Iterable[tuple[str, str]],
                  organizer_name: str = "Clinic") -> None:
    """ORGANIZER and ATTENDEEs for an emailed invitation (never for a feed)."""
    chair = vCalAddress(f"mailto:{organizer}")
    chair.params["CN"] = organizer_name
    event.add("organizer", chair)
    for name, email in attendees:
        attendee = vCalAddress(f"mailto:{email}")
        attendee.params["CN"] = name
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "ACCEPTED"
        event.add("attendee", attendee)


def calendar(events: Iterable[Event], *, method: Method | None = None,
             name: str | None = None) -> Calendar:
    """A VCALENDAR holding ``events`` and a VTIMEZONE for every TZID they use."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    if name:
        cal.add("x-wr-calname", name)
    starts: list[date] = []
    for event in events:
        cal.add_component(event)
        starts.append(event.decoded("dtstart").date())
    if starts:
        # VTIMEZONE transitions only for the span the events need (plus a margin either side).
        cal.add_missing_timezones(first_date=min(starts) - timedelta(days=366),
                                  last_date=max(starts) + timedelta(days=366))
    return cal


def client_initials(name: str) -> str:
    """What a calendar may say of a client: "Jane van Dijk-Ng" -> "J.v.D.N.", never the name."""
    parts = [part for part in name.replace("-", " ").split() if part]
    return "".join(f"{part[0]}." for part in parts[:4]) or "?"
