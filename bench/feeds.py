"""Benchmark: a therapist's iCal feed with 1,000 bookings, as calendar apps poll it.

Starts the whole clinic on PostgreSQL (``bench/_system.py``), writes one therapist's 1,000
bookings (60 sixteen-week courses, some sessions cancelled or attended, and 40 single sessions,
all within the feed's window) straight into the booking database, then measures in one run:

- floor: ``GET /health`` through the gateway (a no-op request on the same keep-alive connection;
  ``http.client``, whose own cost is a tenth of ``requests``' and would otherwise hide the
  difference between a 304 and the floor);
- the uncached build: ``gateway.feeds.build_feed`` on the same 1,000 sessions, in this process
  (what every poll would cost without the cache, before any RPC);
- the feed through the gateway: a cached 200, and a 304 for ``If-None-Match``.

Prints p50/p95 and the ratios against the goals: a cached 200 at least 20x faster than the
uncached build; a 304 within 1.5x the no-op request.

    .venv/bin/python bench/feeds.py [--requests 300]
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa
from _system import System, percentile  # also puts the project on sys.path

from gateway.feeds import build_feed
from services.booking import policy
from services.booking.models import bookings, courses

THERAPIST = "dr-feed"
NAMES = ("Ana-Sofía Núñez", "Ben Okafor", "Chloé Dubois", "Dev Patel", "Eilidh MacLeod",
         "Farah Haddad", "Grzegorz Wiśniewski", "Hana Sato")
COURSES, COURSE_SESSIONS, SINGLES = 60, 16, 40


def set_up_clinic(system: System) -> str:
    api = system.base + "/api/v1"
    for room in ("garden", "library"):
        requests.post(f"{api}/rooms", headers=system.admin, timeout=10,
                      json={"id": room, "name": f"{room.title()} room"}).raise_for_status()
    requests.post(f"{api}/therapists", headers=system.admin, timeout=10, json={
        "id": THERAPIST, "name": "Dr Feed", "specialties": ["DIT"], "timezone": "Europe/London",
        "modalities": ["in_person", "video", "phone"]}).raise_for_status()
    return requests.get(f"{api}/therapists/{THERAPIST}/calendar-feed", headers=system.admin,
                        timeout=10).json()["url"]


def write_bookings(url: str, rng: random.Random) -> None:
    """60 courses on distinct weekly times (weekday x hour), then 40 Saturday sessions."""
    now = datetime.now(UTC).replace(microsecond=0)
    monday = (now - timedelta(weeks=11, days=now.weekday())).replace(hour=0, minute=0, second=0)
    course_rows, booking_rows = [], []

    def booking(start: datetime, **extra) -> dict:
        end = start + timedelta(minutes=50)
        modality = rng.choice(("in_person", "video", "phone"))
        status = "cancelled" if rng.random() < 0.1 else (
            "attended" if end < now else "confirmed")
        return {"id": str(uuid.uuid4()), "therapist_id": THERAPIST,
                "session_type": "dit-session", "modality": modality, "start": start, "end": end,
                "blocked_end": end + timedelta(minutes=10),
                "room": rng.choice(("garden", "library")) if modality == "in_person" else None,
                "status": status, "expires_at": None, "sequence": rng.choice((0, 0, 1, 2)),
                "course_id": None, "session_number": None, "course_sessions": None,
                "client_name": rng.choice(NAMES), "client_email": "client@example.org",
                "client_phone": "+44 20 7946 0000", "client_timezone": "Europe/London",
                "notes": "private", "late_cancellation": False,
                "cancelled_by": "client" if status == "cancelled" else None,
                "cancelled_at": now if status == "cancelled" else None,
                "cancel_reason": "private" if status == "cancelled" else None, "hold_id": None,
                "created_at": now, "updated_at": now, **extra}

    for index in range(COURSES):
        first = monday + timedelta(days=index % 5, hours=8 + index // 5)
        course_id = str(uuid.uuid4())
        sessions = [booking(first + timedelta(weeks=week), course_id=course_id,
                            session_number=week + 1, course_sessions=COURSE_SESSIONS)
                    for week in range(COURSE_SESSIONS)]
        for session in sessions:
            session["client_name"] = sessions[0]["client_name"]
        course_rows.append({
            "id": course_id, "therapist_id": THERAPIST, "session_type": "dit-session",
            "modality": sessions[0]["modality"], "status": "active",
            "session_count": COURSE_SESSIONS, "skip_weeks": [], "first_start": first,
            "last_end": sessions[-1]["end"], "client_name": sessions[0]["client_name"],
            "client_email": "client@example.org", "client_phone": None,
            "client_timezone": "Europe/London", "notes": None, "created_at": now,
            "cancelled_at": None, "cancelled_by": None})
        booking_rows += sessions
    for index in range(SINGLES):
        saturday = monday + timedelta(days=5, weeks=index // 10, hours=9 + index % 10)
        booking_rows.append(booking(saturday))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.insert(courses), course_rows)
        connection.execute(sa.insert(bookings), booking_rows)
        connection.exec_driver_sql("ANALYZE bookings")
    engine.dispose()


def feed_sessions(url: str) -> list[dict]:
    """The sessions exactly as the booking service hands them to the gateway."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(bookings).order_by(bookings.c.start)).mappings().all()
    engine.dispose()
    return [policy.feed_view(row) for row in rows]


def timed(call, count: int) -> list[float]:
    for _ in range(max(5, count // 10)):  # warm-up: connections, caches
        call()
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


class Client:
    """One keep-alive HTTP/1.1 connection to the gateway."""

    def __init__(self, base: str) -> None:
        parts = urllib.parse.urlsplit(base)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def get(self, url: str, status: int, headers: dict[str, str] | None = None
            ) -> tuple[bytes, http.client.HTTPMessage]:
        self.connection.request("GET", urllib.parse.urlsplit(url).path, headers=headers or {})
        response = self.connection.getresponse()
        body = response.read()
        if response.status != status:
            raise SystemExit(f"expected {status} from {url}, got {response.status}: {body[:200]}")
        return body, response.msg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with System() as system:
        feed_url = set_up_clinic(system)
        write_bookings(system.databases["booking"], random.Random(2026))
        sessions = feed_sessions(system.databases["booking"])
        therapist = requests.get(f"{system.base}/api/v1/therapists/{THERAPIST}",
                                 timeout=10).json()
        types = {t["id"]: t["name"] for t in
                 requests.get(f"{system.base}/api/v1/session-types", timeout=10).json()}
        rooms = {r["id"]: r["name"] for r in
                 requests.get(f"{system.base}/api/v1/rooms", timeout=10).json()}
        http = Client(system.base)
        cold_began = time.perf_counter()
        body, headers = http.get(feed_url, 200)
        cold = (time.perf_counter() - cold_began) * 1000
        if body.count(b"BEGIN:VEVENT") != len(sessions) or len(sessions) != 1000:
            raise SystemExit(f"the feed has {body.count(b'BEGIN:VEVENT')} events, "
                             f"expected {len(sessions)}")
        etag = {"If-None-Match": headers["ETag"]}
        results = {
            "no-op GET /health": timed(lambda: http.get(system.base + "/health", 200),
                                       args.requests),
            "uncached build": timed(lambda: build_feed(therapist, sessions, types, rooms),
                                    max(20, args.requests // 10)),
            "feed, cached 200": timed(lambda: http.get(feed_url, 200), args.requests),
            "feed, 304": timed(lambda: http.get(feed_url, 304, etag), args.requests),
        }
    print(f"one therapist, {len(sessions)} bookings; feed {len(body):,} bytes; "
          f"{args.requests} requests each; first (uncached) request through the gateway "
          f"{cold:.0f} ms")
    print(f"  {'measure':<20}{'p50 ms':>9}{'p95 ms':>9}")
    for name, samples in results.items():
        print(f"  {name:<20}{statistics.median(samples):>9.2f}{percentile(samples, 0.95):>9.2f}")
    p50 = {name: statistics.median(samples) for name, samples in results.items()}
    speedup = p50["uncached build"] / p50["feed, cached 200"]
    conditional = p50["feed, 304"] / p50["no-op GET /health"]
    print("\nsummary (p50, same run)")
    print(f"  cached 200 vs uncached build: {speedup:.1f}x faster  (goal >= 20x)")
    print(f"  304 vs no-op request:         {conditional:.2f}x  (goal <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
