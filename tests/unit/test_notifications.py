"""Notifications' pure parts: the shared calendar builder, invitations, letters, timing, files."""

from __future__ import annotations

import email
import io
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.generator import BytesGenerator
from typing import Any

import pytest
from icalendar import Calendar

from clinic import ical
from services.notifications import composer, mailer, schedule
from services.notifications.contacts import ContactBook
from services.notifications.invitations import invitation

HEAD = composer.Letterhead("The Clinic", "Europe/London", "1 Harley Street, London W1",
                           "Ring the bell marked DIT.", "https://clinic.example")
START = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)  # a Tuesday, GMT


def booking_dict(number: int | None = None, start: datetime = START, **changes: Any) -> dict:
    """A booking dict exactly as booking events carry it (``booking_view`` in
    services/booking/policy.py)."""
    booking = {
        "id": f"bk-{number or 1}", "status": "confirmed", "therapist_id": "dr-jo",
        "session_type": "dit-session", "modality": "in_person", "start": start.isoformat(),
        "end": (start + timedelta(minutes=50)).isoformat(),
        "blocked_end": (start + timedelta(minutes=60)).isoformat(), "room": "garden",
        "video_url": None, "course_id": "crs-1" if number else None, "session_number": number,
        "course_sessions": 16 if number else None,
        "client": {"name": "Ann Lee", "email": "ann@example.org", "phone": "+447700900123",
                   "timezone": "America/New_York"},
        "sequence": 0, "late_cancellation": False, "cancelled_by": None, "notes_present": True,
    }
    booking.update(changes)
    return booking


def course_sessions(count: int = 16, start: datetime = START) -> list[dict]:
    return [booking_dict(n, start + timedelta(weeks=n - 1)) for n in range(1, count + 1)]


def event(event_type: str, data: dict, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt-{event_type}-{datetime.now(UTC).timestamp()}",
            "type": event_type, "source": "booking", "occurred_at": datetime.now(UTC).isoformat(),
            "data": data}


def course_dict(sessions: list[dict]) -> dict:
    return {"id": "crs-1", "therapist_id": "dr-jo", "client": sessions[0]["client"],
            "session_type": "dit-session", "modality": sessions[0]["modality"],
            "sessions": sessions, "first_start": sessions[0]["start"],
            "last_end": sessions[-1]["end"], "status": "active"}


def parse_calendar(text: str) -> Calendar:
    return Calendar.from_ical(text)


# ---- clinic.ical --------------------------------------------------------------------------

def test_event_uid_is_stable_per_booking():
    assert ical.event_uid("42") == ical.event_uid("42") == "booking-42@clinic"
    assert ical.event_uid("42") != ical.event_uid("43")


def test_shared_vevent_has_tzid_a_matching_vtimezone_and_nothing_private():
    booking = booking_dict(5, START + timedelta(weeks=6), sequence=3)  # in BST
    vevent = ical.booking_event(booking, summary="DIT session 5/16 – A.L.",
                                timezone="Europe/London", dtstamp=START)
    text = ical.calendar([vevent]).to_ical().decode()
    assert "DTSTART;TZID=Europe/London:20270413T110000" in text
    parsed = parse_calendar(text)
    assert [tz["TZID"] for tz in parsed.walk("VTIMEZONE")] == ["Europe/London"]
    event_ = parsed.walk("VEVENT")[0]
    assert str(event_["UID"]) == "booking-bk-5@clinic"
    assert int(event_["SEQUENCE"]) == 3 and str(event_["STATUS"]) == "CONFIRMED"
    assert event_.decoded("DTSTART") == START + timedelta(weeks=6)
    for private in ("ann@example.org", "+447700900123", "Ann Lee", "ATTENDEE", "ORGANIZER"):
        assert private not in text


def test_cancelled_booking_is_status_cancelled():
    vevent = ical.booking_event(booking_dict(status="cancelled"), summary="x",
                                timezone="Europe/London", dtstamp=START)
    assert str(vevent["STATUS"]) == "CANCELLED"


# ---- invitations ----------------------------------------------------------------------------

def _invite(kind: str, bookings: list[dict], role: str = "client") -> tuple[str, Calendar]:
    payload = {"bookings": bookings, "client": bookings[0]["client"], "course": None}
    method, text = invitation(kind, role, payload, HEAD, organizer="clinic@clinic.example",
                              attendee=("Ann Lee", "ann@example.org"), dtstamp=START,
                              therapist_name="Dr Jo")
    return method, parse_calendar(text)


def test_confirmation_is_a_request_with_the_feed_uid_and_the_reader_only():
    method, cal = _invite("confirmation", [booking_dict()])
    assert method == "REQUEST" == str(cal["METHOD"])
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["UID"]) == ical.event_uid("bk-1")
    assert int(vevent["SEQUENCE"]) == 0
    attendees = vevent["ATTENDEE"]
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert [str(a) for a in attendees] == ["mailto:ann@example.org"]
    assert str(vevent["ORGANIZER"]) == "mailto:clinic@clinic.example"
    assert "Harley Street" in str(vevent["LOCATION"])


def test_reschedule_raises_sequence_and_cancel_is_status_cancelled():
    _, moved = _invite("reschedule", [booking_dict(sequence=1)])
    assert int(moved.walk("VEVENT")[0]["SEQUENCE"]) == 1
    method, cancel = _invite("cancellation", [booking_dict(sequence=2)])
    assert method == "CANCEL" == str(cancel["METHOD"])
    vevent = cancel.walk("VEVENT")[0]
    assert str(vevent["STATUS"]) == "CANCELLED" and int(vevent["SEQUENCE"]) == 2


def test_a_course_is_one_calendar_with_every_session():
    method, cal = _invite("confirmation", course_sessions(16))
    events = cal.walk("VEVENT")
    assert method == "REQUEST" and len(events) == 16
    assert len({str(e["UID"]) for e in events}) == 16
    assert "DIT session 16/16 with Dr Jo" in {str(e["SUMMARY"]) for e in events}
    assert len(cal.walk("VTIMEZONE")) == 1


def test_reminders_and_notices_carry_no_invitation():
    payload = {"bookings": [booking_dict()], "client": {}, "course": None}
    for kind in ("reminder", "course_ending"):
        assert invitation(kind, "client", payload, HEAD, organizer="c@x", attendee=("a", "a@x"),
                          dtstamp=START) is None


# ---- the email ------------------------------------------------------------------------------

def test_email_is_text_html_and_an_invitation_with_its_method_on_the_content_type():
    _, text = invitation("cancellation", "client",
                         {"bookings": [booking_dict()], "client": {}, "course": None}, HEAD,
                         organizer="clinic@clinic.example", attendee=("Ann", "ann@example.org"),
                         dtstamp=START)
    message = mailer.build_email(
        subject="Cancelled", text="plain words", html="<p>html words</p>",
        sender="clinic@clinic.example", sender_name="The Clinic", to="ann@example.org",
        to_name="Ann Lee", message_id=mailer.message_id(7, "clinic@clinic.example"), date=START,
        calendar=("CANCEL", text))
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<notification-7@clinic.example>"
    assert parsed.get_body(("plain",)).get_content().strip() == "plain words"
    assert "html words" in parsed.get_body(("html",)).get_content()
    calendars = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    assert len(calendars) == 2  # inline alternative and the attachment
    assert all(p.get_param("method") == "CANCEL" for p in calendars)
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["invite.ics"]
    assert str(parse_calendar(calendars[0].get_content())["METHOD"]) == "CANCEL"


def test_file_transport_writes_one_file_per_message_even_when_retried(tmp_path):
    transport = mailer.FileTransport(tmp_path / "mail")
    message = mailer.build_email(subject="s", text="t", html="<p>t</p>", sender="c@x.org",
                                 sender_name="C", to="a@x.org", to_name="A",
                                 message_id=mailer.message_id(3, "c@x.org"), date=START)
    transport.send(message)
    transport.send(message)
    files = list((tmp_path / "mail").iterdir())
    assert [f.name for f in files] == ["notification-3_x.org.eml"]
    assert email.message_from_bytes(files[0].read_bytes())["Subject"] == "s"


# ---- letters --------------------------------------------------------------------------------

def _letter(kind: str, role: str, bookings: list[dict], **payload: Any) -> composer.Letter:
    data = {"bookings": bookings, "client": bookings[0]["client"], "course": None, **payload}
    return composer.compose(kind, role, data, HEAD, therapist_name="Dr Jo",
                            manage_link="https://clinic.example/manage?token=mng_abc")


def test_client_letter_gives_type_both_local_times_and_what_in_person_means():
    letter = _letter("confirmation", "client", [booking_dict()])
    assert letter.subject.startswith("Confirmed: your DIT session, Tuesday 2 March 2027")
    text = letter.text
    assert "05:00 EST" in text and "10:00 GMT at the clinic" in text  # client's zone, clinic's
    assert "room garden, 1 Harley Street, London W1" in text and "Ring the bell" in text
    assert "50 minutes" in text
    assert "https://clinic.example/manage?token=mng_abc" in text
    assert 'href="https://clinic.example/manage?token=mng_abc"' in letter.html


@pytest.mark.parametrize(("modality", "role", "expected"), [
    ("video", "client", "join at the start time through this link: https://meet.example/x"),
    ("phone", "client", "Dr Jo will call you on +447700900123"),
    ("phone", "therapist", "please call Ann Lee on +447700900123"),
])
def test_letter_says_what_the_modality_means(modality, role, expected):
    letter = _letter("confirmation", role, [booking_dict(modality=modality, room=None,
                                                        video_url="https://meet.example/x")])
    assert expected in letter.text


def test_therapist_letter_has_no_manage_link_and_uses_the_clinic_zone():
    letter = _letter("confirmation", "therapist", [booking_dict()])
    assert "manage?token" not in letter.text and "EST" not in letter.text
    assert "Ann Lee has booked a DIT session with you." in letter.text


def test_course_letter_lists_sessions_end_date_and_how_to_move_one():
    sessions = course_sessions(16)
    course = {"id": "crs-1", "sessions": 16, "first_start": sessions[0]["start"],
              "last_end": sessions[-1]["end"]}
    letter = _letter("confirmation", "client", sessions, course=course)
    assert "course of 16 DIT sessions" in letter.subject
    assert "Session 16: Tuesday 15 June 2027" in letter.text
    assert "Your course ends on Tuesday 15 June 2027." in letter.text
    assert "To move one session" in letter.text
    single = _letter("reschedule", "client", [sessions[4]], course=course,
                     previous={"start": START.isoformat()})
    assert "DIT session 5 of 16" in single.subject and "moved from" in single.text


def test_html_is_escaped():
    bookings = [booking_dict(client={"name": "<script>x</script>", "email": "a@x.org"})]
    letter = _letter("confirmation", "therapist", bookings)
    assert "<script>" not in letter.html and "&lt;script&gt;" in letter.html


def test_ending_notice_is_kind_about_reflection_and_anxiety():
    sessions = course_sessions(16)[-3:]
    client = _letter("course_ending", "client", sessions, remaining=3)
    therapist = _letter("course_ending", "therapist", sessions, remaining=3)
    assert client.subject == "Your course: the last 3 sessions"
    assert "look back together" in client.text and "anxiety" in client.text
    assert "reflect on what has been learned" in therapist.text and "anxiety" in therapist.text
    assert "Session 14" in client.text and "Session 16" in client.text


def test_sms_reminder_is_short():
    text = composer.sms_text({"bookings": [booking_dict()], "client": booking_dict()["client"]},
                             HEAD)
    assert len(text) <= 160 * 2 and "05:00 EST" in text


# ---- timing ---------------------------------------------------------------------------------

def known(start: datetime, *, scheduled_at: datetime, status: str = "confirmed",
          number: int = 1) -> schedule.KnownSession:
    return schedule.KnownSession(f"bk-{number}", "crs-1", "dr-jo", start,
                                 start + timedelta(minutes=50), status, scheduled_at,
                                 booking_dict(number, start))


def test_reminder_is_due_inside_the_window_only_for_sessions_known_before_it():
    early = known(START, scheduled_at=START - timedelta(days=5))
    opens = START - timedelta(hours=24)
    assert not schedule.reminder_due(early, opens - timedelta(seconds=1), 24)
    assert schedule.reminder_due(early, opens, 24)
    assert schedule.reminder_due(early, START - timedelta(minutes=1), 24)
    assert not schedule.reminder_due(early, START, 24)
    late = known(START, scheduled_at=START - timedelta(hours=3))
    assert not schedule.reminder_due(late, START - timedelta(hours=1), 24)
    assert schedule.reminder_due(late, START - timedelta(hours=1), 2)  # decimals and small H
    cancelled = known(START, scheduled_at=START - timedelta(days=5), status="cancelled")
    assert not schedule.reminder_due(cancelled, START - timedelta(hours=1), 24)


def test_ending_phase_begins_when_the_session_before_the_last_n_has_ended():
    booked = START - timedelta(days=30)
    sessions = [known(START + timedelta(weeks=n), scheduled_at=booked, number=n + 1)
                for n in range(16)]
    thirteenth_ends = sessions[12].end
    assert schedule.ending_phase_starts(sessions, 3) == thirteenth_ends
    assert not schedule.ending_notice_due(sessions, thirteenth_ends - timedelta(seconds=1), 3)
    assert schedule.ending_notice_due(sessions, thirteenth_ends, 3)
    assert not schedule.ending_notice_due(sessions, sessions[15].start, 3)
    # a cancelled session does not count as one that remains
    sessions[14] = known(sessions[14].start, scheduled_at=booked, status="cancelled", number=15)
    assert schedule.ending_phase_starts(sessions, 3) == sessions[11].end
    assert schedule.ending_phase_starts(sessions[:3], 3) is None  # all of it is the ending


def test_manage_link_names_what_the_token_opens():
    assert composer.manage_url("https://clinic.example/", "mng_a-b_c", "course", "c1") == \
        "https://clinic.example/manage?token=mng_a-b_c&course=c1"


# ---- therapists' contacts, kept a few minutes per process ------------------------------------

def test_a_therapists_contact_is_asked_once_while_kept_and_again_after():
    now = [0.0]
    asked: list[str] = []
    book = ContactBook(keep_seconds=300, clock=lambda: now[0])

    def lookup() -> dict:
        asked.append("dr-jo")
        return {"name": "Dr Jo", "email": "jo@clinic.example"}

    assert book.get("dr-jo", lookup)["email"] == "jo@clinic.example"
    book.get("dr-jo", lookup)["email"] = "changed by a caller"  # a copy: the kept one stays
    now[0] = 299.0
    assert book.get("dr-jo", lookup)["email"] == "jo@clinic.example"
    assert asked == ["dr-jo"]
    now[0] = 301.0
    book.get("dr-jo", lookup)
    assert asked == ["dr-jo", "dr-jo"]


def test_a_failed_contact_lookup_is_not_kept():
    book = ContactBook()
    answers = iter([ConnectionError("availability is not answering"), {"email": "jo@x.org"}])

    def lookup() -> dict:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(ConnectionError):
        book.get("dr-jo", lookup)
    assert book.get("dr-jo", lookup) == {"email": "jo@x.org"}


# ---- the mail policy: the same bytes as email.policy.default, for less CPU -------------------

def _flattened(message, **policy_changes: Any) -> bytes:
    """The message as written out, its random MIME boundaries made one fixed word."""
    out = io.BytesIO()
    BytesGenerator(out, policy=message.policy.clone(**policy_changes)).flatten(message)
    data = out.getvalue()
    for boundary in set(re.findall(rb'boundary="([^"]+)"', data)):
        data = data.replace(boundary, b"BOUNDARY")
    return data


@pytest.mark.parametrize("calendar", [None, ("REQUEST", "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n"
                                                        "SUMMARY:Zoë – DIT\r\nEND:VCALENDAR\r\n")])
def test_the_mail_policy_writes_what_the_default_policy_writes(monkeypatch, calendar):
    letter = dict(subject="Confirmed: your DIT session with Dr Amélie Hart, " + "long " * 12,
                  text="Dear Zoë Brontë,\n" + "words " * 40 + "\n", html="<p>Dear Zoë</p>",
                  sender="clinic@clinic.example", sender_name="The Clinic",
                  to="zoe@example.org", to_name="Zoë Brontë",
                  message_id=mailer.message_id(7, "clinic@clinic.example"), date=START,
                  calendar=calendar)
    ours = [mailer.build_email(**letter) for _ in range(2)]  # the second from the kept headers
    monkeypatch.setattr(mailer, "POLICY", policy.default)
    reference = mailer.build_email(**letter)
    for message in ours:
        assert isinstance(message.policy, mailer.MailPolicy)
        for changes in ({}, {"linesep": "\r\n"}, {"linesep": "\r\n", "utf8": True}):
            assert _flattened(message, **changes) == _flattened(reference, **changes)
