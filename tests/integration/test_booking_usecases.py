"""The booking service's methods through nameko's worker_factory, on SQLite and PostgreSQL.

The database is real (migrated, on both backends); the availability RPC is replaced by a small
double that answers as availability's check_session and check_course do (the other integration
and the end-to-end tests run the real AvailabilityService).
"""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from nameko.testing.services import worker_factory

from clinic.access import Caller
from clinic.db import UnitOfWork, create_engine_for
from clinic.errors import (
    CourseConflict,
    HoldExpired,
    IdempotencyConflict,
    InvalidState,
    NotFound,
    SlotUnavailable,
    Unauthorized,
)
from clinic.settings import Settings
from services.booking.models import bookings, courses, idempotency_keys, outbox
from services.booking.service import BookingService

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
START = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)  # a Tuesday
ADMIN = Caller(kind="admin").to_rpc()
THERAPIST = Caller(kind="therapist", therapist_id="t1").to_rpc()
CLIENT = {"name": "Ada", "email": "ada@example.org"}


def iso(moment: datetime) -> str:
    return moment.isoformat()


class Availability:
    """check_session / check_course as the contract describes them: 50-minute sessions, a
    10-minute buffer, whole hours only, two rooms for in-person sessions, and a date list of
    time off."""

    def __init__(self):
        self.time_off: set[date] = set()

    def _check(self, therapist_id, session_type, modality, start: datetime) -> dict | None:
        if start.minute or start.date() in self.time_off:
            return None
        return {"therapist_id": therapist_id, "session_type": session_type,
                "modality": modality, "start": iso(start),
                "end": iso(start + timedelta(minutes=50)), "duration_minutes": 50,
                "buffer_minutes": 10,
                "rooms": ["room-a", "room-b"] if modality == "in_person" else [],
                "timezone": "Europe/London"}

    def check_session(self, therapist_id, session_type, modality, start):
        checked = self._check(therapist_id, session_type, modality,
                              datetime.fromisoformat(start))
        if checked is None:
            raise SlotUnavailable("Not offered.")
        return checked

    def check_course(self, therapist_id, session_type, modality, first_start, sessions,
                     skip_weeks):
        first = datetime.fromisoformat(first_start)
        skips = {date.fromisoformat(d) for d in skip_weeks}
        planned, conflicts, week = [], [], 0
        while len(planned) < sessions:
            start = first + timedelta(weeks=week)
            week += 1
            monday = start.date() - timedelta(days=start.weekday())
            if any(monday <= d < monday + timedelta(days=7) for d in skips):
                continue
            planned.append({"start": iso(start), "end": iso(start + timedelta(minutes=50))})
            if self._check(therapist_id, session_type, modality, start) is None:
                conflicts.append(iso(start))
        return {"therapist_id": therapist_id, "session_type": session_type,
                "modality": modality, "duration_minutes": 50, "buffer_minutes": 10,
                "rooms": ["room-a", "room-b"] if modality == "in_person" else [],
                "timezone": "Europe/London", "sessions": planned, "conflicts": conflicts}

    def get_therapist(self, therapist_id):
        return {"id": therapist_id, "timezone": "Europe/London"}


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def uow(databases):
    url = databases.new("booking")
    engine = create_engine_for(url)
    import threading

    yield UnitOfWork(engine, threading.Lock() if url.startswith("sqlite") else None)
    engine.dispose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(uow, clock):
    return worker_factory(BookingService, db=uow, clock=clock, availability=Availability(),
                          settings=Settings.from_config({
                              "HOLD_MINUTES": "10", "CANCELLATION_NOTICE_HOURS": "48",
                              "CLINIC_VIDEO_BASE_URL": "https://meet.example",
                              "CLINIC_TIMEZONE": "Europe/London"}))


def request(start=START, therapist="t1", modality="video", **extra):
    return {"therapist_id": therapist, "session_type": "dit", "modality": modality,
            "start": iso(start), "client": CLIENT, **extra}


def events(uow, calendars: bool = False) -> list[tuple[str, dict]]:
    """The outbox's events in order (without the gateway's ids-only ``calendar_changed``
    unless ``calendars``)."""
    with uow.reading() as session:
        rows = session.execute(sa.select(outbox.c.type, outbox.c.payload).where(
            sa.true() if calendars else outbox.c.type != "calendar_changed")
            .order_by(outbox.c.seq)).all()
    return [(kind, payload["data"]) for kind, payload in rows]


def count(uow, table, *where) -> int:
    with uow.reading() as session:
        return session.execute(sa.select(sa.func.count()).select_from(table).where(*where)
                               ).scalar_one()


def key(name: str) -> str:
    """An Idempotency-Key named ``name``, long enough for the service (16 to 255 characters)."""
    return f"{name}-idempotency-key"


def manage(token: str) -> dict:
    return Caller(kind="manage", token=token).to_rpc()


def test_a_booking_takes_the_therapists_time_including_the_buffer(service, uow):
    booking = service.create_booking(request())
    assert booking["status"] == "confirmed" and booking["manage_token"].startswith("mng_")
    assert booking["blocked_end"] == iso(START + timedelta(hours=1))
    assert booking["video_url"] == f"https://meet.example/{booking['id']}"
    for start in (START, START + timedelta(minutes=0), START - timedelta(hours=0)):
        with pytest.raises(SlotUnavailable):
            service.create_booking(request(start))
    # the next hour starts exactly where the buffer ends: free
    assert service.create_booking(request(START + timedelta(hours=1)))["status"] == "confirmed"
    # another therapist at the same time: free
    assert service.create_booking(request(therapist="t2"))["status"] == "confirmed"
    assert [kind for kind, _ in events(uow)] == ["booking_confirmed"] * 3
    data = events(uow)[0][1]["booking"]
    assert data["sequence"] == 0 and data["client"]["email"] == "ada@example.org"


def test_in_person_sessions_take_a_free_room_and_run_out_of_rooms(service):
    rooms = [service.create_booking(request(therapist=t, modality="in_person"))["room"]
             for t in ("t1", "t2")]
    assert sorted(rooms) == ["room-a", "room-b"]
    with pytest.raises(SlotUnavailable):
        service.create_booking(request(therapist="t3", modality="in_person"))
    # video needs no room
    assert service.create_booking(request(therapist="t3"))["room"] is None


def test_a_hold_blocks_until_it_expires_then_frees_the_slot_by_itself(service, uow, clock):
    hold = service.place_hold("t1", "dit", "video", iso(START))
    assert hold["expires_at"] == iso(NOW + timedelta(minutes=10))
    with pytest.raises(SlotUnavailable):
        service.create_booking(request())
    clock.now = NOW + timedelta(minutes=10)
    with pytest.raises(HoldExpired):
        service.create_booking(request(hold_id=hold["id"]), None, manage(hold["manage_token"]))
    other = service.create_booking(request())  # the expired hold frees the slot
    assert other["status"] == "confirmed"
    kinds = [(kind, data.get("reason")) for kind, data in events(uow)]
    assert kinds == [("hold_placed", None), ("hold_released", "expired"),
                     ("booking_confirmed", None)]
    with pytest.raises(HoldExpired):
        service.create_booking(request(hold_id=hold["id"]), None, manage(hold["manage_token"]))


def test_a_hold_is_extended_once_by_its_owner_and_then_lapses_on_its_new_time(
        service, uow, clock):
    hold = service.place_hold("t1", "dit", "video", iso(START))
    owner = manage(hold["manage_token"])
    with pytest.raises(Unauthorized):
        service.extend_hold(Caller(kind="public").to_rpc(), hold["id"])
    stranger = service.place_hold("t1", "dit", "video", iso(START + timedelta(hours=2)))
    with pytest.raises(NotFound):  # another hold's token does not reach this one
        service.extend_hold(manage(stranger["manage_token"]), hold["id"])
    clock.now = NOW + timedelta(minutes=8)
    extended = service.extend_hold(owner, hold["id"])
    assert extended["expires_at"] == iso(NOW + timedelta(minutes=18))
    assert extended["status"] == "held" and "manage_token" not in extended
    with pytest.raises(InvalidState):  # once only
        service.extend_hold(owner, hold["id"])
    clock.now = NOW + timedelta(minutes=12)  # past the first expiry: still held
    service.expire_holds()
    with pytest.raises(SlotUnavailable):
        service.create_booking(request())
    placed = [data["hold"]["expires_at"] for kind, data in events(uow) if kind == "hold_placed"]
    assert placed[-1] == iso(NOW + timedelta(minutes=18))  # availability hears the new expiry
    clock.now = NOW + timedelta(minutes=18)
    service.expire_holds()
    assert count(uow, bookings, bookings.c.id == hold["id"],
                 bookings.c.status == "expired") == 1
    with pytest.raises(HoldExpired):
        service.extend_hold(owner, hold["id"])


def test_an_expired_or_used_hold_cannot_be_extended(service, clock):
    late = service.place_hold("t1", "dit", "video", iso(START))
    clock.now = NOW + timedelta(minutes=10)  # at its expiry, before the timer marks it
    with pytest.raises(HoldExpired):
        service.extend_hold(manage(late["manage_token"]), late["id"])
    used = service.place_hold("t1", "dit", "video", iso(START + timedelta(hours=2)))
    service.create_booking(request(START + timedelta(hours=2), hold_id=used["id"]), None,
                           manage(used["manage_token"]))
    with pytest.raises(InvalidState):
        service.extend_hold(manage(used["manage_token"]), used["id"])


def test_the_timer_expires_holds_once(service, uow, clock):
    service.place_hold("t1", "dit", "video", iso(START))
    service.expire_holds()
    assert count(uow, bookings, bookings.c.status == "held") == 1
    clock.now = NOW + timedelta(minutes=11)
    service.expire_holds()
    service.expire_holds()
    assert [kind for kind, _ in events(uow)] == ["hold_placed", "hold_released"]


def test_a_hold_becomes_the_booking(service, uow):
    hold = service.place_hold("t1", "dit", "in_person", iso(START))
    booking = service.create_booking(request(modality="in_person", hold_id=hold["id"]), None,
                                     manage(hold["manage_token"]))
    assert booking["room"] == hold["room"]
    assert [(k, d.get("reason")) for k, d in events(uow)] == [
        ("hold_placed", None), ("hold_released", "converted"), ("booking_confirmed", None)]
    with pytest.raises(InvalidState):
        service.create_booking(request(modality="in_person", hold_id=hold["id"]), None,
                                     manage(hold["manage_token"]))
    with pytest.raises(NotFound):  # a hold is not a booking
        service.get_booking(ADMIN, hold["id"])


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(service, uow, clock):
    first = service.create_booking(request(), key("key-1"))
    again = service.create_booking(request(), key("key-1"))
    assert again["id"] == first["id"] and again["start"] == first["start"]
    assert again["manage_token"] != first["manage_token"]  # a fresh, equally valid token
    assert service.get_booking(manage(again["manage_token"]), first["id"])["id"] == first["id"]
    with pytest.raises(IdempotencyConflict):
        service.create_booking(request(START + timedelta(hours=2)), key("key-1"))
    assert count(uow, bookings) == 1
    # keys live 24 hours
    clock.now = NOW + timedelta(hours=24, seconds=1)
    service.clean_idempotency_keys()
    assert count(uow, idempotency_keys) == 0
    later = service.create_booking(request(START + timedelta(hours=2)), key("key-1"))
    assert later["id"] != first["id"]


def test_a_failed_request_does_not_claim_its_key(service, uow):
    service.create_booking(request())
    with pytest.raises(SlotUnavailable):
        service.create_booking(request(), key("key-2"))
    assert count(uow, idempotency_keys) == 0


def test_two_therapists_booking_in_person_at_once_get_the_two_rooms(service, uow):
    # Both transactions see room-a free; the second must take room-b, not fail on room-a.
    import eventlet

    starts = [START + timedelta(hours=h) for h in range(4)]
    pool = eventlet.GreenPool()
    made = list(pool.imap(lambda args: service.create_booking(request(
        args[0], therapist=args[1], modality="in_person")),
        [(start, therapist) for start in starts for therapist in ("t1", "t2")]))
    rooms = {(booking["start"], booking["room"]) for booking in made}
    assert len(made) == len(rooms) == 8


def test_a_repeated_change_with_its_key_answers_what_was_done(service, uow):
    # What RabbitMQ does when a booking process dies between its commit and its answer: the
    # same call, with the same key, reaches another process. It must not be a 409.
    booking = service.create_booking(request())
    owner = manage(booking["manage_token"])
    later = iso(START + timedelta(hours=3))
    moved = service.reschedule_booking(owner, booking["id"], later, key("move-1"))
    assert service.reschedule_booking(owner, booking["id"], later, key("move-1")) == moved
    cancelled = service.cancel_booking(owner, booking["id"], "ill", key("cancel-1"))
    assert service.cancel_booking(owner, booking["id"], "ill", key("cancel-1")) == cancelled
    with pytest.raises(InvalidState):  # a new request is still refused
        service.cancel_booking(owner, booking["id"], "ill", key("cancel-2"))
    with pytest.raises(IdempotencyConflict):  # and a key stands for one request only
        service.cancel_booking(owner, booking["id"], "other reason", key("cancel-1"))
    assert [kind for kind, _ in events(uow)].count("booking_cancelled") == 1
    assert [kind for kind, _ in events(uow)].count("booking_rescheduled") == 1

    course = service.create_course(course_request(), key("course-1"))
    first = service.cancel_course(manage(course["manage_token"]), course["id"], None, key("stop-1"))
    again = service.cancel_course(manage(course["manage_token"]), course["id"], None, key("stop-1"))
    assert again == first and again["status"] == "cancelled"
    assert [kind for kind, _ in events(uow)].count("course_cancelled") == 1


def test_a_repeated_hold_with_its_key_is_the_same_hold(service, uow):
    first = service.place_hold("t1", "dit", "video", iso(START), key("hold-1"))
    again = service.place_hold("t1", "dit", "video", iso(START), key("hold-1"))
    assert again["id"] == first["id"] and again["manage_token"] != first["manage_token"]
    service.release_hold(manage(again["manage_token"]), first["id"])  # the new token works
    with pytest.raises(IdempotencyConflict):
        service.place_hold("t1", "dit", "video", iso(START + timedelta(hours=1)), key("hold-1"))
    assert [kind for kind, _ in events(uow)].count("hold_placed") == 1


def test_a_repeat_is_authorised_before_it_is_answered(service):
    booking = service.create_booking(request())
    service.cancel_booking(manage(booking["manage_token"]), booking["id"], None, key("cancel-1"))
    stranger = service.create_booking(request(START + timedelta(hours=5)))
    with pytest.raises((NotFound, Unauthorized)):
        service.cancel_booking(manage(stranger["manage_token"]), booking["id"], None,
                               key("cancel-1"))


def test_cancellation_policy(service, clock):
    client_booking = service.create_booking(request())
    clock.now = START - timedelta(hours=47)
    cancelled = service.cancel_booking(manage(client_booking["manage_token"]),
                                       client_booking["id"], "ill")
    assert (cancelled["status"], cancelled["late_cancellation"], cancelled["cancelled_by"]) == (
        "cancelled", True, "client")
    assert cancelled["sequence"] == 1
    with pytest.raises(InvalidState):
        service.cancel_booking(manage(client_booking["manage_token"]), client_booking["id"])
    therapist_booking = service.create_booking(request())  # the slot is free again
    cancelled = service.cancel_booking(THERAPIST, therapist_booking["id"])
    assert (cancelled["late_cancellation"], cancelled["cancelled_by"]) == (False, "therapist")


def test_early_client_cancellation_is_not_late(service):
    booking = service.create_booking(request(START + timedelta(days=3)))
    cancelled = service.cancel_booking(manage(booking["manage_token"]), booking["id"])
    assert cancelled["late_cancellation"] is False


def test_only_the_owner_therapist_or_admin_see_a_booking(service):
    booking = service.create_booking(request())
    stranger = service.create_booking(request(therapist="t2"))
    with pytest.raises(Unauthorized):
        service.get_booking(None, booking["id"])
    for caller in (manage(stranger["manage_token"]),
                   Caller(kind="therapist", therapist_id="t2").to_rpc()):
        with pytest.raises(NotFound):
            service.get_booking(caller, booking["id"])
    for caller in (manage(booking["manage_token"]), THERAPIST, ADMIN):
        assert service.get_booking(caller, booking["id"])["id"] == booking["id"]


def test_attendance_only_once_started_and_only_by_the_clinic(service, uow, clock):
    booking = service.create_booking(request())
    with pytest.raises(InvalidState):
        service.mark_attendance(THERAPIST, booking["id"], "attended")
    clock.now = START
    from clinic.errors import Forbidden

    with pytest.raises(Forbidden):
        service.mark_attendance(manage(booking["manage_token"]), booking["id"], "attended")
    marked = service.mark_attendance(THERAPIST, booking["id"], "no_show")
    assert (marked["status"], marked["sequence"]) == ("no_show", 1)
    assert events(uow)[-1][0] == "attendance_marked"


def test_reschedule_is_atomic(service, uow):
    booking = service.create_booking(request(modality="in_person"))
    service.create_booking(request(START + timedelta(hours=3), therapist="t1"))
    with pytest.raises(SlotUnavailable):
        service.reschedule_booking(manage(booking["manage_token"]), booking["id"],
                                   iso(START + timedelta(hours=3)))
    unchanged = service.get_booking(ADMIN, booking["id"])
    assert (unchanged["start"], unchanged["sequence"]) == (iso(START), 0)
    moved = service.reschedule_booking(manage(booking["manage_token"]), booking["id"],
                                       iso(START + timedelta(hours=1)))
    assert (moved["id"], moved["start"], moved["sequence"]) == (
        booking["id"], iso(START + timedelta(hours=1)), 1)
    assert moved["room"] == booking["room"]
    kind, data = events(uow)[-1]
    assert kind == "booking_rescheduled" and data["previous"]["start"] == iso(START)
    # its old time is free again
    assert service.create_booking(request())["status"] == "confirmed"


def course_request(**extra):
    return {"therapist_id": "t1", "session_type": "dit", "modality": "in_person",
            "first_start": iso(START), "sessions": 16, "client": CLIENT, **extra}


def test_a_course_conflicting_in_week_9_writes_nothing_and_lists_every_conflict(service, uow):
    week9 = START + timedelta(weeks=8)
    week12 = START + timedelta(weeks=11)
    service.create_booking(request(week9 + timedelta(minutes=0), therapist="t1"))
    service.availability.time_off.add(week12.date())
    before = (count(uow, bookings), count(uow, outbox))
    with pytest.raises(CourseConflict) as caught:
        service.create_course(course_request(), key("course-key"))
    assert caught.value.details["conflicts"] == [iso(week9), iso(week12)]
    assert (count(uow, bookings), count(uow, outbox)) == before
    assert count(uow, courses) == 0 and count(uow, idempotency_keys) == 0


def test_a_course_books_numbered_sessions_and_cancels_what_has_not_started(service, uow, clock):
    course = service.create_course(course_request(skip_weeks=["2027-03-10"]), key("ck"))
    sessions = course["sessions"]
    assert [s["number"] for s in sessions] == list(range(1, 17))
    assert sessions[1]["start"] == iso(START + timedelta(weeks=2))  # week 2 skipped
    assert (course["status"], course["completed"], course["remaining"]) == ("active", 0, 16)
    assert service.create_course(course_request(skip_weeks=["2027-03-10"]), key("ck"))["id"] == \
        course["id"]
    assert [kind for kind, _ in events(uow)] == ["course_booked"]
    assert len(events(uow)[0][1]["course"]["sessions"]) == 16

    owner = manage(course["manage_token"])
    third = sessions[2]["booking_id"]
    moved = service.reschedule_booking(owner, third, iso(START + timedelta(weeks=3, hours=2)))
    assert (moved["course_id"], moved["session_number"]) == (course["id"], 3)
    assert service.get_booking(owner, third)["course_sessions"] == 16

    clock.now = START + timedelta(weeks=4, hours=1)  # four sessions started
    service.mark_attendance(THERAPIST, sessions[0]["booking_id"], "attended")
    cancelled = service.cancel_course(owner, course["id"])
    assert cancelled["status"] == "cancelled"
    statuses = [s["status"] for s in cancelled["sessions"]]
    assert statuses[:4] == ["attended", "confirmed", "confirmed", "confirmed"]
    assert set(statuses[4:]) == {"cancelled"}
    assert (cancelled["completed"], cancelled["remaining"]) == (4, 0)
    kind, data = events(uow)[-1]
    assert kind == "course_cancelled" and len(data["cancelled"]) == 12
    with pytest.raises(InvalidState):
        service.cancel_course(owner, course["id"])


def test_therapist_lists_their_bookings_between_dates(service):
    service.create_booking(request())
    service.create_booking(request(START + timedelta(days=1)))
    service.create_booking(request(therapist="t2"))
    listed = service.list_therapist_bookings(THERAPIST, "t1", "2027-03-02", "2027-03-02")
    assert [b["start"] for b in listed] == [iso(START)]
    with pytest.raises(Unauthorized):
        service.list_therapist_bookings(None, "t1", "2027-03-02", "2027-03-02")


def test_the_feed_shows_initials_never_contact_details_notes_or_reasons(service, clock):
    private = {"name": "Zoë de la Cruz", "email": "zoe@example.org", "phone": "+44 20 7946 0000"}
    old = service.create_booking(request(START, client=private, notes="panic attacks"))
    kept = service.create_booking(request(START + timedelta(days=1), client=private))
    moved = service.create_booking(request(START + timedelta(days=2), client=private))
    service.create_booking(request(therapist="t2"))
    service.cancel_booking(ADMIN, kept["id"], "bereavement")
    service.reschedule_booking(ADMIN, moved["id"], iso(START + timedelta(days=3)))
    service.place_hold("t1", "dit", "video", iso(START + timedelta(days=4)))

    clock.now = START + timedelta(days=90, hours=1)  # the first booking is now 90 days back
    feed = service.feed_sessions("t1")
    assert [s["id"] for s in feed] == [kept["id"], moved["id"]]  # no hold, nothing older
    assert [(s["status"], s["sequence"]) for s in feed] == [("cancelled", 1), ("confirmed", 1)]
    assert feed[1]["start"] == iso(START + timedelta(days=3))
    assert {s["client_initials"] for s in feed} == {"Z.d.l.C."}
    assert not {"client", "notes", "cancel_reason"} & {key for s in feed for key in s}
    shown = repr(feed)
    for secret in ("Zoë", "zoe@", "7946", "panic", "bereavement"):
        assert secret not in shown
    clock.now = NOW
    assert old["id"] in [s["id"] for s in service.feed_sessions("t1")]
