"""CPU the notifications service spends per booking_confirmed event, in process.

The service's own handler (``on_booking_confirmed``: record the event, claim, compose, send)
runs through ``worker_factory`` against a fresh SQLite or PostgreSQL database, mail into .eml
files; the RPC neighbours are stand-ins that only count calls (their CPU is the callee's).
Prints CPU ms per event (``time.process_time``), SQL statements and commits per event, RPCs
per event. No broker, no eventlet: figures to compare before and after a change on one
machine, not the clinic's (not part of `make bench`: it has no floor and no goal).

Run: `python bench/_notifications_cpu.py [--events 300] [--backend sqlite|postgresql|both]`
(PostgreSQL at CLINIC_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402
from nameko.testing.services import worker_factory  # noqa: E402

from clinic import migrate  # noqa: E402
from clinic.db import UnitOfWork, create_engine_for, is_sqlite  # noqa: E402
from services.notifications import mailer  # noqa: E402
from services.notifications.contacts import ContactBook  # noqa: E402
from services.notifications.service import NotificationsService  # noqa: E402
from services.notifications.settings import NotificationSettings  # noqa: E402

POSTGRES_ADMIN = os.environ.get("CLINIC_TEST_POSTGRES_URL",
                                "postgresql://postgres@127.0.0.1:5432/postgres")
START = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)
THERAPISTS = ("amelia-hart", "samuel-okafor", "priya-raman")


class Calls(collections.Counter):
    """Stands in for booking and availability: answers like them, counts each RPC."""

    def issue_manage_token(self, kind: str, ident: str) -> str:
        self["booking.issue_manage_token"] += 1
        return f"mng_{kind}_{ident}"

    def get_therapist_contact(self, therapist_id: str) -> dict:
        self["availability.get_therapist_contact"] += 1
        return {"id": therapist_id, "name": "Dr Amélie Hart", "email": f"{therapist_id}@c.example",
                "timezone": "Europe/London"}


class Post:
    def __init__(self, folder: Path) -> None:
        self.mail = mailer.FileTransport(folder)
        self.sms = None


def booking_event(number: int) -> dict:
    start = START + timedelta(hours=number)
    booking = {
        "id": f"bk-{number}", "status": "confirmed",
        "therapist_id": THERAPISTS[number % len(THERAPISTS)],
        "session_type": "dit-session", "modality": ("in_person", "video", "phone")[number % 3],
        "start": start.isoformat(), "end": (start + timedelta(minutes=50)).isoformat(),
        "blocked_end": (start + timedelta(minutes=60)).isoformat(), "room": "garden",
        "video_url": None, "course_id": None, "session_number": None, "course_sessions": None,
        "client": {"name": "Zoë Brontë", "email": f"client{number}@example.org",
                   "phone": "+447700900123", "timezone": "Europe/London"},
        "sequence": 0, "late_cancellation": False, "cancelled_by": None, "notes_present": False,
    }
    return {"id": f"evt-{uuid.uuid4().hex}", "type": "booking_confirmed", "source": "booking",
            "occurred_at": datetime.now(UTC).isoformat(), "data": {"booking": booking}}


def database(backend: str, folder: str) -> tuple[str, callable]:
    name = f"clinic_bench_{uuid.uuid4().hex[:12]}_notifications"
    if backend == "sqlite":
        url = f"sqlite:///{os.path.join(folder, name)}.db"
        return url, lambda: None
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def run(backend: str, events: int, warmup: int = 30) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url, drop = database(backend, folder)
        try:
            migrate.upgrade("notifications", url)
            engine = create_engine_for(url)
            statements = collections.Counter()
            sa.event.listen(engine, "before_cursor_execute",
                            lambda *args, **kw: statements.update(["sql"]))
            sa.event.listen(engine, "commit", lambda *args: statements.update(["commit"]))
            uow = UnitOfWork(engine, threading.Lock() if is_sqlite(url) else None)
            settings = dataclasses.replace(NotificationSettings.from_config({
                "CLINIC_DATA_DIR": folder, "PUBLIC_BASE_URL": "https://clinic.example",
                "SMTP_FROM": "clinic@clinic.example"}))
            calls = Calls()
            service = worker_factory(NotificationsService, db=uow,
                                     clock=lambda: datetime.now(UTC), settings=settings,
                                     post=Post(Path(folder) / "mail"), booking=calls,
                                     availability=calls, contacts=ContactBook())
            for number in range(warmup):
                service.on_booking_confirmed(booking_event(number))
            statements.clear()
            calls.clear()
            begun = time.process_time()
            for number in range(warmup, warmup + events):
                service.on_booking_confirmed(booking_event(number))
            spent = time.process_time() - begun
            sent = len(list((Path(folder) / "mail").glob("*.eml")))
            assert sent == 2 * (warmup + events), sent
            rpcs = ", ".join(f"{name} {count / events:.2f}"
                             for name, count in sorted(calls.items()))
            print(f"{backend:10} {events} events: {1000 * spent / events:.2f} ms CPU each; "
                  f"{statements['sql'] / events:.1f} SQL statements, "
                  f"{statements['commit'] / events:.1f} commits; RPCs: {rpcs}")
            engine.dispose()
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, args.events)


if __name__ == "__main__":
    main()
