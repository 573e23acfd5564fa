# ruff: noqa: F811 (the uow and clock fixtures come from test_booking_usecases)
"""The waitlist's use cases through the booking service's entrypoints, on SQLite and PostgreSQL.

The database is real; availability is the small double of test_booking_usecases (50-minute
sessions on whole hours, 10-minute buffer). Events are delivered by hand, in outbox order, to
the booking service's own handlers, as RabbitMQ would (and again, to show redelivery changes
nothing).
"""

import threading
from datetime import UTC, date, datetime, timedelta

import eventlet
import pytest
import sqlalchemy as sa
from nameko.testing.services import worker_factory

from clinic.errors import (
    HoldExpired,
    InvalidState,
    NotFound,
    ServiceUnavailable,
    SlotUnavailable,
    Unauthorized,
)
from clinic.settings import Settings
from services.booking.models import bookings, outbox, waitlist_entries, waitlist_offers
from services.booking.service import BookingService
from tests.integration.test_booking_usecases import (  # noqa: F401 (fixtures)
    ADMIN,
    NOW,
    START,
    Availability,
    clock,
    count,
    iso,
    manage,
    request,
    uow,
)

HANDLERS = {"booking_cancelled": "on_booking_cancelled",
            "booking_rescheduled": "on_booking_rescheduled",
            "hold_released": "on_hold_released", "course_cancelled": "on_course_cancelled",
            "booking_confirmed": "on_booking_confirmed", "course_booked": "on_course_booked"}
TUESDAY_MORNING = [{"weekday": "tuesday", "start": "09:00", "end": "12:00"}]


def make_service(uow, clock):
    return worker_factory(BookingService, db=uow, clock=clock, availability=Availability(),
                          settings=Settings.from_config({
                              "HOLD_MINUTES": "10", "WAITLIST_OFFER_MINUTES": "30",
                              "CLINIC_TIMEZONE": "Europe/London"}))


@pytest.fixture
def service(uow, clock):
    return make_service(uow, clock)


class Broker:
    """Hands each outbox event once (or again) to the booking service's own handlers."""

    def __init__(self, uow):
        self.uow, self.seen = uow, 0

    def all_events(self):
        with self.uow.reading() as session:
            return session.execute(sa.select(outbox.c.seq, outbox.c.type, outbox.c.payload)
                                   .order_by(outbox.c.seq)).all()

    def deliver(self, service, again: bool = False) -> list[str]:
        """Deliver new events until none is left; the types delivered."""
        delivered = []
        while True:
            rows = [r for r in self.all_events() if again or r.seq > self.seen]
            again = False
            if not rows:
                return delivered
            for seq, kind, payload in rows:
                self.seen = max(self.seen, seq)
                delivered.append(kind)
                if kind in HANDLERS:
                    getattr(service, HANDLERS[kind])(payload)


@pytest.fixture
def broker(uow):
    return Broker(uow)


def join(service, email="bea@example.org", therapist="t1", **extra):
    body = {"therapist_id": therapist, "session_type": "dit", "modality": "video",
            "windows": TUESDAY_MORNING, "tz": "Europe/London",
            "client": {"name": email.split("@")[0].title(), "email": email}, **extra}
    if therapist is None:
        del body["therapist_id"]
    return service.join_waitlist(body)


def offers(uow, *where):
    with uow.reading() as session:
        return session.execute(sa.select(waitlist_offers).where(*where)
                               .order_by(waitlist_offers.c.created_at)).mappings().all()


def offered_types(uow):
    with uow.reading() as session:
        return [k for k, in session.execute(sa.select(outbox.c.type).where(
            outbox.c.type == "waitlist_offered"))]


def test_a_cancellation_is_offered_held_to_the_first_waiting_and_accepted(service, uow,
                                                                          broker):
    booking = service.create_booking(request())
    first = join(service, "bea@example.org")
    second = join(service, "cy@example.org")
    assert first["status"] == "waiting" and first["manage_token"].startswith("mng_")
    broker.deliver(service)
    service.cancel_booking(ADMIN, booking["id"])
    broker.deliver(service)

    entry = service.get_waitlist_entry(manage(first["manage_token"]), first["id"])
    assert entry["status"] == "offered"
    offer = entry["offer"]
    assert offer["start"] == iso(START) and offer["expires_at"] == iso(NOW + timedelta(minutes=30))
    assert service.get_waitlist_entry(ADMIN, second["id"])["status"] == "waiting"
    # the time is really held: nobody else can book it
    with pytest.raises(SlotUnavailable):
        service.create_booking(request(client={"name": "Dee", "email": "dee@example.org"}))
    # the event for notifications carries ids and times only
    with uow.reading() as session:
        data = session.execute(sa.select(outbox.c.payload).where(
            outbox.c.type == "waitlist_offered")).scalar_one()["data"]
    assert set(data) == {"entry_id", "offer_id", "therapist_id", "session_type", "modality",
                         "starts", "expires_at"}

    booked = service.accept_waitlist_offer(manage(first["manage_token"]), first["id"],
                                           offer["id"])
    assert booked["status"] == "confirmed" and booked["start"] == iso(START)
    assert booked["client"]["email"] == "bea@example.org"
    assert booked["manage_token"].startswith("mng_")
    entry = service.get_waitlist_entry(ADMIN, first["id"])
    assert entry["status"] == "booked" and entry["booking_id"] == booked["id"]
    broker.deliver(service)
    assert service.get_waitlist_entry(ADMIN, second["id"])["status"] == "waiting"
    assert len(offers(uow)) == 1


def test_access_to_an_entry_needs_its_token_or_the_admin_or_its_therapist(service):
    entry = join(service)
    other = join(service, "cy@example.org")
    with pytest.raises(Unauthorized):
        service.get_waitlist_entry(None, entry["id"])
    with pytest.raises(NotFound):
        service.get_waitlist_entry(manage(other["manage_token"]), entry["id"])
    therapist = {"kind": "therapist", "therapist_id": "t1"}
    assert service.get_waitlist_entry(therapist, entry["id"])["id"] == entry["id"]
    listed = service.list_waitlist(therapist, "t1")
    assert [e["id"] for e in listed] == [entry["id"], other["id"]]


def test_decline_passes_the_time_on_at_once_and_the_decliner_waits_on(service, uow, broker):
    booking = service.create_booking(request())
    first, second = join(service), join(service, "cy@example.org")
    service.cancel_booking(ADMIN, booking["id"])
    broker.deliver(service)
    offer = service.get_waitlist_entry(ADMIN, first["id"])["offer"]
    answer = service.decline_waitlist_offer(manage(first["manage_token"]), first["id"],
                                            offer["id"])
    assert answer["status"] == "waiting"
    broker.deliver(service)
    assert service.get_waitlist_entry(ADMIN, second["id"])["offer"]["start"] == iso(START)
    assert service.get_waitlist_entry(ADMIN, first["id"])["status"] == "waiting"
    with pytest.raises(InvalidState):
        service.decline_waitlist_offer(ADMIN, first["id"], offer["id"])


def test_a_lapsed_offer_passes_on_by_itself_and_a_late_accept_is_refused(service, uow, broker,
                                                                         clock):
    booking = service.create_booking(request())
    first, second = join(service), join(service, "cy@example.org")
    service.cancel_booking(ADMIN, booking["id"])
    broker.deliver(service)
    offer = service.get_waitlist_entry(ADMIN, first["id"])["offer"]
    clock.now = NOW + timedelta(minutes=30)
    with pytest.raises(HoldExpired):  # past its time, before the sweep: refused cleanly
        service.accept_waitlist_offer(ADMIN, first["id"], offer["id"])
    service.sweep_waitlist()
    broker.deliver(service)
    assert service.get_waitlist_entry(ADMIN, first["id"])["status"] == "waiting"
    assert service.get_waitlist_entry(ADMIN, second["id"])["status"] == "offered"
    with pytest.raises(InvalidState):
        service.accept_waitlist_offer(ADMIN, first["id"], offer["id"])


def test_a_time_taken_directly_before_the_offer_is_not_offered(service, uow, broker):
    booking = service.create_booking(request())
    entry = join(service)
    service.cancel_booking(ADMIN, booking["id"])
    service.create_booking(request(client={"name": "Dee", "email": "dee@example.org"}))
    broker.deliver(service)
    assert service.get_waitlist_entry(ADMIN, entry["id"])["status"] == "waiting"
    assert offered_types(uow) == []


def test_redelivered_events_make_no_second_offer(service, uow, broker):
    booking = service.create_booking(request())
    join(service), join(service, "cy@example.org")
    service.cancel_booking(ADMIN, booking["id"])
    broker.deliver(service)
    broker.deliver(service, again=True)
    broker.deliver(service, again=True)
    assert offered_types(uow) == ["waitlist_offered"]
    assert count(uow, bookings, bookings.c.status == "held") == 1


def test_two_cancellations_at_once_for_the_same_entry_make_one_offer(uow, clock):
    first_service, second_service = make_service(uow, clock), make_service(uow, clock)
    a = first_service.create_booking(request())
    b = first_service.create_booking(request(START + timedelta(hours=1)))
    entry = join(first_service)
    first_service.cancel_booking(ADMIN, a["id"])
    first_service.cancel_booking(ADMIN, b["id"])
    events = Broker(uow).all_events()
    cancelled = [p for _, kind, p in events if kind == "booking_cancelled"]
    results = []

    def handle(service, payload):
        results.append(service.waitlist.time_freed(payload))

    threads = [threading.Thread(target=handle, args=(s, p))
               for s, p in zip((first_service, second_service), cancelled, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 1]
    assert len(offers(uow, waitlist_offers.c.entry_id == entry["id"])) == 1
    assert count(uow, bookings, bookings.c.status == "held") == 1


def test_accept_and_lapse_at_once_one_wins_cleanly(uow, clock, broker):
    service = make_service(uow, clock)
    booking = service.create_booking(request())
    entry = join(service)
    service.cancel_booking(ADMIN, booking["id"])
    broker.deliver(service)
    offer = service.get_waitlist_entry(ADMIN, entry["id"])["offer"]
    clock.now = NOW + timedelta(minutes=29, seconds=59)
    outcome = {}

    def accept():
        try:
            outcome["accept"] = service.accept_waitlist_offer(ADMIN, entry["id"], offer["id"])
        except (HoldExpired, InvalidState) as error:
            outcome["accept"] = error

    def lapse():
        eventlet.sleep(0)
        clock.now = NOW + timedelta(minutes=30)
        outcome["lapse"] = make_service(uow, clock).waitlist.sweep()

    threads = [threading.Thread(target=accept), threading.Thread(target=lapse)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = service.get_waitlist_entry(ADMIN, entry["id"])
    closed = offers(uow)[0]["status"]
    if isinstance(outcome["accept"], dict):  # accept won: booked, nothing lapsed
        assert state["status"] == "booked" and closed == "accepted" and outcome["lapse"] == 0
        assert count(uow, bookings, bookings.c.status == "confirmed") == 1
    else:  # the lapse won: waiting again, no booking
        assert state["status"] == "waiting" and closed == "lapsed"
        assert count(uow, bookings, bookings.c.status == "confirmed") == 0
    assert count(uow, bookings, bookings.c.status == "held") == 0


def test_a_cancelled_course_frees_twelve_weeks_for_course_and_session_entries(service, uow,
                                                                             broker):
    course = service.create_course({"therapist_id": "t1", "session_type": "dit",
                                    "modality": "video", "first_start": iso(START),
                                    "sessions": 12,
                                    "client": {"name": "Eve", "email": "eve@example.org"}})
    session_entry = join(service, "bea@example.org")
    course_entry = join(service, "cy@example.org", kind="course", sessions=11)
    other_session = join(service, "dee@example.org")
    broker.deliver(service)
    service.cancel_course(ADMIN, course["id"])
    broker.deliver(service)
    first = service.get_waitlist_entry(ADMIN, session_entry["id"])["offer"]
    assert first["start"] == iso(START)
    taken = service.get_waitlist_entry(ADMIN, course_entry["id"])["offer"]
    assert taken["sessions"] == [iso(START + timedelta(weeks=w)) for w in range(1, 12)]
    # weeks 2..12 are the course entry's: nothing left for the other session entry
    assert service.get_waitlist_entry(ADMIN, other_session["id"])["status"] == "waiting"
    booked = service.accept_waitlist_offer(manage(course_entry["manage_token"]),
                                           course_entry["id"], taken["id"])
    assert booked["status"] == "active" and len(booked["sessions"]) == 11
    assert count(uow, bookings, bookings.c.status == "held") == 1  # the session entry's


def test_a_client_who_books_another_way_stops_waiting_and_until_expires(service, uow, broker,
                                                                        clock):
    entry = join(service, "ada@example.org")
    later = join(service, "bea@example.org", until=(NOW + timedelta(days=3)).date().isoformat())
    service.create_booking(request(START + timedelta(days=1)))  # Ada books another time
    broker.deliver(service)
    assert service.get_waitlist_entry(ADMIN, entry["id"])["status"] == "booked"
    clock.now = NOW + timedelta(days=4)
    service.sweep_waitlist()
    assert service.get_waitlist_entry(ADMIN, later["id"])["status"] == "expired"


def test_leaving_frees_a_held_offer_for_the_next(service, uow, broker):
    booking = service.create_booking(request())
    first, second = join(service), join(service, "cy@example.org")
    service.cancel_booking(ADMIN, booking["id"])
    broker.deliver(service)
    service.leave_waitlist(manage(first["manage_token"]), first["id"])
    broker.deliver(service)
    assert service.get_waitlist_entry(ADMIN, first["id"])["status"] == "left"
    assert service.get_waitlist_entry(ADMIN, second["id"])["status"] == "offered"
    with pytest.raises(InvalidState):
        service.leave_waitlist(ADMIN, first["id"])


def test_the_scan_reads_the_waiting_entries_along_its_index(uow):
    with uow.reading() as session:
        if session.get_bind().dialect.name != "sqlite":
            pytest.skip("the query plan is read on SQLite; PostgreSQL plans by statistics")
        from services.booking.waitlist_repository import waiting_batch
        plan = session.execute(sa.text("EXPLAIN QUERY PLAN " + str(
            sa.select(waitlist_entries).where(
                waitlist_entries.c.status == "waiting",
                waitlist_entries.c.therapist_id == "t1").compile(
                compile_kwargs={"literal_binds": True})))).all()
        assert "ix_waitlist_entries_scan" in " ".join(str(r) for r in plan)
        assert waiting_batch(session, "t1", START) == []


class WithSlots(Availability):
    """find_slots as availability answers it: every whole hour of the days asked, 09-17 UTC."""

    def find_slots(self, therapist_id, session_type, modality, from_date, to_date, tz):
        first, last = date.fromisoformat(from_date), date.fromisoformat(to_date)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return {"slots": [{"start": iso(datetime(d.year, d.month, d.day, hour, tzinfo=UTC)),
                           "end": iso(datetime(d.year, d.month, d.day, hour, 50, tzinfo=UTC))}
                          for d in days for hour in range(9, 17)]}


def test_time_off_removed_and_a_wider_schedule_offer_their_times(uow, clock):
    service = worker_factory(BookingService, db=uow, clock=clock, availability=WithSlots(),
                             settings=Settings.from_config({"CLINIC_TIMEZONE": "Europe/London"}))
    first, second = join(service), join(service, "cy@example.org")
    service.on_time_off_removed({"id": "e1", "type": "time_off_removed", "data": {
        "therapist_id": "t1", "start": iso(START - timedelta(hours=1)),
        "end": iso(START + timedelta(hours=1))}})
    offer = service.get_waitlist_entry(ADMIN, first["id"])["offer"]
    assert offer["start"] == iso(START - timedelta(hours=1))  # 09:00, the earliest that fits
    assert service.get_waitlist_entry(ADMIN, second["id"])["offer"]["start"] == iso(START)
    third = join(service, "dee@example.org")
    service.on_schedule_changed({"id": "e2", "type": "schedule_changed",
                                 "data": {"therapist_id": "t1"}})
    assert service.get_waitlist_entry(ADMIN, third["id"])["offer"]["start"] == iso(
        START + timedelta(hours=1))


class AwayOnce(Availability):
    """Availability that does not answer the first check (a restart, a broker hiccup)."""

    def __init__(self):
        super().__init__()
        self.away = False

    def check_session(self, *args):
        if self.away:
            self.away = False
            raise ServiceUnavailable("Not answering: availability.")
        return super().check_session(*args)


def test_an_event_whose_handling_failed_is_offered_when_redelivered(uow, clock, broker):
    away = AwayOnce()
    service = worker_factory(BookingService, db=uow, clock=clock, availability=away,
                             settings=Settings.from_config({"CLINIC_TIMEZONE": "Europe/London"}))
    booking = service.create_booking(request())
    entry = join(service)
    service.cancel_booking(ADMIN, booking["id"])
    cancelled = [p for _, kind, p in broker.all_events() if kind == "booking_cancelled"][0]
    away.away = True
    # ServiceUnavailable: clinic.events' handler puts the event back on its queue
    with pytest.raises(ServiceUnavailable):
        service.on_booking_cancelled(cancelled)
    assert service.get_waitlist_entry(ADMIN, entry["id"])["status"] == "waiting"
    service.on_booking_cancelled(cancelled)  # the redelivery
    service.on_booking_cancelled(cancelled)  # and once more: nothing new
    assert service.get_waitlist_entry(ADMIN, entry["id"])["status"] == "offered"
    assert offered_types(uow) == ["waitlist_offered"]
