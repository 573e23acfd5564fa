"""Benchmark: therapists' iCal feeds polled the way calendar apps poll them.

A calendar app polls a subscribed feed every 15 minutes (the feed asks for that), each poll on a
fresh connection, with ``Accept-Encoding: gzip`` and, for most apps, the ETag it was given. So
this benchmark starts the whole clinic on PostgreSQL (``bench/_system.py``), makes 500
therapists with about 100 sessions each (written straight into the booking database) and gives
each therapist two subscribers: one revalidates with ``If-None-Match``, the other (as some
calendar services do) always asks for the whole feed. Each subscriber polls once per simulated
15 minutes at its own fixed offset in the period; time is compressed (15 minutes in
``--period`` seconds, 30 by default). Compression does not flatter the gateway: nothing it
caches expires by time within 15 minutes (a feed is kept until an event changes it; its
time-to-live is 24 hours), so the only thing that decides hit or miss is what changed, and
changes happen at the real rate: at the start of each period ``--changes`` (25) therapists get a
new booking through the API, whose events drop their feeds in the gateway.

The first period subscribes (every feed built once). The later periods are measured: p50/p95
of 304s, of 200s answered from memory, of 200s that rebuilt a changed feed, beside a no-op
``GET /health`` sent on the same schedule (also on fresh connections), and the uncached build of
one feed in this process. Goals (what the cached path gave before, when polls came seconds
apart: a 304 1.18x and a cached 200 1.44x the no-op): a 304 and a 200 from memory each within
1.5x the no-op; every revalidating poll a 304 unless its feed changed. Exits 1 when a goal is
missed.

    .venv/bin/python bench/feeds.py [--therapists 500] [--periods 3] [--period 30]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import random
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa
from _system import Goals, System, percentile  # also puts the project on sys.path

from gateway.feeds import build_feed
from services.booking import policy
from services.booking.models import bookings

NAMES = ("Ana-Sofía Núñez", "Ben Okafor", "Chloé Dubois", "Dev Patel", "Eilidh MacLeod",
         "Farah Haddad", "Grzegorz Wiśniewski", "Hana Sato")
SESSIONS_EACH = 100
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def set_up_clinic(system: System, therapists: int, changing: int) -> dict[str, str]:
    """The therapists (the first ``changing`` with a schedule, to be booked during the run)
    and each one's feed URL."""
    api = system.base + "/api/v1"
    http = requests.Session()
    for room in ("garden", "library"):
        http.post(f"{api}/rooms", headers=system.admin, timeout=10,
                  json={"id": room, "name": f"{room.title()} room"}).raise_for_status()
    urls = {}
    for index in range(therapists):
        therapist = f"dr-{index:03d}"
        http.post(f"{api}/therapists", headers=system.admin, timeout=10, json={
            "id": therapist, "name": f"Dr {index}", "specialties": ["DIT"],
            "timezone": "Europe/London", "modalities": ["in_person", "video", "phone"]},
        ).raise_for_status()
        if index < changing:
            http.put(f"{api}/therapists/{therapist}/schedule", headers=system.admin, timeout=10,
                     json={"timezone": "UTC", "buffer_minutes": 10, "min_notice_hours": 0,
                           "horizon_days": 365,
                           "weekly": [{"weekday": d, "start": "00:00", "end": "23:00",
                                       "modalities": ["video"]} for d in WEEKDAYS]},
                     ).raise_for_status()
        urls[therapist] = http.get(f"{api}/therapists/{therapist}/calendar-feed",
                                   headers=system.admin, timeout=10).json()["url"]
    return urls


def write_sessions(url: str, therapists: list[str], rng: random.Random) -> None:
    """About ``SESSIONS_EACH`` sessions per therapist inside the feed's window, weekly times
    from 11 weeks back, some cancelled or attended; none in the next three days, which the run
    books."""
    now = datetime.now(UTC).replace(microsecond=0)
    monday = (now - timedelta(weeks=11, days=now.weekday())).replace(hour=0, minute=0, second=0)
    rows = []
    for therapist in therapists:
        for index in range(SESSIONS_EACH):
            start = monday + timedelta(weeks=index // 10, days=index % 5,
                                       hours=8 + (index % 10) // 5 * 3)
            if now < start < now + timedelta(days=4):
                start += timedelta(weeks=30)
            end = start + timedelta(minutes=50)
            modality = rng.choice(("video", "phone"))  # rooms would clash across therapists
            status = "cancelled" if rng.random() < 0.1 else (
                "attended" if end < now else "confirmed")
            rows.append({
                "id": str(uuid.uuid4()), "therapist_id": therapist,
                "session_type": "dit-session", "modality": modality, "start": start,
                "end": end, "blocked_end": end + timedelta(minutes=10),
                "room": None,
                "status": status, "expires_at": None, "sequence": rng.choice((0, 0, 1, 2)),
                "course_id": None, "session_number": None, "course_sessions": None,
                "client_name": rng.choice(NAMES), "client_email": "client@example.org",
                "client_phone": None, "client_timezone": "Europe/London", "notes": "private",
                "late_cancellation": False,
                "cancelled_by": "client" if status == "cancelled" else None,
                "cancelled_at": now if status == "cancelled" else None,
                "cancel_reason": "private" if status == "cancelled" else None,
                "hold_id": None, "created_at": now, "updated_at": now})
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for chunk in range(0, len(rows), 5000):
            connection.execute(sa.insert(bookings), rows[chunk:chunk + 5000])
        connection.exec_driver_sql("ANALYZE bookings")
    engine.dispose()


def feed_sessions(url: str, therapist: str) -> list[dict]:
    """One therapist's sessions exactly as the booking service hands them to the gateway."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(bookings).where(bookings.c.therapist_id == therapist)
                                  .order_by(bookings.c.start)).mappings().all()
    engine.dispose()
    return [policy.feed_view(row) for row in rows]


def get(base: str, path: str, headers: dict[str, str]
        ) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a fresh connection, as a calendar app's poll every 15 minutes is."""
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.msg, response.read()
    finally:
        connection.close()


@dataclass
class Subscriber:
    therapist: str
    path: str
    revalidates: bool
    offset: float  # where in each period it polls, seconds
    etag: str | None = None
    events: int | None = None


@dataclass
class Answers:
    samples: dict[str, list[float]] = field(default_factory=dict)
    late: int = 0
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, ms: float) -> None:
        with self.lock:
            self.samples.setdefault(kind, []).append(ms)


def poll(base: str, subscriber: Subscriber, changed: bool, rebuilds: bool, measured: bool,
         answers: Answers) -> None:
    """``changed``: the feed changed since this subscriber's last poll; ``rebuilds``: this is the
    therapist's first poll since then, which the gateway must build."""
    headers = {"Accept-Encoding": "gzip", "User-Agent": "bench-calendar-app"}
    if subscriber.revalidates and subscriber.etag:
        headers["If-None-Match"] = subscriber.etag
    began = time.perf_counter()
    try:
        status, response_headers, body = get(base, subscriber.path, headers)
    except (OSError, http.client.HTTPException) as error:  # no answer: counted, not lost
        answers.wrong.append(f"{subscriber.therapist}: {error!r}")
        return
    ms = (time.perf_counter() - began) * 1000
    expected = 200 if changed or "If-None-Match" not in headers else 304
    if status == 200:
        if response_headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        subscriber.etag = response_headers.get("ETag")
        subscriber.events = body.count(b"BEGIN:VEVENT")
    if measured and status != expected and "If-None-Match" in headers:
        answers.wrong.append(f"{subscriber.therapist}: {status}, expected {expected}")
    if not measured:
        return
    if status == 304:
        answers.add("304", ms)
    elif status == 200:
        answers.add("200 rebuilt after a change" if rebuilds else "200 from memory", ms)
    else:
        answers.wrong.append(f"{subscriber.therapist}: {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--therapists", type=int, default=500)
    parser.add_argument("--periods", type=int, default=3)
    parser.add_argument("--period", type=float, default=30.0, help="real seconds per 15 minutes")
    parser.add_argument("--changes", type=int, default=25, help="therapists booked per period")
    args = parser.parse_args()
    rng = random.Random(2026)
    with System() as system:
        urls = set_up_clinic(system, args.therapists, changing=4 * args.changes)
        write_sessions(system.databases["booking"], list(urls), rng)
        sample = feed_sessions(system.databases["booking"], "dr-000")
        therapist = requests.get(f"{system.base}/api/v1/therapists/dr-000", timeout=10).json()
        types = {t["id"]: t["name"] for t in
                 requests.get(f"{system.base}/api/v1/session-types", timeout=10).json()}
        rooms = {r["id"]: r["name"] for r in
                 requests.get(f"{system.base}/api/v1/rooms", timeout=10).json()}
        builds = []
        for _ in range(20):
            began = time.perf_counter()
            feed = build_feed(therapist, sample, types, rooms)
            builds.append((time.perf_counter() - began) * 1000)
        subscribers = [Subscriber(t, urllib.parse.urlsplit(url).path, revalidates, rng.uniform(
            2.0, args.period - 0.5)) for t, url in urls.items() for revalidates in (True, False)]
        answers = Answers()
        slots = iter(datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                     + timedelta(days=1, hours=h) for h in range(24 * 300))
        changing = [f"dr-{index:03d}" for index in range(4 * args.changes)]
        with ThreadPoolExecutor(16) as pool:
            for period in range(args.periods):
                changed = set()
                if period:  # a booking for some therapists: their feeds change
                    for therapist_id in rng.sample(changing, args.changes):
                        response = requests.post(system.base + "/api/v1/bookings", timeout=30,
                                                 json={"therapist_id": therapist_id,
                                                       "session_type": "dit-session",
                                                       "modality": "video",
                                                       "start": next(slots).isoformat(),
                                                       "client": {"name": "New Client",
                                                                  "email": "n@example.org"}})
                        if response.status_code == 201:
                            changed.add(therapist_id)
                began = time.monotonic()  # the period's polls begin 2 s after its bookings
                schedule = sorted([(s.offset, "poll", s) for s in subscribers]
                                  + [(rng.uniform(2.0, args.period - 0.5), "no-op", None)
                                     for _ in range(len(subscribers) // 5)],
                                  key=lambda item: item[0])
                seen: set[tuple[str, bool]] = set()  # subscribers polled since the change
                sent = []
                for offset, kind, subscriber in schedule:
                    ahead = began + offset - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                    elif ahead < -0.05:
                        answers.late += 1
                    if kind == "no-op":
                        if period:
                            sent.append(pool.submit(noop, system.base, answers))
                        continue
                    is_changed = subscriber.therapist in changed
                    fresh = is_changed and (subscriber.therapist, subscriber.revalidates) \
                        not in seen
                    rebuilds = is_changed and not any(
                        (subscriber.therapist, r) in seen for r in (True, False))
                    seen.add((subscriber.therapist, subscriber.revalidates))
                    sent.append(pool.submit(poll, system.base, subscriber, fresh or period == 0,
                                            rebuilds, period > 0, answers))
                time.sleep(max(0.0, began + args.period - time.monotonic()))
                wait(sent)  # a period's polls are answered before the next period's changes
    measured = [s for kind, s in answers.samples.items() if kind != "no-op"]
    count = sum(len(s) for s in measured)
    print(f"{args.therapists} therapists, about {SESSIONS_EACH} sessions each "
          f"({len(feed):,} bytes a feed), 2 subscribers each, one poll per subscriber per "
          f"simulated 15 minutes ({args.period:.0f} s); {args.periods - 1} periods measured "
          f"({count} polls), {args.changes} therapists booked per period; "
          f"{answers.late} requests started over 50 ms late")
    print(f"  {'measure':<34}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}")
    print(f"  {'uncached build (in-process)':<34}{len(builds):>7}"
          f"{statistics.median(builds):>9.2f}{percentile(builds, 0.95):>9.2f}")
    for kind in ("no-op", "304", "200 from memory", "200 rebuilt after a change"):
        samples = answers.samples.get(kind, [])
        if samples:
            print(f"  {kind:<34}{len(samples):>7}{statistics.median(samples):>9.2f}"
                  f"{percentile(samples, 0.95):>9.2f}")
    for problem in answers.wrong[:10]:
        print(f"  unexpected: {problem}")
    print(f"  (changed feeds: {args.changes} a period; a subscriber's first poll after the "
          "change is a 200; the therapist's first poll rebuilds the feed)")
    p50 = {kind: statistics.median(s) for kind, s in answers.samples.items()}
    print("\ngoals (p50, same run)")
    goals = Goals()
    goals.check("304 at 15-minute intervals / no-op", p50["304"] / p50["no-op"], "<= 1.5x",
                p50["304"] <= 1.5 * p50["no-op"], "x")
    goals.check("200 from memory at 15-minute intervals / no-op",
                p50["200 from memory"] / p50["no-op"], "<= 1.5x",
                p50["200 from memory"] <= 1.5 * p50["no-op"], "x")
    goals.check("answers other than expected (304 unchanged, 200 changed)",
                len(answers.wrong), "0", not answers.wrong)
    return goals.exit_code()


def noop(base: str, answers: Answers) -> None:
    began = time.perf_counter()
    status, _, _ = get(base, "/health", {"Accept-Encoding": "gzip"})
    if status == 200:
        answers.add("no-op", (time.perf_counter() - began) * 1000)


if __name__ == "__main__":
    sys.exit(main())
