"""Notifications with the real services, the real broker and a real SMTP server (aiosmtpd).

Availability and booking run for real: a booking made through booking's RPC reaches this
service as booking's own event, the manage link is a token booking really issued, and the
therapist's address comes from availability. Each message received is parsed with the email
package and its invitation with icalendar.
"""

from __future__ import annotations

import email
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import eventlet
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from icalendar import Calendar
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import get_container

from clinic import ical
from clinic.access import Caller
from services.availability.service import AvailabilityService
from services.booking.models import outbox
from services.booking.service import BookingService
from services.notifications.models import notifications as notifications_table
from services.notifications.service import NotificationsService
from tests.conftest import free_port

ADMIN = Caller(kind="admin").to_rpc()
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LONDON = ZoneInfo("Europe/London")


class SmtpServer:
    """aiosmtpd in this process: a real SMTP server that keeps what it accepts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[list[str], bytes]] = []
        self.controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(content, policy=policy.default)
                for _, content in self.received]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"].addresses[0].addr_spec == address]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def config(service_config, smtp) -> dict:
    return {**service_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
            "SMTP_FROM": "clinic@clinic.example", "PUBLIC_BASE_URL": "https://clinic.example",
            "NOTIFICATIONS_POLL_SECONDS": "0.3", "NOTIFICATIONS_RETRY_SECONDS": "0.3",
            "NOTIFICATIONS_MAX_ATTEMPTS": "20", "CLINIC_VIDEO_BASE_URL": "https://meet.example"}


def wait_until(check: Callable[[], bool], seconds: float = 20) -> None:
    with eventlet.Timeout(seconds):
        while not check():
            eventlet.sleep(0.1)


def set_up_therapist(cluster) -> str:
    cluster.availability.create_therapist(ADMIN, {
        "id": "dr-jo", "name": "Jo Marsh", "email": "jo@clinic.example",
        "modalities": ["in_person", "video", "phone"], "timezone": "Europe/London"})
    cluster.availability.put_schedule(ADMIN, "dr-jo", {
        "timezone": "Europe/London", "min_notice_hours": 1,
        "weekly": [{"weekday": day, "start": "08:00", "end": "20:00",
                    "modalities": ["video", "phone"]} for day in WEEKDAYS]})
    return "dr-jo"


def pending(url: str) -> int:
    """Messages recorded and not yet sent (or given up)."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(notifications_table)
                                   .where(notifications_table.c.status == "pending")).scalar_one()
    engine.dispose()
    return count


def at(days: int, hour: int) -> str:
    local = datetime.now(LONDON).replace(hour=hour, minute=0, second=0, microsecond=0)
    return (local + timedelta(days=days)).isoformat()


CLIENT = {"name": "Ann Lee", "email": "ann@example.org", "timezone": "America/New_York"}


def calendar_of(message: EmailMessage) -> tuple[str, Calendar]:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    return part.get_param("method"), Calendar.from_ical(part.get_content())


def test_confirm_reschedule_cancel_and_a_course_reach_the_mail_server(runner_factory, config,
                                                                       smtp):
    smtp.start()
    runner = runner_factory(config, AvailabilityService, BookingService, NotificationsService)
    runner.start()
    with ClusterRpcProxy(config) as cluster:
        set_up_therapist(cluster)
        booking = cluster.booking.create_booking({
            "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
            "start": at(3, 10), "client": CLIENT})
        wait_until(lambda: len(smtp.messages) == 2)

        (confirmation,) = smtp.to("ann@example.org")
        (to_therapist,) = smtp.to("jo@clinic.example")
        method, cal = calendar_of(confirmation)
        (vevent,) = cal.walk("VEVENT")
        assert method == "REQUEST" == str(cal["METHOD"])
        assert str(vevent["UID"]) == ical.event_uid(booking["id"])
        assert int(vevent["SEQUENCE"]) == 0
        assert vevent.decoded("DTSTART") == datetime.fromisoformat(booking["start"])
        assert calendar_of(to_therapist)[0] == "REQUEST"
        text = confirmation.get_body(("plain",)).get_content()
        assert "Jo Marsh" in text and "By video" in text and booking["video_url"] in text
        link = text.split("https://clinic.example/manage?")[1].split()[0]
        query = urllib.parse.parse_qs(link)
        assert query["booking"] == [booking["id"]]  # the page knows what to open
        token = query["token"][0]
        manage = Caller(kind="manage", token=token).to_rpc()
        assert cluster.booking.get_booking(manage, booking["id"])["id"] == booking["id"]
        assert "jo@clinic.example" not in confirmation.as_string()  # not the therapist's address

        cluster.booking.reschedule_booking(ADMIN, booking["id"], at(4, 11))
        wait_until(lambda: len(smtp.messages) == 4)
        method, cal = calendar_of(smtp.to("ann@example.org")[-1])
        assert method == "REQUEST" and int(cal.walk("VEVENT")[0]["SEQUENCE"]) == 1
        assert str(cal.walk("VEVENT")[0]["UID"]) == ical.event_uid(booking["id"])

        cluster.booking.cancel_booking(ADMIN, booking["id"])
        wait_until(lambda: len(smtp.messages) == 6)
        for address in ("ann@example.org", "jo@clinic.example"):
            method, cal = calendar_of(smtp.to(address)[-1])
            vevent = cal.walk("VEVENT")[0]
            assert method == "CANCEL" == str(cal["METHOD"])
            assert str(vevent["STATUS"]) == "CANCELLED" and int(vevent["SEQUENCE"]) == 2

        course = cluster.booking.create_course({
            "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "phone",
            "first_start": at(2, 15), "sessions": 16, "client": {**CLIENT, "phone": "+1555"}})
        wait_until(lambda: len(smtp.messages) == 8)
        for address in ("ann@example.org", "jo@clinic.example"):
            method, cal = calendar_of(smtp.to(address)[-1])
            events = cal.walk("VEVENT")
            assert method == "REQUEST" and len(events) == 16
            assert {str(e["UID"]) for e in events} == {
                ical.event_uid(s["booking_id"]) for s in course["sessions"]}
        client_text = smtp.to("ann@example.org")[-1].get_body(("plain",)).get_content()
        assert "Jo Marsh will call you on +1555" in client_text
        assert "To move one session" in client_text

        log = cluster.notifications.list_notifications(ADMIN, booking_id=booking["id"])
        assert [(e["kind"], e["status"]) for e in log] == [
            ("confirmation", "sent"), ("confirmation", "sent"), ("reschedule", "sent"),
            ("reschedule", "sent"), ("cancellation", "sent"), ("cancellation", "sent")]
    # every message went to exactly one recipient, once
    assert len({m["Message-ID"] for m in smtp.messages}) == len(smtp.messages) == 8


def test_smtp_down_then_up_across_a_restart_delivers_every_message_once(
        runner_factory, config, smtp, database_urls):
    runner = runner_factory(config, AvailabilityService, BookingService, NotificationsService)
    runner.start()
    with ClusterRpcProxy(config) as cluster:
        set_up_therapist(cluster)
        for day in (3, 4, 5):
            cluster.booking.create_booking({
                "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
                "start": at(day, 10), "client": CLIENT})

        def attempts() -> list[tuple[str, int]]:
            return [(e["status"], e["attempts"])
                    for e in cluster.notifications.list_notifications(ADMIN)]

        wait_until(lambda: len(attempts()) == 6 and all(n >= 2 for _, n in attempts()))
        assert {status for status, _ in attempts()} == {"pending"}
        runner.stop()  # a restart while everything is still owed

    smtp.start()
    runner = runner_factory(config, AvailabilityService, BookingService, NotificationsService)
    runner.start()
    with ClusterRpcProxy(config) as cluster:
        wait_until(lambda: {e["status"] for e in
                            cluster.notifications.list_notifications(ADMIN)} == {"sent"})
        eventlet.sleep(1)  # room for a (wrong) second copy
    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert sorted(rcpt[0] for rcpt, _ in smtp.received) == ["ann@example.org"] * 3 + [
        "jo@clinic.example"] * 3


def test_the_same_event_delivered_twice_sends_one_email(runner_factory, config, smtp,
                                                        database_urls):
    smtp.start()
    runner = runner_factory(config, AvailabilityService, BookingService, NotificationsService)
    runner.start()
    with ClusterRpcProxy(config) as cluster:
        set_up_therapist(cluster)
        cluster.booking.create_booking({
            "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
            "start": at(3, 10), "client": CLIENT})
        wait_until(lambda: len(smtp.messages) == 2)

    engine = sa.create_engine(database_urls["booking"])
    with engine.connect() as connection:
        payloads = connection.execute(sa.select(outbox.c.payload)
                                      .where(outbox.c.type == "booking_confirmed")).scalars().all()
    engine.dispose()
    dispatch = event_dispatcher(config)
    notifications = get_container(runner, NotificationsService)
    with entrypoint_waiter(notifications, "on_booking_confirmed", timeout=20):
        dispatch("booking", "booking_confirmed", payloads[0])  # the very same event, again
    # the handler has run on it; whatever it had recorded would have been sent by now
    wait_until(lambda: not pending(database_urls["notifications"]))
    assert len(smtp.messages) == 2
