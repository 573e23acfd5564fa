"""The therapist's notice that their outside calendar now overlaps a booking: once, to them only,
with no invitation and nothing from the outside calendar but its times."""

from __future__ import annotations

from clinic.events import Event
from services.notifications import composer, notices
from services.notifications.invitations import invitation

HEAD = composer.Letterhead("The Clinic", "Europe/London", "1 Harley Street, London W1",
                           "Ring the bell.", "https://clinic.example")
DATA = {"therapist_id": "dr-jo", "booking_id": "b-1", "start": "2027-03-09T10:00:00+00:00",
        "end": "2027-03-09T10:50:00+00:00", "busy_start": "2027-03-09T09:00:00+00:00",
        "busy_end": "2027-03-09T11:00:00+00:00"}
BOOKING = {"id": "b-1", "therapist_id": "dr-jo", "session_type": "dit-session",
           "modality": "video", "start": DATA["start"], "end": DATA["end"],
           "client": {"name": "Ann Lee", "email": "ann@example.org"}}


def test_one_notice_per_booking_and_time_to_the_therapist():
    first = notices.outside_conflict(Event("outside_conflict_found", DATA, "availability")
                                     .to_payload(), BOOKING)
    again = notices.outside_conflict(Event("outside_conflict_found", DATA, "availability")
                                     .to_payload(), None)
    assert first.dedupe_key == again.dedupe_key  # a second event for it finds the row there
    assert (first.kind, first.recipient_role, first.recipient) == ("outside_conflict",
                                                                    "therapist", None)
    assert again.payload["bookings"][0]["start"] == DATA["start"]  # booking not known: times


def test_the_letter_says_the_booking_stands_and_carries_no_invitation():
    notice = notices.outside_conflict(Event("outside_conflict_found", DATA, "availability")
                                      .to_payload(), BOOKING)
    letter = composer.compose("outside_conflict", "therapist", notice.payload, HEAD,
                              therapist_name="Jo Marsh")
    assert letter.subject.startswith("Check your calendar: DIT session")
    assert "The booking stands" in letter.text
    assert invitation("outside_conflict", "therapist", notice.payload, HEAD,
                      organizer="clinic@clinic.example", attendee=("Jo", "jo@clinic.example"),
                      dtstamp=None) is None
