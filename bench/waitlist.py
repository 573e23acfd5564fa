"""Benchmark: offering a freed time when 10,000 clients are waiting.

The booking service's use case (``WaitlistCases.offer``) runs in this process against a
migrated PostgreSQL database of its own (created here, dropped at the end) and a SQLite file;
availability is a small in-process double (the scan is what is measured, not RPC). Each round
joins one fitting entry, frees a time for it and times the offer (scan, claim, hold, outbox
event, commit); the offer is then withdrawn so the next round starts alike.

- floor: the offer with no other entry waiting;
- 10,000 entries of other therapists waiting (the index leaves them unread);
- 10,000 entries of this therapist and of "any therapist" waiting ahead of the fitting one,
  for other days (skipped in SQL by their UTC weekday/hour masks);
- 10,000 such entries whose window is the freed time's day and hour but too short for the
  session (the worst case: every one is read and refused in Python).

    .venv/bin/python bench/waitlist.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _system import POSTGRES, percentile  # also puts the project on sys.path

from clinic import migrate
from clinic.db import UnitOfWork, create_engine_for
from clinic.settings import Settings
from services.booking.models import bookings, waitlist_entries, waitlist_offers
from services.booking.waitlist import FreedTime, reach
from services.booking.waitlist_usecases import WaitlistCases

THERAPIST = "bench-therapist"
NOW = datetime.now(UTC).replace(microsecond=0)
FREED = (NOW + timedelta(days=9)).replace(hour=10, minute=0, second=0)
FITTING = [{"weekday": w, "start": "00:00", "end": "23:59"}
           for w in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                     "sunday")]
NEVER = [{"weekday": "sunday", "start": "03:00", "end": "03:30"}]  # never the freed time
# the freed time's weekday and hour, but too short for a 50-minute session: read, then refused
ALMOST = [{"weekday": FREED.strftime("%A").lower(), "start": "10:00", "end": "10:30"}]


class Availability:
    def check_session(self, therapist_id, session_type, modality, start):
        begin = datetime.fromisoformat(start)
        return {"therapist_id": therapist_id, "session_type": session_type,
                "modality": modality, "start": start,
                "end": (begin + timedelta(minutes=50)).isoformat(), "buffer_minutes": 10,
                "rooms": []}

    def get_therapist(self, therapist_id):
        return {"id": therapist_id}


def entries(count: int, therapist: str | None, windows: list, start_position: int) -> list:
    weekdays, hours = reach(windows, "UTC", NOW.date())
    return [{"id": str(uuid.uuid4()), "therapist_id": therapist, "session_type": "dit-session",
             "modality": "video", "kind": "session", "sessions": 1, "windows": windows,
             "timezone": "UTC", "until_at": None,
             "utc_weekdays": weekdays, "utc_hours": hours, "status": "waiting", "joined_at": NOW,
             "position": start_position + n, "client_name": "Waiting Client",
             "client_email": f"c{start_position + n}@example.org", "updated_at": NOW}
            for n in range(count)]


def add(uow: UnitOfWork, rows: list) -> None:
    with uow.transaction() as session:
        for chunk in range(0, len(rows), 2000):
            session.execute(sa.insert(waitlist_entries), rows[chunk:chunk + 2000])
    with uow.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":  # the next joins come after them
            session.execute(sa.text("SELECT setval('waitlist_entries_position_seq', "
                                    "(SELECT max(position) FROM waitlist_entries))"))
            session.execute(sa.text("ANALYZE waitlist_entries"))


def one_offer(cases: WaitlistCases, uow: UnitOfWork) -> float:
    """Join a fitting entry last, time the offer of the freed time, withdraw it again."""
    join = cases.join({"therapist_id": THERAPIST, "session_type": "dit-session",
                       "modality": "video", "windows": FITTING, "tz": "UTC",
                       "client": {"name": "Last Joined", "email": "last@example.org"}})
    began = time.perf_counter()
    offer_id = cases.offer(FreedTime(THERAPIST, FREED))
    took = (time.perf_counter() - began) * 1000
    assert offer_id, "the fitting entry was not offered the time"
    with uow.transaction() as session:  # as if it never happened, for the next round
        session.execute(sa.update(waitlist_entries).where(waitlist_entries.c.id == join["id"])
                        .values(status="left"))
        session.execute(sa.update(waitlist_offers).where(waitlist_offers.c.id == offer_id)
                        .values(status="declined"))
        session.execute(sa.update(bookings).where(bookings.c.status == "held")
                        .values(status="released"))
    return took


def measure(cases: WaitlistCases, uow: UnitOfWork, rounds: int) -> list[float]:
    for _ in range(3):
        one_offer(cases, uow)
    return [one_offer(cases, uow) for _ in range(rounds)]


def run(url: str, rounds: int) -> dict[str, list[float]]:
    migrate.upgrade("booking", url)
    engine = create_engine_for(url)
    uow = UnitOfWork(engine, threading.Lock() if url.startswith("sqlite") else None)
    cases = WaitlistCases(uow, lambda: NOW, Availability(),
                          Settings.from_config({"CLINIC_TIMEZONE": "UTC"}))
    results = {"floor: none waiting": measure(cases, uow, rounds)}
    add(uow, entries(10000, "other-therapist", FITTING, 1_000_000))
    results["10,000 of others"] = measure(cases, uow, rounds)
    add(uow, entries(5000, THERAPIST, NEVER, 2_000_000)
        + entries(5000, None, NEVER, 3_000_000))
    results["10,000 ahead, other days"] = measure(cases, uow, rounds)
    with uow.transaction() as session:
        session.execute(sa.update(waitlist_entries).where(waitlist_entries.c.position >= 2_000_000)
                        .values(status="left"))
    add(uow, entries(5000, THERAPIST, ALMOST, 4_000_000)
        + entries(5000, None, ALMOST, 5_000_000))
    results["10,000 ahead, same hour"] = measure(cases, uow, rounds)
    engine.dispose()
    return results


def report(title: str, results: dict[str, list[float]]) -> None:
    floor = statistics.median(results["floor: none waiting"])
    print(f"\n{title}")
    print(f"  {'waiting':<26}{'p50 ms':>9}{'p95 ms':>9}{'p50 ratio':>11}")
    for name, samples in results.items():
        p50 = statistics.median(samples)
        print(f"  {name:<26}{p50:>9.2f}{percentile(samples, 0.95):>9.2f}{p50 / floor:>10.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"bench_waitlist_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        report("PostgreSQL", run(POSTGRES.rsplit("/", 1)[0] + "/" + name, args.rounds))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    with tempfile.TemporaryDirectory() as folder:
        report("SQLite", run(f"sqlite:///{Path(folder) / 'booking.db'}", args.rounds))
    print("\ngoal: others and other days within 2x of the floor; same hour (all read) < 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
