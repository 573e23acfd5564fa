"""The booking service with the real availability service, on the real broker and both
databases: concurrent claims, the PostgreSQL exclusion constraints, and the outbox while the
broker is unreachable."""

import contextlib
import socket
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
import sqlalchemy as sa
from nameko.events import event_handler
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook

from clinic.access import Caller
from clinic.errors import SlotUnavailable
from services.availability.service import AvailabilityService
from services.booking.models import bookings, outbox
from services.booking.service import BookingService

ADMIN = Caller(kind="admin").to_rpc()
CLIENT = {"name": "Ada", "email": "ada@example.org"}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def next_slot(days: int = 3, hour: int = 10) -> datetime:
    """A whole hour a few days ahead, in UTC (the test therapist's schedule zone)."""
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def set_up_therapist(cluster, therapist_id: str = "dr-ray") -> str:
    """A therapist working every day 07:00-21:00 UTC in every modality, and two rooms."""
    availability = cluster.availability
    for room in ("room-a", "room-b"):
        try:
            availability.create_room(ADMIN, {"id": room, "name": room})
        except Exception as error:  # already there (a second therapist in the same clinic)
            if "exist" not in str(error).lower():
                raise
    availability.create_therapist(ADMIN, {
        "id": therapist_id, "name": "Dr Ray", "specialties": ["dit"],
        "modalities": ["in_person", "video", "phone"], "timezone": "UTC"})
    availability.put_schedule(ADMIN, therapist_id, {
        "timezone": "UTC", "buffer_minutes": 10, "min_notice_hours": 0, "horizon_days": 365,
        "weekly": [{"weekday": day, "start": "07:00", "end": "21:00",
                    "modalities": ["in_person", "video", "phone"]} for day in WEEKDAYS]})
    return therapist_id


@pytest.fixture
def start_container(container_factory, vhosts):
    """container_factory, but each container is stopped before its vhost is deleted (a
    consumer retrying a deleted vhost never gives up, and the test would hang)."""
    made = []

    def start(service_cls, config):
        container = container_factory(service_cls, config)
        container.start()
        made.append(container)
        return container

    yield start
    for container in reversed(made):
        container.stop()


def booking_request(therapist_id: str, start: datetime, modality: str = "video", **extra):
    return {"therapist_id": therapist_id, "session_type": "dit-session", "modality": modality,
            "start": start.isoformat(), "client": CLIENT, **extra}


def test_exclusion_constraints_refuse_overlaps_the_application_did_not_see(databases):
    """Rows written straight to PostgreSQL, past every check the service makes."""
    if databases.backend != "postgresql":
        pytest.skip("exclusion constraints are PostgreSQL's; SQLite serialises writers instead")
    engine = sa.create_engine(databases.new("booking"))
    start = next_slot()
    now = datetime.now(UTC)

    def row(**values):
        base = dict(id=str(uuid.uuid4()), therapist_id="t1", session_type="dit",
                    modality="in_person", start=start, end=start + timedelta(minutes=50),
                    blocked_end=start + timedelta(minutes=60), room="room-a",
                    status="confirmed", sequence=0, late_cancellation=False, created_at=now,
                    updated_at=now)
        return {**base, **values}

    def insert(**values) -> str | None:
        try:
            with engine.begin() as connection:
                connection.execute(bookings.insert().values(row(**values)))
        except sa.exc.IntegrityError as error:
            return error.orig.pgcode
        return None

    assert insert() is None
    # the therapist's blocked time (with the buffer) overlaps: refused, held or confirmed
    assert insert(room=None, start=start + timedelta(minutes=55),
                  end=start + timedelta(minutes=105),
                  blocked_end=start + timedelta(minutes=115)) == "23P01"
    assert insert(room=None, status="held", expires_at=now) == "23P01"
    # another therapist in the same room at the same time: refused by the room constraint
    assert insert(therapist_id="t2") == "23P01"
    # inactive rows do not block; the next hour is free; another room is free
    assert insert(status="cancelled") is None
    assert insert(status="expired") is None
    assert insert(start=start + timedelta(hours=1), end=start + timedelta(minutes=110),
                  blocked_end=start + timedelta(hours=2)) is None
    assert insert(therapist_id="t2", room="room-b") is None
    engine.dispose()


def test_concurrent_attempts_at_one_slot_through_two_booking_containers(
        start_container, service_config, database_urls):
    for service_cls in (AvailabilityService, BookingService, BookingService):
        start_container(service_cls, service_config)
    with ClusterRpcProxy(service_config) as cluster:
        therapist = set_up_therapist(cluster)
        start = next_slot()

        # all sent before any answer is read: the service sees 32 concurrent requests
        replies = [cluster.booking.create_booking.call_async(booking_request(
            therapist, start, "in_person", client={"name": f"C{i}", "email": f"c{i}@example.org"}))
            for i in range(32)]
        outcomes = []
        for reply in replies:
            try:
                reply.result()
                outcomes.append("booked")
            except SlotUnavailable:
                outcomes.append("refused")
    assert sorted(outcomes).count("booked") == 1
    assert outcomes.count("refused") == 31
    engine = sa.create_engine(database_urls["booking"])
    with engine.connect() as connection:
        active = connection.execute(sa.select(sa.func.count()).select_from(bookings).where(
            bookings.c.status == "confirmed")).scalar_one()
    engine.dispose()
    assert active == 1


class BrokerProxy:
    """A TCP relay in front of RabbitMQ that can refuse connections and drop the open ones.

    It stands in for stopping RabbitMQ: the machine's broker serves other tests and systems at
    the same time, so only the booking container's path to it is cut.
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.server = eventlet.listen(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = True
        self.links: set[socket.socket] = set()
        self.acceptor = eventlet.spawn(self._serve)

    def _serve(self) -> None:
        while True:
            client, _ = self.server.accept()
            if not self.open:
                client.close()
                continue
            upstream = eventlet.connect(self.target)
            self.links.update((client, upstream))
            eventlet.spawn_n(self._pipe, client, upstream)
            eventlet.spawn_n(self._pipe, upstream, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except (OSError, EOFError):  # either end closed (or cut)
            pass
        finally:
            # each socket is closed only by the green thread that reads it, once it stopped
            # reading (closing a socket another green thread waits on confuses the hub)
            self._shut(sink)
            self.links.discard(source)
            source.close()

    @staticmethod
    def _shut(end: socket.socket) -> None:
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        for end in list(self.links):
            self._shut(end)  # wakes both pipes with EOF; they close their sockets

    def restore(self) -> None:
        self.open = True

    def stop(self) -> None:
        self.cut()
        self.acceptor.kill()
        self.server.close()


received: list[dict] = []


class Witness:
    """A real consumer of booking_confirmed, counting every delivery (no de-duplication)."""

    name = "witness"

    @event_handler("booking", "booking_confirmed")
    def on_booking_confirmed(self, payload: dict) -> None:
        received.append(payload)


def _pending(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(outbox.c.type).where(
            outbox.c.published_at.is_(None))).scalars().all()
    engine.dispose()
    return list(rows)


@pytest.fixture
def broker_proxy(amqp_uri):
    parts = urllib.parse.urlsplit(amqp_uri)
    proxy = BrokerProxy((parts.hostname, parts.port or 5672))
    yield proxy
    proxy.stop()


def test_bookings_made_while_the_broker_is_unreachable_are_published_once_afterwards(
        broker_proxy, start_container, service_config, database_urls):
    received.clear()
    proxy = broker_proxy
    parts = urllib.parse.urlsplit(service_config["AMQP_URI"])
    proxied = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    booking_config = {**service_config, "AMQP_URI": urllib.parse.urlunsplit(proxied)}

    start_container(Witness, service_config)
    start_container(AvailabilityService, service_config)
    booking = start_container(BookingService, booking_config)
    with ClusterRpcProxy(service_config) as cluster:
        therapist = set_up_therapist(cluster)
        starts = [next_slot(days=3, hour=hour) for hour in (9, 11, 13, 15, 17)]
        holds = [cluster.booking.place_hold(therapist, "dit-session", "video", s.isoformat())
                 for s in starts]
    with eventlet.Timeout(15):
        while _pending(database_urls["booking"]):
            eventlet.sleep(0.1)

    proxy.cut()
    made = []
    for hold, start in zip(holds, starts, strict=True):
        # entrypoint_hook runs the method in the container without the broker; a hold's
        # conversion needs no RPC to availability either
        with entrypoint_hook(booking, "create_booking") as create_booking:
            made.append(create_booking(
                booking_request(therapist, start, hold_id=hold["id"]), None,
                Caller(kind="manage", token=hold["manage_token"]).to_rpc())["id"])
    eventlet.sleep(2)  # the relay tries, fails, and keeps the rows
    pending = _pending(database_urls["booking"])
    assert pending.count("booking_confirmed") == len(made)
    assert received == []

    proxy.restore()
    with eventlet.Timeout(40):
        while len(received) < len(made) or _pending(database_urls["booking"]):
            eventlet.sleep(0.2)
    eventlet.sleep(1)  # room for a (wrong) second delivery to show up
    assert sorted(p["data"]["booking"]["id"] for p in received) == sorted(made)
    assert len({p["id"] for p in received}) == len(received)
    booking.stop()  # while its path to the broker is open (a consumer retrying never stops)


def test_every_booking_process_decides_on_availabilitys_latest_offer(
        start_container, service_config):
    """Each booking process keeps what a therapist offers (no call per booking); a change in
    availability reaches all of them before its answer, and bookings go on while availability
    is away."""
    availability = start_container(AvailabilityService, service_config)
    processes = [start_container(BookingService, service_config) for _ in range(2)]

    def book(process, start: datetime, email: str):
        with entrypoint_hook(process, "create_booking") as create_booking:
            return create_booking(booking_request(
                therapist, start, client={"name": "Ada", "email": email}))

    with ClusterRpcProxy(service_config) as cluster:
        therapist = set_up_therapist(cluster, "dr-offer")
        day = next_slot(days=4, hour=8)
        for number, process in enumerate(processes):  # each process keeps the offer now
            book(process, day + timedelta(hours=number), f"a{number}@example.org")
        cluster.availability.add_time_off(ADMIN, therapist, {
            "start": (day + timedelta(hours=4)).isoformat(),
            "end": (day + timedelta(hours=6)).isoformat()})
        for number, process in enumerate(processes):
            with pytest.raises(SlotUnavailable):
                book(process, day + timedelta(hours=4 + number), f"b{number}@example.org")
        cluster.availability.put_schedule(ADMIN, therapist, {
            "timezone": "UTC", "buffer_minutes": 10, "min_notice_hours": 0,
            "horizon_days": 365, "weekly": [{"weekday": weekday, "start": "07:00",
                                             "end": "12:00", "modalities": ["video"]}
                                            for weekday in WEEKDAYS]})
        for number, process in enumerate(processes):
            with pytest.raises(SlotUnavailable):  # the afternoon is no longer worked
                book(process, day + timedelta(hours=6 + number), f"c{number}@example.org")
        for number, process in enumerate(processes):  # the new offer is kept again
            book(process, day + timedelta(hours=2 + number), f"d{number}@example.org")
    availability.stop()
    booked = book(processes[0], day + timedelta(days=1), "e@example.org")
    assert booked["status"] == "confirmed"
