"""What a message says: subject, plain text and HTML, from small ``string.Template`` texts.

Pure functions of a notification's payload (the booking dicts of its event) and a ``Letterhead``
of clinic facts; nothing here talks to a broker, a database or a mail server. Each letter tells a
client what they need on the day: the session type, the time in their zone and the clinic's, what
the modality means (room and address, the video link, who calls whom), the manage link, and for a
course the session's position, the end date and how to move one session.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from string import Template
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from clinic.ical import client_initials, instant
from clinic.wire import zone_or

KINDS = ("confirmation", "reschedule", "cancellation", "reminder", "course_ending",
         "outside_conflict")


@dataclass(frozen=True)
class Letterhead:
    clinic_name: str
    clinic_timezone: str
    clinic_address: str
    arrival_notes: str
    public_base_url: str


@dataclass(frozen=True)
class Letter:
    subject: str
    text: str
    html: str


@dataclass
class _Draft:
    """A letter as blocks, rendered once as text and once as HTML (escaped)."""

    greeting: str
    paragraphs: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)

    def text(self, signature: str) -> str:
        lines = [self.greeting, ""]
        for paragraph in self.paragraphs:
            lines += [paragraph, ""]
        if self.facts:
            lines += [f"{label}: {value}" for label, value in self.facts] + [""]
        for label, url in self.links:
            lines += [f"{label}: {url}", ""]
        return "\n".join([*lines, signature, ""])

    def html(self, signature: str) -> str:
        esc = html.escape
        parts = [f"<p>{esc(self.greeting)}</p>"]
        parts += [f"<p>{esc(p)}</p>" for p in self.paragraphs]
        if self.facts:
            rows = "".join(f"<tr><th align=left>{esc(label)}</th><td>{esc(value)}</td></tr>"
                           for label, value in self.facts)
            parts.append(f"<table>{rows}</table>")
        parts += [f'<p><a href="{esc(url, quote=True)}">{esc(label)}</a></p>'
                  for label, url in self.links]
        parts.append(f"<p>{esc(signature)}</p>")
        return ("<!doctype html><html><body style=\"font-family:sans-serif\">"
                + "".join(parts) + "</body></html>")


SUBJECTS: dict[tuple[str, str], Template] = {
    ("confirmation", "client"): Template("Confirmed: your $what, $when"),
    ("confirmation", "therapist"): Template("New booking: $what with $client, $when"),
    ("reschedule", "client"): Template("Moved: your $what is now $when"),
    ("reschedule", "therapist"): Template("Rescheduled: $what with $client, now $when"),
    ("cancellation", "client"): Template("Cancelled: your $what, $when"),
    ("cancellation", "therapist"): Template("Cancelled: $what with $client, $when"),
    ("reminder", "client"): Template("Reminder: your $what, $when"),
    ("reminder", "therapist"): Template("Reminder: $what with $client, $when"),
    ("course_ending", "client"): Template("Your course: the last $remaining sessions"),
    ("course_ending", "therapist"): Template("$client's course begins its ending phase"),
    ("outside_conflict", "therapist"): Template("Check your calendar: $what, $when, now overlaps "
                                                "another commitment"),
}

INTROS: dict[tuple[str, str], Template] = {
    ("confirmation", "client"): Template("Your $what with $therapist is booked. The details "
                                         "are below, and the attached invitation adds it to "
                                         "your calendar."),
    ("confirmation", "therapist"): Template("$client has booked a $what with you."),
    ("reschedule", "client"): Template("Your $what with $therapist has moved from $previous to "
                                       "the new time below. Your calendar entry is updated by "
                                       "the attached invitation."),
    ("reschedule", "therapist"): Template("$client's $what has moved from $previous to the new "
                                          "time below."),
    ("cancellation", "client"): Template("Your $what with $therapist has been cancelled. The "
                                         "attached file removes it from your calendar."),
    ("cancellation", "therapist"): Template("$client's $what has been cancelled."),
    ("reminder", "client"): Template("A reminder of your $what with $therapist, coming up soon."),
    ("reminder", "therapist"): Template("A reminder of your $what with $client."),
    ("course_ending", "client"): Template(
        "You have $remaining sessions of your course left. In Dynamic Interpersonal Therapy the "
        "final sessions are a time to look back together at what you have worked on, what has "
        "changed and what you will take with you. Endings can stir up strong feelings, anxiety "
        "or sadness among them; that is natural, and your sessions are a good place to talk "
        "about it. Your therapist will be with you for each of these last meetings."),
    ("course_ending", "therapist"): Template(
        "$client has $remaining sessions of their course left: the ending phase begins. These "
        "sessions are where you and $client reflect on what has been learned; the approaching "
        "end can raise anxiety, so it may help to name it early and leave room for it."),
    ("outside_conflict", "therapist"): Template(
        "Your own calendar, which the clinic reads, now shows you busy at the time of this "
        "booking. The booking stands and your client has not been told. If you cannot keep "
        "it, please reschedule or cancel it from your page, or remove the other entry."),
}


def session_type_label(session_type: str) -> str:
    """'dit-session' -> 'DIT session': short words are acronyms in the catalogue's ids."""
    words = session_type.replace("_", "-").split("-")
    return " ".join(w.upper() if i == 0 and len(w) <= 3 else w for i, w in enumerate(words))


def local_time(moment: datetime | str, tz: ZoneInfo) -> str:
    """'Tuesday 2 March 2027, 10:00 GMT' in ``tz``."""
    local = instant(moment).astimezone(tz)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()}"


def local_date(moment: datetime | str, tz: ZoneInfo) -> str:
    local = instant(moment).astimezone(tz)
    return f"{local:%A} {local.day} {local:%B %Y}"


def manage_url(base_url: str, token: str, scope: str, ident: str) -> str:
    """The client's manage page; it names the booking or course the token opens."""
    query = urlencode({"token": token, scope: ident})
    return f"{base_url.rstrip('/')}/manage?{query}"


def _when(booking: dict[str, Any], tz: ZoneInfo, clinic_tz: ZoneInfo) -> str:
    """The time in the reader's zone, and in the clinic's when that differs."""
    mine = local_time(booking["start"], tz)
    if tz.key == clinic_tz.key:
        return mine
    return f"{mine} ({local_time(booking['start'], clinic_tz)} at the clinic)"


def modality_text(booking: dict[str, Any], role: str, head: Letterhead,
                  therapist: str) -> str:
    """What the modality means on the day, for this reader."""
    client = booking.get("client") or {}
    modality = booking.get("modality")
    if modality == "in_person":
        room = booking.get("room")
        where = f"room {room}, " if room else ""
        return (f"In person, in {where}{head.clinic_address}. {head.arrival_notes}"
                if role == "client" else f"In person, in {where}{head.clinic_address}.")
    if modality == "video":
        link = booking.get("video_url")
        if link:
            return f"By video: join at the start time through this link: {link}"
        return "By video: the joining link will follow before the session."
    if modality == "phone":
        phone = client.get("phone")
        if role == "client":
            if phone:
                return f"By phone: {therapist} will call you on {phone} at the start time."
            return (f"By phone: {therapist} will call you at the start time. We have no number "
                    "for you yet; please reply to this email with one.")
        return (f"By phone: please call {client.get('name', 'your client')} on {phone} at the "
                "start time." if phone else
                "By phone: the client gave no number yet; the clinic will pass it on.")
    return str(modality or "")


def compose(kind: str, role: str, payload: dict[str, Any], head: Letterhead, *,
            therapist_name: str | None = None, manage_link: str | None = None) -> Letter:
    """The letter for a notification ``kind`` to ``role`` ('client' or 'therapist')."""
    bookings: list[dict[str, Any]] = payload["bookings"]
    first = bookings[0]
    client = payload.get("client") or first.get("client") or {}
    clinic_tz = zone_or(head.clinic_timezone, "Europe/London")
    tz = zone_or(client.get("timezone"), head.clinic_timezone) if role == "client" else clinic_tz
    course = payload.get("course")
    therapist = therapist_name or "your therapist"
    label = session_type_label(str(first.get("session_type", "session")))
    many = len(bookings) > 1
    plural = f"{label}s" if label.endswith("session") else f"{label} sessions"
    what = (f"course of {len(bookings)} {plural}" if many and kind != "cancellation"
            else f"{len(bookings)} {plural}" if many else label)
    if not many and first.get("session_number") and first.get("course_sessions"):
        what = f"{label} {first['session_number']} of {first['course_sessions']}"
    previous = payload.get("previous")
    values = {
        "what": what, "client": client.get("name", "Your client"), "therapist": therapist,
        "when": ("" if kind == "course_ending" else
                 ("from " if many else "") + local_time(first["start"], tz)),
        "previous": local_time(previous["start"], tz) if previous else "its earlier time",
        "remaining": str(payload.get("remaining", len(bookings))),
    }
    if role == "therapist":
        values["client"] = client.get("name", "Your client")
    # A subject shows on lock screens and in calendar apps: the client by initials only there.
    subject = SUBJECTS[(kind, role)].substitute(
        {**values, "client": client_initials(client.get("name") or "")}
        if role == "therapist" else values)
    greeting = (f"Dear {client.get('name', 'client')}," if role == "client"
                else f"Dear {therapist_name}," if therapist_name else "Hello,")
    draft = _Draft(greeting, [INTROS[(kind, role)].substitute(values)])

    if many or kind == "course_ending":
        for booking in bookings:
            number = booking.get("session_number")
            name = f"Session {number}" if number else "Session"
            draft.facts.append((name, _when(booking, tz, clinic_tz)
                                + (" (cancelled)" if booking.get("status") == "cancelled"
                                   and kind != "cancellation" else "")))
    else:
        draft.facts.append(("Session", what))
        draft.facts.append(("When", _when(first, tz, clinic_tz)))
        if first.get("end"):
            minutes = int((instant(first["end"]) - instant(first["start"])).total_seconds() // 60)
            draft.facts.append(("Length", f"{minutes} minutes"))
        if role == "therapist":
            draft.facts.append(("Client", client.get("name", "")))
    if kind != "cancellation":
        draft.paragraphs.append(modality_text(first, role, head, therapist))
    if course and role == "client" and kind != "cancellation":
        end = local_date(course["last_end"], tz) if course.get("last_end") else None
        if end:
            draft.paragraphs.append(f"Your course ends on {end}.")
        draft.paragraphs.append(
            "To move one session, open your booking page below, choose that session and pick "
            "a new time; the other sessions of the course stay as they are.")
    if manage_link and role == "client" and kind != "cancellation":
        draft.links.append(("See, move or cancel your booking", manage_link))
    elif role == "client" and kind == "cancellation":
        draft.paragraphs.append("If you would like to book another time, you can do so on our "
                                f"booking page: {head.public_base_url}/")
    signature = f"With best wishes, {head.clinic_name}"
    return Letter(subject=subject, text=draft.text(signature), html=draft.html(signature))


def sms_text(payload: dict[str, Any], head: Letterhead) -> str:
    """A reminder short enough for one or two SMS parts."""
    booking = payload["bookings"][0]
    client = payload.get("client") or booking.get("client") or {}
    tz = zone_or(client.get("timezone"), head.clinic_timezone)
    label = session_type_label(str(booking.get("session_type", "session")))
    how = {"in_person": f"at {head.clinic_address}", "video": "by video (link in your email)",
           "phone": "by phone (your therapist calls you)"}.get(str(booking.get("modality")), "")
    return f"{head.clinic_name}: reminder of your {label} {local_time(booking['start'], tz)} {how}."
