"""The availability service's methods through nameko's worker_factory, on SQLite and PostgreSQL.

The database is real (built by the migrations); the clock is a fixed instant we move by hand.
Busy times are fed through the same functions the event handlers call.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from clinic.access import Caller
from clinic.db import UnitOfWork, create_engine_for, is_sqlite
from clinic.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    SlotUnavailable,
    Unauthorized,
)
from clinic.events import Event
from clinic.settings import Settings
from services.availability import demo
from services.availability.service import AvailabilityService

# Monday 1 March 2027, 09:00 UTC; London changes to summer time on Sunday 28 March 2027.
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
ADMIN = Caller(kind="admin").to_rpc()
PUBLIC = Caller().to_rpc()
WEEKDAYS_10_TO_12 = [{"weekday": day, "start": "10:00", "end": "12:00",
                      "modalities": ["in_person", "video"]}
                     for day in ("monday", "tuesday", "wednesday", "thursday", "friday")]


def as_therapist(therapist_id: str) -> dict:
    return Caller(kind="therapist", therapist_id=therapist_id).to_rpc()


class Clinic:
    """A worker of the service plus helpers to set up the clinic and feed it booking events."""

    def __init__(self, uow: UnitOfWork):
        self.now = NOW
        self.uow = uow
        self.worker = worker_factory(AvailabilityService, db=uow, clock=lambda: self.now,
                                     settings=Settings.from_config({}))

    def __getattr__(self, name):
        return getattr(self.worker, name)

    def therapist(self, therapist_id: str = "ann", weekly=None, **policy) -> str:
        self.worker.create_therapist(ADMIN, {"id": therapist_id, "name": "Ann Example",
                                             "email": f"{therapist_id}@clinic.example",
                                             "specialties": ["DIT", "anxiety"],
                                             "modalities": ["in_person", "video"]})
        self.worker.put_schedule(ADMIN, therapist_id,
                                 {"weekly": weekly or WEEKDAYS_10_TO_12, **policy})
        return therapist_id

    def event(self, event_type: str, data: dict, event_id: str | None = None) -> dict:
        payload = Event(event_type, data, "booking").to_payload()
        if event_id:
            payload["id"] = event_id
        getattr(self.worker, f"on_{event_type}")(payload)
        return payload

    def slots(self, therapist_id="ann", modality="video", from_date="2027-03-08",
              to_date="2027-03-08", tz=None, session_type="dit-session") -> list[str]:
        found = self.worker.find_slots(therapist_id, session_type, modality, from_date, to_date,
                                       tz)
        return [slot["start"] for slot in found["slots"]]


@pytest.fixture
def clinic(databases):
    url = databases.new("availability")
    engine = create_engine_for(url)
    yield Clinic(UnitOfWork(engine, threading.Lock() if is_sqlite(url) else None))
    engine.dispose()


def booking(booking_id: str, start: str, minutes: int = 50, *, status: str = "confirmed",
            sequence: int = 0, therapist_id: str = "ann", room: str | None = None,
            buffer: int = 10) -> dict:
    begins = datetime.fromisoformat(start)
    return {"id": booking_id, "status": status, "therapist_id": therapist_id,
            "session_type": "dit-session", "modality": "in_person" if room else "video",
            "start": begins.isoformat(), "end": (begins + timedelta(minutes=minutes)).isoformat(),
            "blocked_end": (begins + timedelta(minutes=minutes + buffer)).isoformat(),
            "room": room, "video_url": None, "course_id": None, "session_number": None,
            "course_sessions": None, "client": {"name": "C", "email": "c@example.com"},
            "sequence": sequence, "late_cancellation": False, "cancelled_by": None,
            "notes_present": False}


def hold(hold_id: str, start: str, expires_at: str, therapist_id: str = "ann") -> dict:
    begins = datetime.fromisoformat(start)
    return {"id": hold_id, "therapist_id": therapist_id, "session_type": "dit-session",
            "modality": "video", "start": begins.isoformat(),
            "end": (begins + timedelta(minutes=50)).isoformat(),
            "blocked_end": (begins + timedelta(minutes=60)).isoformat(), "room": None,
            "expires_at": expires_at}


def field_of(error: pytest.ExceptionInfo) -> str:
    return error.value.details["fields"][0]["field"]


# --- catalogue ---------------------------------------------------------------------------------


def test_the_dit_session_types_are_seeded_and_admin_adds_more(clinic):
    assert clinic.list_session_types() == [
        {"id": "dit-assessment", "name": "DIT assessment", "duration_minutes": 50},
        {"id": "dit-session", "name": "DIT session", "duration_minutes": 50}]
    clinic.create_session_type(ADMIN, {"id": "cbt-session", "name": "CBT", "duration_minutes": 45})
    assert [t["id"] for t in clinic.list_session_types()][0] == "cbt-session"
    with pytest.raises(Conflict):
        clinic.create_session_type(ADMIN, {"id": "cbt-session", "name": "Again",
                                           "duration_minutes": 45})
    with pytest.raises(Unauthorized):
        clinic.create_session_type(PUBLIC, {"id": "x", "name": "X", "duration_minutes": 45})
    with pytest.raises(Forbidden):
        clinic.create_room(as_therapist("ann"), {"id": "r1", "name": "Room"})


def test_therapists_public_view_never_shows_the_email(clinic):
    clinic.therapist("ann")
    created = clinic.create_therapist(ADMIN, {"name": "Bo Jensen", "modalities": ["phone"],
                                              "specialties": ["CBT"], "email": "bo@x.example"})
    assert created["id"] == "bo-jensen" and created["email"] == "bo@x.example"
    assert created["timezone"] == "Europe/London"
    again = clinic.create_therapist(ADMIN, {"name": "Bo Jensen", "modalities": ["phone"]})
    assert again["id"] == "bo-jensen-2"

    public = clinic.get_therapist("ann")
    assert "email" not in public and public["specialties"] == ["anxiety", "DIT"]
    assert all("email" not in t for t in clinic.list_therapists())
    assert [t["id"] for t in clinic.list_therapists("dit", None)] == ["ann"]
    assert [t["id"] for t in clinic.list_therapists(None, "phone")] == ["bo-jensen",
                                                                       "bo-jensen-2"]
    assert clinic.get_therapist_contact("ann") == {
        "id": "ann", "name": "Ann Example", "email": "ann@clinic.example",
        "timezone": "Europe/London"}
    with pytest.raises(NotFound):
        clinic.get_therapist("nobody")
    with pytest.raises(Conflict):
        clinic.create_therapist(ADMIN, {"id": "ann", "name": "Ann", "modalities": ["video"]})
    with pytest.raises(InvalidRequest) as error:
        clinic.create_therapist(ADMIN, {"name": "Z", "modalities": ["video"], "timezone": "Mars/X"})
    assert field_of(error) == "timezone"


def test_therapist_tokens_are_stored_hashed_and_revocable(clinic):
    clinic.therapist("ann")
    token = clinic.issue_therapist_token(ADMIN, "ann")
    assert token.startswith("thr_") and len(token) > 30
    assert clinic.authenticate_therapist(token) == "ann"
    assert clinic.authenticate_therapist(token + "x") is None
    assert clinic.revoke_therapist_tokens(ADMIN, "ann") == 1
    assert clinic.authenticate_therapist(token) is None
    with pytest.raises(Forbidden):
        clinic.issue_therapist_token(as_therapist("ann"), "ann")
    with pytest.raises(NotFound):
        clinic.issue_therapist_token(ADMIN, "nobody")


# --- schedules and time off --------------------------------------------------------------------


def test_a_feed_secret_is_made_once_opens_only_its_feed_and_dies_on_rotation(clinic):
    clinic.therapist("ann")
    clinic.therapist("bob")
    secret = clinic.calendar_feed(as_therapist("ann"), "ann")
    assert secret.startswith("cal_") and len(secret) > 30
    assert clinic.calendar_feed(ADMIN, "ann") == secret  # asking again shows the same URL
    assert clinic.feed_owner(secret)["id"] == "ann"
    assert "email" not in clinic.feed_owner(secret)
    assert clinic.feed_owner(secret + "x") is None
    assert clinic.feed_owner(clinic.calendar_feed(ADMIN, "bob"))["id"] == "bob"

    rotated = clinic.rotate_calendar_feed(as_therapist("ann"), "ann")
    assert rotated != secret
    assert clinic.feed_owner(secret) is None
    assert clinic.feed_owner(rotated)["id"] == "ann"
    assert clinic.calendar_feed(as_therapist("ann"), "ann") == rotated

    with pytest.raises(Forbidden):
        clinic.calendar_feed(as_therapist("bob"), "ann")
    with pytest.raises(Forbidden):
        clinic.rotate_calendar_feed(as_therapist("bob"), "ann")
    with pytest.raises(Unauthorized):
        clinic.calendar_feed(PUBLIC, "ann")
    with pytest.raises(NotFound):
        clinic.calendar_feed(ADMIN, "nobody")
    for not_a_secret in (None, 42, "", "thr_x", "cal_"):
        assert clinic.feed_owner(not_a_secret) is None


def test_a_therapist_changes_its_own_schedule_only(clinic):
    clinic.therapist("ann")
    clinic.therapist("bea")
    mine = clinic.put_schedule(as_therapist("ann"), "ann", {"weekly": WEEKDAYS_10_TO_12[:1]})
    assert mine == {"timezone": "Europe/London", "weekly": WEEKDAYS_10_TO_12[:1],
                    "buffer_minutes": 10, "slot_interval_minutes": 60, "min_notice_hours": 24,
                    "horizon_days": 180}
    assert clinic.get_schedule("ann") == mine
    with pytest.raises(Forbidden):
        clinic.put_schedule(as_therapist("ann"), "bea", {"weekly": []})
    with pytest.raises(Unauthorized):
        clinic.put_schedule(PUBLIC, "ann", {"weekly": []})
    with pytest.raises(NotFound):
        clinic.put_schedule(ADMIN, "nobody", {"weekly": []})


@pytest.mark.parametrize(("data", "field"), [
    ({"weekly": [], "timezone": "Europe/Nowhere"}, "timezone"),
    ({"weekly": [{"weekday": "tues", "start": "10:00", "end": "11:00",
                  "modalities": ["video"]}]}, "weekly.0.weekday"),
    ({"weekly": [{"weekday": "tuesday", "start": "10:00", "end": "09:00",
                  "modalities": ["video"]}]}, "weekly.0.end"),
    ({"weekly": [{"weekday": "tuesday", "start": "9:5", "end": "11:00",
                  "modalities": ["video"]}]}, "weekly.0.start"),
    ({"weekly": [{"weekday": "tuesday", "start": "10:00", "end": "11:00",
                  "modalities": ["carrier-pigeon"]}]}, "weekly.0.modalities.0"),
    ({"weekly": [], "slot_interval_minutes": 0}, "slot_interval_minutes"),
    ({"weekly": [], "colour": "blue"}, "colour"),
])
def test_bad_schedules_are_refused_naming_the_field(clinic, data, field):
    clinic.therapist("ann")
    with pytest.raises(InvalidRequest) as error:
        clinic.put_schedule(ADMIN, "ann", data)
    assert field_of(error) == field


def test_time_off_removes_slots_until_deleted(clinic):
    clinic.therapist("ann")
    assert clinic.slots() == ["2027-03-08T10:00:00+00:00", "2027-03-08T11:00:00+00:00"]
    off = clinic.add_time_off(as_therapist("ann"), "ann", {
        "start": "2027-03-08T11:30:00+01:00", "end": "2027-03-08T12:00:00Z", "reason": "dentist"})
    assert (off["start"], off["end"]) == ("2027-03-08T10:30:00+00:00",
                                          "2027-03-08T12:00:00+00:00")
    assert clinic.slots() == []  # 10:00-10:50 overlaps 10:30; 11:00 too
    assert [t["id"] for t in clinic.list_time_off(ADMIN, "ann")] == [off["id"]]
    with pytest.raises(Forbidden):
        clinic.list_time_off(as_therapist("bea"), "ann")
    with pytest.raises(InvalidRequest) as error:
        clinic.add_time_off(ADMIN, "ann", {"start": "2027-03-08T10:00:00", "end": "2027-03-09"})
    assert field_of(error) == "start"
    with pytest.raises(InvalidRequest) as error:
        clinic.add_time_off(ADMIN, "ann", {"start": "2027-03-08T10:00:00Z",
                                           "end": "2027-03-08T09:00:00Z"})
    assert field_of(error) == "end"
    clinic.delete_time_off(as_therapist("ann"), "ann", off["id"])
    assert len(clinic.slots()) == 2
    with pytest.raises(NotFound):
        clinic.delete_time_off(ADMIN, "ann", off["id"])


# --- slots -------------------------------------------------------------------------------------


def test_slots_keep_local_wall_time_across_the_clocks_change(clinic):
    clinic.therapist("ann", weekly=[{"weekday": "tuesday", "start": "10:00", "end": "12:00",
                                     "modalities": ["video"]}], slot_interval_minutes=30)
    found = clinic.slots(from_date="2027-03-22", to_date="2027-04-04")
    assert found == [
        "2027-03-23T10:00:00+00:00", "2027-03-23T10:30:00+00:00", "2027-03-23T11:00:00+00:00",
        "2027-03-30T10:00:00+01:00", "2027-03-30T10:30:00+01:00", "2027-03-30T11:00:00+01:00"]
    # The same instants in New York's offsets, and the days read in that zone.
    in_new_york = clinic.slots(from_date="2027-03-30", to_date="2027-03-30",
                               tz="America/New_York")
    assert in_new_york == ["2027-03-30T05:00:00-04:00", "2027-03-30T05:30:00-04:00",
                           "2027-03-30T06:00:00-04:00"]


def test_slots_respect_notice_and_horizon(clinic):
    clinic.therapist("ann", min_notice_hours=48, horizon_days=10)
    clinic.now = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)  # Monday
    assert clinic.slots(from_date="2027-03-08", to_date="2027-03-10") == [
        "2027-03-10T10:00:00+00:00", "2027-03-10T11:00:00+00:00"]
    assert clinic.slots(from_date="2027-03-17", to_date="2027-03-20") == [
        "2027-03-17T10:00:00+00:00", "2027-03-17T11:00:00+00:00"]  # horizon: 18th 09:00


@pytest.mark.parametrize(("args", "field"), [
    ({"session_type": "karaoke"}, "session_type"),
    ({"modality": "telepathy"}, "modality"),
    ({"tz": "Not/AZone"}, "tz"),
    ({"from_date": "2027-03-09", "to_date": "2027-03-08"}, "to"),
    ({"from_date": "2027-03-01", "to_date": "2027-06-01"}, "to"),
    ({"from_date": "01/03/2027"}, "from"),
])
def test_bad_slot_searches_are_400_naming_the_field(clinic, args, field):
    clinic.therapist("ann")
    with pytest.raises(InvalidRequest) as error:
        clinic.slots(**args)
    assert field_of(error) == field


def test_a_92_day_range_is_the_longest_allowed_and_unknown_therapists_are_404(clinic):
    clinic.therapist("ann")
    assert len(clinic.slots(from_date="2027-03-01", to_date="2027-05-31")) > 100
    with pytest.raises(NotFound):
        clinic.slots(therapist_id="nobody")


def test_bookings_and_holds_block_with_the_buffer(clinic):
    clinic.therapist("ann", weekly=[{"weekday": "monday", "start": "09:00", "end": "13:00",
                                     "modalities": ["video"]}], slot_interval_minutes=30)
    assert len(clinic.slots()) == 7  # 09:00 .. 12:00
    # 10:00-10:50 plus 10 minutes buffer blocks 09:00? no: 09:00-09:50 +10 = 10:00, touching.
    clinic.event("booking_confirmed", {"booking": booking("b1", "2027-03-08T10:00:00+00:00")})
    assert clinic.slots() == ["2027-03-08T09:00:00+00:00", "2027-03-08T11:00:00+00:00",
                              "2027-03-08T11:30:00+00:00", "2027-03-08T12:00:00+00:00"]
    clinic.event("hold_placed", {"hold": hold("h1", "2027-03-08T11:30:00+00:00",
                                              "2027-03-01T09:10:00+00:00")})
    assert clinic.slots() == ["2027-03-08T09:00:00+00:00"]
    clinic.now += timedelta(minutes=11)  # the hold lapsed, though no release came yet
    assert len(clinic.slots()) == 4


def test_an_extended_hold_keeps_its_later_expiry_whatever_order_the_news_comes_in(clinic):
    clinic.therapist("ann")
    ten, eleven = "2027-03-08T10:00:00+00:00", "2027-03-08T11:00:00+00:00"
    placed = hold("h1", ten, "2027-03-01T09:10:00+00:00")
    extended = hold("h1", ten, "2027-03-01T09:25:00+00:00")
    clinic.event("hold_placed", {"hold": placed})
    clinic.event("hold_placed", {"hold": extended})
    clinic.now += timedelta(minutes=11)  # past the first expiry, inside the extension
    assert clinic.slots() == [eleven]
    # The older placement arriving late does not shorten the hold again.
    clinic.event("hold_placed", {"hold": placed})
    assert clinic.slots() == [eleven]
    clinic.now += timedelta(minutes=15)
    assert clinic.slots() == [ten, eleven]
    # An ended hold stays ended: an extension's news after its release does not revive it.
    clinic.now -= timedelta(minutes=15)
    clinic.event("hold_released", {"hold": extended, "reason": "released"})
    clinic.event("hold_placed", {"hold": hold("h1", ten, "2027-03-01T09:40:00+00:00")})
    assert clinic.slots() == [ten, eleven]


def test_in_person_needs_a_free_room(clinic):
    clinic.therapist("ann")
    clinic.therapist("bea")
    assert clinic.slots(modality="in_person") == []  # the clinic has no room yet
    clinic.create_room(ADMIN, {"id": "garden", "name": "Garden room"})
    assert len(clinic.slots(modality="in_person")) == 2
    # Bea takes the only room at 10:00: Ann keeps 10:00 by video, not in person.
    clinic.event("booking_confirmed", {"booking": booking(
        "b1", "2027-03-08T10:00:00+00:00", therapist_id="bea", room="garden")})
    assert clinic.slots(modality="in_person") == ["2027-03-08T11:00:00+00:00"]
    assert len(clinic.slots(modality="video")) == 2
    clinic.create_room(ADMIN, {"id": "library", "name": "Library"})
    assert len(clinic.slots(modality="in_person")) == 2


def test_events_out_of_order_or_twice_leave_the_busy_table_right(clinic):
    clinic.therapist("ann")
    ten, eleven = "2027-03-08T10:00:00+00:00", "2027-03-08T11:00:00+00:00"
    # A cancellation overtakes its confirmation: the older news must not revive the booking.
    clinic.event("booking_cancelled", {"booking": booking("b1", ten, status="cancelled",
                                                          sequence=1)})
    clinic.event("booking_confirmed", {"booking": booking("b1", ten)})
    assert clinic.slots() == [ten, eleven]
    # A reschedule overtakes its confirmation: the booking stays at its new time.
    clinic.event("booking_rescheduled", {"booking": booking("b2", eleven, sequence=1),
                                         "previous": {"start": ten}})
    clinic.event("booking_confirmed", {"booking": booking("b2", ten)})
    assert clinic.slots() == [ten]
    # A release overtakes its hold; then the same hold event twice.
    placed = hold("h1", ten, "2027-03-08T00:00:00+00:00")
    clinic.event("hold_released", {"hold": placed, "reason": "released"})
    first = clinic.event("hold_placed", {"hold": placed})
    clinic.event("hold_placed", {"hold": placed}, event_id=first["id"])
    assert clinic.slots() == [ten]


def test_courses_booked_and_cancelled_update_every_week(clinic):
    clinic.therapist("ann")
    weeks = [booking(f"c{n}", (datetime(2027, 3, 8, 10, tzinfo=UTC) + timedelta(weeks=n))
                     .isoformat()) for n in range(3)]
    course = {"id": "k1", "therapist_id": "ann", "sessions": weeks, "status": "active"}
    clinic.event("course_booked", {"course": course})
    assert clinic.slots(from_date="2027-03-15", to_date="2027-03-15") == [
        "2027-03-15T11:00:00+00:00"]
    cancelled = [{**b, "status": "cancelled", "sequence": 1} for b in weeks[1:]]
    clinic.event("course_cancelled", {"course": {**course, "status": "cancelled"},
                                      "cancelled": cancelled})
    assert len(clinic.slots(from_date="2027-03-15", to_date="2027-03-15")) == 2
    assert clinic.slots(from_date="2027-03-08", to_date="2027-03-08") == [
        "2027-03-08T11:00:00+00:00"]


# --- what the booking service asks -------------------------------------------------------------


def test_check_session_ignores_busy_times_but_not_the_schedule(clinic):
    clinic.therapist("ann")
    clinic.create_room(ADMIN, {"id": "garden", "name": "Garden room"})
    clinic.event("booking_confirmed", {"booking": booking("b1", "2027-03-08T10:00:00+00:00",
                                                          room="garden")})
    checked = clinic.check_session("ann", "dit-session", "in_person", "2027-03-08T10:00:00Z")
    assert checked == {
        "therapist_id": "ann", "session_type": "dit-session", "modality": "in_person",
        "start": "2027-03-08T10:00:00+00:00", "end": "2027-03-08T10:50:00+00:00",
        "duration_minutes": 50, "buffer_minutes": 10, "rooms": ["garden"],
        "timezone": "Europe/London"}
    assert clinic.check_session("ann", "dit-session", "video", "2027-03-08T10:00:00Z")[
        "rooms"] == []
    for start in ("2027-03-08T10:30:00Z", "2027-03-06T10:00:00Z", "2027-03-01T10:00:00Z"):
        with pytest.raises(SlotUnavailable):
            clinic.check_session("ann", "dit-session", "video", start)
    with pytest.raises(InvalidRequest) as error:
        clinic.check_session("ann", "dit-session", "video", "2027-03-08T10:00:00")
    assert field_of(error) == "start"
    with pytest.raises(NotFound):
        clinic.check_session("nobody", "dit-session", "video", "2027-03-08T10:00:00Z")


def test_check_course_lists_its_weeks_and_the_conflicting_ones(clinic):
    clinic.therapist("ann")
    clinic.add_time_off(ADMIN, "ann", {"start": "2027-03-29T00:00:00+01:00",
                                       "end": "2027-04-05T00:00:00+01:00"})
    checked = clinic.check_course("ann", "dit-session", "video", "2027-03-08T10:00:00Z", 4,
                                  ["2027-03-17"])
    assert [s["start"] for s in checked["sessions"]] == [
        "2027-03-08T10:00:00+00:00", "2027-03-22T10:00:00+00:00", "2027-03-29T09:00:00+00:00",
        "2027-04-05T09:00:00+00:00"]  # 10:00 London each week; the week of the 17th skipped
    assert checked["conflicts"] == ["2027-03-29T09:00:00+00:00"]
    with pytest.raises(InvalidRequest) as error:
        clinic.check_course("ann", "dit-session", "video", "2027-03-08T10:00:00Z", 53, [])
    assert field_of(error) == "sessions"


def test_course_options_are_exact_over_every_week(clinic):
    clinic.therapist("ann", weekly=[{"weekday": "tuesday", "start": "10:00", "end": "12:00",
                                     "modalities": ["in_person", "video"]}])
    clinic.create_room(ADMIN, {"id": "garden", "name": "Garden room"})

    def options(**kwargs) -> list[tuple[str, str, int, str]]:
        found = clinic.course_options("ann", "dit-session", kwargs.pop("modality", "video"),
                                      kwargs.pop("sessions", 16), "2027-03-08", None,
                                      kwargs.pop("skip_weeks", None))
        return [(o["weekday"], o["local_time"], len(o["sessions"]), o["sessions"][-1])
                for o in found["options"]]

    assert options() == [("tuesday", "10:00", 16, "2027-06-22T10:00:00+01:00"),
                         ("tuesday", "11:00", 16, "2027-06-22T11:00:00+01:00")]
    # Only week 16 of the 10:00 course is taken: that option goes, the 11:00 one stays.
    clinic.event("booking_confirmed", {"booking": booking("b16", "2027-06-22T09:00:00+00:00")})
    assert [o[1] for o in options()] == ["11:00"]
    assert [o[1] for o in options(sessions=15)] == ["10:00", "11:00"]
    # Skipping the week of 2027-06-22 moves the 16th session a week on: 10:00 is free again.
    assert options(skip_weeks=["2027-06-24"]) == [
        ("tuesday", "10:00", 16, "2027-06-29T10:00:00+01:00"),
        ("tuesday", "11:00", 16, "2027-06-29T11:00:00+01:00")]
    # In person: another therapist holds the only room at 11:00 in week 9.
    clinic.event("booking_confirmed", {"booking": booking(
        "r9", "2027-05-04T10:00:00+00:00", therapist_id="bea", room="garden")})
    assert options(modality="in_person") == []
    assert [o[1] for o in options(modality="in_person", sessions=8)] == ["10:00", "11:00"]


# --- the demo clinic ---------------------------------------------------------------------------


def test_the_demo_clinic_loads_once_and_offers_slots(clinic):
    assert demo.load_demo_clinic(clinic.uow) is True
    assert demo.load_demo_clinic(clinic.uow) is False
    therapists = clinic.list_therapists()
    assert len(therapists) == 3 and len(clinic.list_rooms()) == 2
    assert len(clinic.list_therapists("DIT", None)) == 2
    for therapist in therapists:
        modality = therapist["modalities"][-1]
        assert clinic.slots(therapist["id"], modality, "2027-03-08", "2027-03-14")


# --- computed searches reused (search_cache) ---------------------------------------------------


def test_a_search_reused_in_one_process_sees_what_another_process_changed(clinic, databases):
    """Two availability processes on one database, each with its own computed searches."""
    clinic.therapist("ann")
    other_engine = create_engine_for(str(clinic.uow.engine.url))
    other = Clinic(UnitOfWork(other_engine, clinic.uow.write_lock))
    try:
        assert clinic.slots(modality="in_person") == []  # no room yet, in both
        assert other.slots(modality="in_person") == []
        other.create_room(ADMIN, {"id": "garden", "name": "Garden room"})
        assert len(clinic.slots(modality="in_person")) == 2
        assert len(clinic.slots()) == 2 and len(other.slots()) == 2  # both computed now
        other.event("booking_confirmed", {"booking": booking("b1", "2027-03-08T10:00:00+00:00")})
        assert clinic.slots() == ["2027-03-08T11:00:00+00:00"]
        other.add_time_off(ADMIN, "ann", {"start": "2027-03-08T11:00:00Z",
                                          "end": "2027-03-08T12:00:00Z"})
        assert clinic.slots() == []
        # Another therapist taking the only room changes Ann's in-person slots too.
        clinic.event("booking_cancelled", {"booking": booking(
            "b1", "2027-03-08T10:00:00+00:00", status="cancelled", sequence=1)})
        other.delete_time_off(ADMIN, "ann", clinic.list_time_off(ADMIN, "ann")[0]["id"])
        assert len(other.slots(modality="in_person")) == 2
        clinic.therapist("bea")
        clinic.event("booking_confirmed", {"booking": booking(
            "r1", "2027-03-08T10:00:00+00:00", therapist_id="bea", room="garden")})
        assert other.slots(modality="in_person") == ["2027-03-08T11:00:00+00:00"]
        clinic.put_schedule(ADMIN, "ann", {"weekly": WEEKDAYS_10_TO_12, "buffer_minutes": 0,
                                           "slot_interval_minutes": 30})
        assert len(other.slots()) == 3
    finally:
        other_engine.dispose()


def test_a_reused_search_never_offers_a_start_that_became_too_soon(clinic):
    clinic.therapist("ann", min_notice_hours=24, horizon_days=10)
    clinic.now = datetime(2027, 3, 7, 9, 30, tzinfo=UTC)  # Sunday
    assert clinic.slots(from_date="2027-03-08", to_date="2027-03-18") == [
        f"2027-03-{day:02d}T{hour}:00:00+00:00" for day in (8, 9, 10, 11, 12, 15, 16)
        for hour in (10, 11)]  # the horizon ends on the 17th at 09:30
    clinic.now += timedelta(minutes=31)
    found = clinic.slots(from_date="2027-03-08", to_date="2027-03-18")
    # Monday 10:00 is less than 24 hours ahead now; Wednesday 17th 10:00 came within the horizon.
    assert found[0] == "2027-03-08T11:00:00+00:00" and found[-1] == "2027-03-17T10:00:00+00:00"
    clinic.now = datetime(2027, 3, 8, 10, 0, tzinfo=UTC)
    found = clinic.slots(from_date="2027-03-08", to_date="2027-03-18")
    assert found[0] == "2027-03-09T10:00:00+00:00" and found[-1] == "2027-03-18T10:00:00+00:00"


def test_reused_course_options_move_on_with_the_notice_and_the_day(clinic):
    clinic.therapist("ann", weekly=[{"weekday": "tuesday", "start": "10:00", "end": "12:00",
                                     "modalities": ["video"]}], min_notice_hours=24)

    def firsts(from_date=None) -> list[str]:
        found = clinic.course_options("ann", "dit-session", "video", 4, from_date, None, None)
        return [option["sessions"][0] for option in found["options"]]

    clinic.now = datetime(2027, 3, 8, 9, 30, tzinfo=UTC)  # Monday
    assert firsts() == ["2027-03-09T10:00:00+00:00", "2027-03-09T11:00:00+00:00"]
    clinic.now += timedelta(minutes=31)  # Tuesday 10:00 is too soon now: its course moves on
    assert firsts() == ["2027-03-09T11:00:00+00:00", "2027-03-16T10:00:00+00:00"]
    clinic.event("hold_placed", {"hold": hold("h1", "2027-03-30T10:00:00+00:00",  # 11:00 BST
                                              "2027-03-08T10:30:00+00:00")})
    assert firsts("2027-03-08") == ["2027-03-16T10:00:00+00:00"]  # the 11:00 course's week 4
    clinic.now += timedelta(minutes=30)  # the hold lapsed, no release came
    assert firsts("2027-03-08") == ["2027-03-09T11:00:00+00:00", "2027-03-16T10:00:00+00:00"]
