"""The notifications service's methods through ``worker_factory``, on SQLite and PostgreSQL.

Mail goes through the real file transport into a temporary folder and is read back; the two
RPC neighbours (booking's manage tokens, availability's therapist contact) are small fakes.
"""

from __future__ import annotations

import dataclasses
import email
import threading
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from icalendar import Calendar
from nameko.testing.services import worker_factory

from clinic.access import Caller
from clinic.db import UnitOfWork, create_engine_for, is_sqlite
from clinic.errors import Forbidden, NotFound, Unauthorized
from services.notifications import mailer, repository
from services.notifications.contacts import ContactBook
from services.notifications.models import notifications
from services.notifications.service import NotificationsService
from services.notifications.settings import NotificationSettings
from tests.conftest import free_port
from tests.unit.test_notifications import START, booking_dict, course_dict, course_sessions, event

ADMIN = Caller(kind="admin").to_rpc()


class Booking:
    """Stands in for booking's ``issue_manage_token``."""

    def __init__(self) -> None:
        self.issued: list[tuple[str, str]] = []
        self.down = False

    def issue_manage_token(self, kind: str, ident: str) -> str:
        if self.down:
            raise ConnectionError("booking is not answering")
        self.issued.append((kind, ident))
        return f"mng_{kind}_{ident}"


class Availability:
    def get_therapist_contact(self, therapist_id: str) -> dict:
        return {"name": "Dr Jo Marsh", "email": f"{therapist_id}@clinic.example"}


class Texts:
    """An SMS provider that keeps what it sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, text: str) -> None:
        self.sent.append((to, text))


class Post:
    def __init__(self, folder: Path) -> None:
        self.mail: mailer.MailTransport = mailer.FileTransport(folder)
        self.sms = Texts()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(databases, tmp_path):
    url = databases.new("notifications")
    engine = create_engine_for(url)
    uow = UnitOfWork(engine, threading.Lock() if is_sqlite(url) else None)
    settings = dataclasses.replace(
        NotificationSettings.from_config({"CLINIC_DATA_DIR": str(tmp_path),
                                          "PUBLIC_BASE_URL": "https://clinic.example",
                                          "SMTP_FROM": "clinic@clinic.example"}),
        retry_seconds=60, max_attempts=3)
    clock = Clock(START - timedelta(days=10))
    post = Post(tmp_path / "mail")
    booking = Booking()
    service = worker_factory(NotificationsService, db=uow, clock=clock, settings=settings,
                             post=post, booking=booking, availability=Availability(),
                             contacts=ContactBook())
    service.folder = tmp_path / "mail"
    yield service
    engine.dispose()


def mails(folder: Path) -> list[email.message.EmailMessage]:
    if not folder.exists():
        return []
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(folder.glob("*.eml"))]


def log(service) -> list[dict]:
    return service.list_notifications(ADMIN)


def test_a_confirmation_mails_client_and_therapist_once_even_if_redelivered(world):
    confirmed = event("booking_confirmed", {"booking": booking_dict()})
    world.on_booking_confirmed(confirmed)
    world.on_booking_confirmed(confirmed)
    sent = mails(world.folder)
    assert sorted(m["To"].addresses[0].addr_spec for m in sent) == [
        "ann@example.org", "dr-jo@clinic.example"]
    client = next(m for m in sent if "ann@" in str(m["To"]))
    assert "https://clinic.example/manage?token=mng_booking_bk-1" in \
        client.get_body(("plain",)).get_content()
    assert world.booking.issued == [("booking", "bk-1")]  # the therapist gets no manage link
    entries = log(world)
    assert [(e["kind"], e["status"], e["attempts"]) for e in entries] == [
        ("confirmation", "sent", 1)] * 2
    assert {e["recipient"] for e in entries} == {"ann@example.org", "dr-jo@clinic.example"}


def test_a_course_is_confirmed_by_one_mail_each_with_all_sessions(world):
    sessions = course_sessions(16)
    world.on_course_booked(event("course_booked", {"course": course_dict(sessions)}))
    sent = mails(world.folder)
    assert len(sent) == 2
    for message in sent:
        part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        assert part.get_param("method") == "REQUEST"
        assert len(Calendar.from_ical(part.get_content()).walk("VEVENT")) == 16
    assert world.booking.issued == [("course", "crs-1")]
    entries = log(world)
    assert {(e["course_id"], e["booking_id"]) for e in entries} == {("crs-1", None)}
    # a session's own listing shows its course's messages
    assert len(world.list_notifications(ADMIN, booking_id="bk-5")) == 2


def test_an_older_event_after_a_newer_one_changes_nothing_and_says_nothing(world):
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    cancelled = booking_dict(status="cancelled", sequence=2)
    world.on_booking_cancelled(event("booking_cancelled", {"booking": cancelled}))
    moved = booking_dict(start=START + timedelta(days=1), sequence=1)
    world.on_booking_rescheduled(event("booking_rescheduled", {
        "booking": moved, "previous": {"start": START.isoformat()}}))
    assert [e["kind"] for e in log(world)] == ["confirmation"] * 2 + ["cancellation"] * 2
    cancel = next(m for m in mails(world.folder) if m["Subject"].startswith("Cancelled: your"))
    part = next(p for p in cancel.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "CANCEL"
    assert "STATUS:CANCELLED" in part.get_content() and "SEQUENCE:2" in part.get_content()


def test_a_confirmation_overtaken_by_its_cancellation_is_still_sent(world):
    # Each event type has its own queue: a confirmation redelivered after a consumer crash
    # can arrive after the cancellation. The client must still have been told they were booked.
    cancelled = booking_dict(status="cancelled", sequence=1)
    world.on_booking_cancelled(event("booking_cancelled", {"booking": cancelled}))
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    assert sorted(e["kind"] for e in log(world)) == ["cancellation"] * 2 + ["confirmation"] * 2
    booked = next(m for m in mails(world.folder) if not m["Subject"].startswith("Cancelled"))
    part = next(p for p in booked.walk() if p.get_content_type() == "text/calendar")
    # the older SEQUENCE: a calendar that has the cancellation keeps it
    assert "SEQUENCE:0" in part.get_content()


def test_reminders_come_due_follow_reschedules_and_stop_for_cancellations(world):
    world.clock.now = START - timedelta(days=5)
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    # Booked 18 h before it starts: inside its window, whose reminder time (START - 26 h) has
    # passed by every tick below, so only the booked-inside-the-window rule keeps it quiet.
    late = booking_dict(2, START - timedelta(hours=2), course_id=None, session_number=None,
                        course_sessions=None)
    world.clock.now = START - timedelta(hours=20)  # inside the 24h window of both
    world.on_booking_confirmed(event("booking_confirmed", {"booking": late}))
    world.clock.now = START - timedelta(hours=24, seconds=1)
    world.send_due()
    assert [e["kind"] for e in log(world) if e["kind"] == "reminder"] == []

    world.clock.now = START - timedelta(hours=23)
    world.send_due()
    world.send_due()  # a second tick finds the reminder there already
    reminders = [e for e in log(world) if e["kind"] == "reminder"]
    assert sorted((e["channel"], e["booking_id"]) for e in reminders) == [
        ("email", "bk-1"), ("sms", "bk-1")]  # none for the session booked inside the window
    assert world.post.sms.sent[0][0] == "+447700900123"

    # moved two days later (booked outside the new window): reminded again at the new time
    new_start = START + timedelta(days=2)
    world.on_booking_rescheduled(event("booking_rescheduled", {
        "booking": booking_dict(start=new_start, sequence=1),
        "previous": {"start": START.isoformat()}}))
    world.clock.now = new_start - timedelta(hours=2)
    world.send_due()
    assert len([e for e in log(world) if e["kind"] == "reminder"]) == 4

    # cancelled: no reminder for the later session
    third = booking_dict(3, START + timedelta(days=6), course_id=None, session_number=None,
                         course_sessions=None)
    world.on_booking_confirmed(event("booking_confirmed", {"booking": third}))
    world.on_booking_cancelled(event("booking_cancelled", {
        "booking": {**third, "status": "cancelled", "sequence": 1}}))
    world.clock.now = START + timedelta(days=6) - timedelta(hours=1)
    world.send_due()
    assert [e for e in log(world) if e["booking_id"] == "bk-3" and e["kind"] == "reminder"] == []


def test_course_ending_notice_goes_once_when_three_sessions_remain(world):
    sessions = course_sessions(16)
    world.on_course_booked(event("course_booked", {"course": course_dict(sessions)}))
    thirteenth_end = datetime.fromisoformat(sessions[12]["end"])
    world.clock.now = thirteenth_end - timedelta(minutes=1)
    world.send_due()
    assert not [e for e in log(world) if e["kind"] == "course_ending"]
    world.clock.now = thirteenth_end + timedelta(minutes=1)
    world.send_due()
    world.clock.now = thirteenth_end + timedelta(days=3)
    world.send_due()
    endings = [e for e in log(world) if e["kind"] == "course_ending"]
    assert sorted(e["recipient"] for e in endings) == ["ann@example.org", "dr-jo@clinic.example"]
    assert all(e["status"] == "sent" for e in endings)
    notice = next(m for m in mails(world.folder)
                  if m["Subject"] == "Your course: the last 3 sessions")
    body = notice.get_body(("plain",)).get_content()
    assert "Session 14" in body and "Session 16" in body and "Session 13:" not in body


def test_smtp_failures_retry_with_backoff_then_fail_and_show_in_the_log(world):
    world.post.mail = mailer.SmtpTransport("127.0.0.1", free_port(), timeout=2)
    world.clock.now = START - timedelta(days=3)
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    assert {(e["status"], e["attempts"]) for e in log(world)} == {("pending", 1)}
    world.send_due()  # not due yet: the first retry waits retry_seconds
    assert {e["attempts"] for e in log(world)} == {1}
    world.clock.now += timedelta(seconds=60)
    world.send_due()
    assert {e["attempts"] for e in log(world)} == {2}
    world.clock.now += timedelta(seconds=119)  # the second pause is twice as long
    world.send_due()
    assert {e["attempts"] for e in log(world)} == {2}
    world.clock.now += timedelta(seconds=1)
    world.send_due()
    entries = log(world)
    assert {(e["status"], e["attempts"]) for e in entries} == {("failed", 3)}
    assert all("ConnectionRefused" in e["last_error"] for e in entries)


def test_on_the_last_attempt_a_letter_goes_without_the_manage_link(world):
    world.booking.down = True
    world.clock.now = START - timedelta(days=3)
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    client = [e for e in log(world) if e["recipient"] == "ann@example.org"]
    assert (client[0]["status"], client[0]["attempts"]) == ("pending", 1)
    for _ in range(2):
        world.clock.now += timedelta(hours=1)
        world.send_due()
    client = [e for e in log(world) if e["recipient"] == "ann@example.org"]
    assert (client[0]["status"], client[0]["attempts"]) == ("sent", 3)
    letter = next(m for m in mails(world.folder) if "ann@" in str(m["To"]))
    assert "manage?token" not in letter.get_body(("plain",)).get_content()


def test_the_log_is_for_the_admin_and_the_booking_s_therapist(world):
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    own = Caller(kind="therapist", therapist_id="dr-jo").to_rpc()
    other = Caller(kind="therapist", therapist_id="dr-no").to_rpc()
    assert len(world.list_notifications(own, booking_id="bk-1")) == 2
    with pytest.raises(Forbidden):
        world.list_notifications(other, booking_id="bk-1")
    with pytest.raises(Unauthorized):
        world.list_notifications(Caller().to_rpc(), booking_id="bk-1")
    with pytest.raises(Forbidden):
        world.list_notifications(Caller(kind="manage", token="mng_x").to_rpc(),
                                 booking_id="bk-1")
    with pytest.raises(NotFound):
        world.list_notifications(own, booking_id="bk-unknown")
    with pytest.raises(Forbidden):
        world.list_notifications(own)  # everything: admin only
    assert world.list_notifications(ADMIN, booking_id="bk-unknown") == []


def test_a_row_is_written_before_sending_so_a_restart_sends_what_was_left(world, tmp_path):
    # The rows of an event exist even when the sender dies before it sends anything.
    broken = mailer.SmtpTransport("127.0.0.1", free_port(), timeout=2)
    world.post.mail = broken
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    world.post.mail = mailer.FileTransport(world.folder)
    world.clock.now += timedelta(minutes=5)
    world.send_due()
    world.send_due()
    assert len(mails(world.folder)) == 2
    with world.db.reading() as session:
        ids = session.execute(sa.select(notifications.c.id)).scalars().all()
    assert sorted(m["Message-ID"] for m in mails(world.folder)) == sorted(
        f"<notification-{i}@clinic.example>" for i in ids)


def test_a_row_late_in_a_slow_batch_is_sent_by_one_sender_only(world):
    # Sender A claims a batch; its sends are slow, the lease of the rows at the end runs out
    # and sender B claims them. A must then leave them to B, not send them as well.
    broken = mailer.SmtpTransport("127.0.0.1", free_port(), timeout=2)
    world.post.mail = broken  # nothing goes out yet: the two rows wait as pending
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    world.clock.now += timedelta(hours=1)
    lease = timedelta(seconds=world.settings.claim_lease_seconds)
    with world.db.transaction() as session:
        first = repository.claim_due(session, world.clock.now, 50, lease)
    world.clock.now += lease + timedelta(seconds=1)
    with world.db.transaction() as session:
        second = repository.claim_due(session, world.clock.now, 50, lease)
    assert {c.id for c in first} == {c.id for c in second}
    with world.db.transaction() as session:
        assert not any(repository.renew_claim(session, c, world.clock.now, lease) for c in first)
        assert all(repository.renew_claim(session, c, world.clock.now, lease) for c in second)


def test_dates_survive_the_database_as_aware_utc(world):
    world.on_booking_confirmed(event("booking_confirmed", {"booking": booking_dict()}))
    created = datetime.fromisoformat(log(world)[0]["created_at"])
    assert created.tzinfo is not None and created == world.clock.now.astimezone(UTC)


def test_a_sent_messages_body_is_dropped_after_the_retention_days(world):
    now = world.clock.now
    with world.db.transaction() as session:
        for n, (status, sent_days_ago) in enumerate(
                (("sent", 31), ("sent", 29), ("pending", None), ("failed", None))):
            session.execute(notifications.insert().values(
                dedupe_key=f"test:{n}", kind="confirmation", channel="email",
                recipient_role="client", recipient="ann@example.org", booking_id=f"b{n}",
                therapist_id="t1", payload={"client": {"name": "Ann Lee"}}, status=status,
                attempts=1, next_attempt_at=now, created_at=now - timedelta(days=40),
                sent_at=now - timedelta(days=sent_days_ago) if sent_days_ago else None))
    world.drop_old_bodies()
    world.drop_old_bodies()  # again: nothing more to drop
    with world.db.reading() as session:
        rows = session.execute(sa.select(notifications.c.booking_id, notifications.c.payload,
                                         notifications.c.recipient)
                               .order_by(notifications.c.id)).all()
    assert [(row[0], bool(row[1])) for row in rows] == [
        ("b0", False), ("b1", True), ("b2", True), ("b3", True)]
    assert {row[2] for row in rows} == {"ann@example.org"}  # the delivery record stays
