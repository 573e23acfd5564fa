"""Benchmark: slot search and course options through the gateway, against a no-op round trip.

Starts the whole system (``clinic.supervisor``) on a free port, a RabbitMQ vhost and PostgreSQL
databases of its own (created here, dropped at the end). One therapist gets a year of bookings
(about 2,000, written straight into availability's busy table as the booking events would leave
it, search stamps renewed too). Then, through the gateway, with the same HTTP keep-alive connection:

- floor: ``GET /internal/availability-ping`` (gateway -> RPC ping -> reply, no database);
- a 92-day slot search (in person, so rooms are searched too);
- 16-session course options (in person).

Then 48,000 more bookings are added outside the asked range (the therapist's past years) and the
same requests are timed again: the cost must not grow with them. Prints p50/p95, and each goal
of issue 18 beside its ratio (slots within 2x and course options within 3x of the no-op, at
2,000 and at 50,000 bookings; 50,000 within 1.3x of 2,000); exits 1 when one is missed.

    .venv/bin/python bench/slots.py [--requests 200]

Needs RabbitMQ (``CLINIC_TEST_AMQP_URI`` or localhost) and PostgreSQL
(``CLINIC_TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import requests
import sqlalchemy as sa
from _system import Goals, System  # also puts the project on sys.path

from services.availability.models import BusyTime, SearchStamp

THERAPIST = "bench-therapist"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
# "Unchanged from 2,000 to 50,000 bookings": within the run-to-run noise seen on two shared cores.
GROWTH = 1.3


# --- data --------------------------------------------------------------------------------------


def set_up_clinic(system: System) -> None:
    admin = system.admin
    api = system.base + "/api/v1"
    for room in ("garden", "library"):
        requests.post(f"{api}/rooms", headers=admin, json={"id": room, "name": room.title()}
                      ).raise_for_status()
    requests.post(f"{api}/therapists", headers=admin, json={
        "id": THERAPIST, "name": "Bench Therapist", "specialties": ["DIT"],
        "modalities": ["in_person", "video", "phone"]}).raise_for_status()
    requests.put(f"{api}/therapists/{THERAPIST}/schedule", headers=admin, json={
        "weekly": [{"weekday": day, "start": "08:00", "end": "20:00",
                    "modalities": ["in_person", "video", "phone"]} for day in WEEKDAYS],
        "slot_interval_minutes": 30, "horizon_days": 365}).raise_for_status()


def sessions_between(first: date, last: date, count: int, rng: random.Random) -> list[datetime]:
    """``count`` distinct whole-hour weekday starts (UTC) between the two dates."""
    days = [first + timedelta(days=n) for n in range((last - first).days)]
    days = [d for d in days if d.weekday() < 5]
    grid = [datetime(d.year, d.month, d.day, hour, tzinfo=UTC) for d in days
            for hour in range(8, 19)]
    return sorted(rng.sample(grid, min(count, len(grid))))


def add_bookings(url: str, starts: list[datetime], rng: random.Random) -> None:
    now = datetime.now(UTC)
    rows = []
    for start in starts:
        room = rng.choice(("garden", "library", None, None))
        end = start + timedelta(minutes=50)
        rows.append({"id": uuid.uuid4().hex, "kind": "booking", "therapist_id": THERAPIST,
                     "room": room, "start": start, "end": end,
                     "blocked_end": end + timedelta(minutes=10), "active": True,
                     "expires_at": None, "sequence": 0, "updated_at": now})
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for chunk in range(0, len(rows), 5000):
            connection.execute(sa.insert(BusyTime), rows[chunk:chunk + 5000])
        # As the booking events would: searches computed before these rows stop being reused.
        stamps = [{"scope": scope, "stamp": uuid.uuid4().hex} for scope in
                  (f"therapist:{THERAPIST}", "room:garden", "room:library")]
        connection.execute(sa.delete(SearchStamp).where(
            SearchStamp.scope.in_([row["scope"] for row in stamps])))
        connection.execute(sa.insert(SearchStamp), stamps)
        connection.exec_driver_sql("ANALYZE busy_times")
    engine.dispose()


# --- timing ------------------------------------------------------------------------------------


def timed(http: requests.Session, url: str, params: dict | None, count: int,
          before=None) -> list[float]:
    for _ in range(max(5, count // 10)):  # warm-up: connections, caches, query plans
        http.get(url, params=params).raise_for_status()
    samples = []
    for _ in range(count):
        if before is not None:
            before()  # untimed
        began = time.perf_counter()
        response = http.get(url, params=params)
        samples.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return samples


def p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def renew_stamps(engine: sa.Engine) -> None:
    """What any booking event of the therapist does to its stamp: the next search recomputes."""
    with engine.begin() as connection:
        connection.execute(sa.update(SearchStamp)
                           .where(SearchStamp.scope == f"therapist:{THERAPIST}")
                           .values(stamp=uuid.uuid4().hex))


def measure(system: System, count: int) -> dict[str, list[float]]:
    today = datetime.now(UTC).date()
    first = today + timedelta(days=2)
    slots = {"session_type": "dit-session", "modality": "in_person",
             "from": first.isoformat(), "to": (first + timedelta(days=91)).isoformat()}
    course = {"session_type": "dit-session", "modality": "in_person", "sessions": 16,
              "from": first.isoformat()}
    therapist = f"{system.base}/api/v1/therapists/{THERAPIST}"
    with requests.Session() as http:
        found = http.get(f"{therapist}/slots", params=slots).json()["slots"]
        options = http.get(f"{therapist}/course-options", params=course).json()["options"]
        results = {
            "no-op round trip": timed(http, system.base + "/internal/availability-ping", None,
                                      count),
            "slots, 92 days": timed(http, f"{therapist}/slots", slots, count),
            "course options, 16": timed(http, f"{therapist}/course-options", course, count),
        }
        # Not a goal: the same requests right after a change, when nothing computed is reused.
        engine = sa.create_engine(system.databases["availability"])
        changed = functools.partial(renew_stamps, engine)
        results["slots, after a change"] = timed(http, f"{therapist}/slots", slots,
                                                 count // 4, changed)
        results["course, after a change"] = timed(http, f"{therapist}/course-options", course,
                                                  count // 4, changed)
        engine.dispose()
    print(f"  (the search found {len(found)} free slots and {len(options)} course options)")
    return results


def report(title: str, results: dict[str, list[float]]) -> dict[str, float]:
    floor = results["no-op round trip"]
    print(f"\n{title}")
    print(f"  {'request':<22}{'p50 ms':>9}{'p95 ms':>9}{'p50 ratio':>11}{'p95 ratio':>11}")
    medians = {}
    for name, samples in results.items():
        p50, p95 = statistics.median(samples), p(samples, 95)
        medians[name] = p50
        print(f"  {name:<22}{p50:>9.2f}{p95:>9.2f}{p50 / statistics.median(floor):>10.2f}x"
              f"{p95 / p(floor, 95):>10.2f}x")
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(2026)
    today = datetime.now(UTC).date()
    with System() as system:
        set_up_clinic(system)
        # A year of bookings around today: half behind, half ahead (inside the searched range).
        add_bookings(system.databases["availability"],
                     sessions_between(today - timedelta(days=182), today + timedelta(days=183),
                                      2000, rng), rng)
        print(f"one therapist, 2,000 bookings over a year; {args.requests} requests each")
        small = report("2,000 bookings", measure(system, args.requests))
        # 48,000 more in the therapist's past years: none of them near the asked range.
        add_bookings(system.databases["availability"],
                     sessions_between(today - timedelta(days=365 * 22),
                                      today - timedelta(days=190), 48000, rng), rng)
        large = report("50,000 bookings (48,000 more, all outside the asked range)",
                       measure(system, args.requests))
    print("\ngoals (issue 18; p50 against the no-op round trip of the same run)")
    goals = Goals()
    for name, goal in (("slots, 92 days", 2.0), ("course options, 16", 3.0)):
        for label, medians in (("2,000", small), ("50,000", large)):
            ratio = medians[name] / medians["no-op round trip"]
            goals.check(f"{name}, {label} bookings / no-op", ratio, f"<= {goal:g}x",
                        ratio <= goal, "x")
        growth = large[name] / small[name]
        goals.check(f"{name}: 50,000 / 2,000 bookings (unchanged)", growth,
                    f"<= {GROWTH:g}x", growth <= GROWTH, "x")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
