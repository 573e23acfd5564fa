"""Benchmark: sustained bookings through the gateway at 1, 8 and 32 concurrent clients.

Starts the whole system itself (PostgreSQL databases it creates and drops, a RabbitMQ vhost of
its own, free ports), and measures in the same run:
- the floor: a raw kombu request/reply round trip + a PostgreSQL commit + an HTTP no-op
  (GET /health on the gateway), each p50, summed;
- a no-op gateway->RPC call (GET /internal/booking-ping) at 1 and 32 clients, with the CPU it
  costs the clinic's processes per request;
- ``POST /api/v1/bookings`` at 1, 8 and 32 clients. A phase's window ends only when the work its
  bookings caused is done: the outbox is empty, availability holds every busy time and every
  notification is sent. Only 201s count; each phase starts drained. CPU milliseconds per booking
  are summed over every clinic process (from /proc: the supervisor and all its children).
It prints each goal of issue 18 beside its figure and exits 1 when one is missed: p50 at one
client within 3x the no-op gateway->RPC round trip; bookings per second at 32 clients at least
half the no-op's requests per second at 32; no double booking.

Run: `make bench` or `python bench/booking.py` (needs RabbitMQ and PostgreSQL as `make test`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa
from _system import Goals, System, cpu_seconds, percentile  # also puts the project on sys.path

ADMIN_TOKEN = "bench-admin-token-9a4c7e2f1d6b3085"
PHASES = ((1, 100), (8, 400), (32, 960))  # (clients, bookings)
FLOOR_SAMPLES = 200
DRAIN_SECONDS = 300
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def timed(call: Callable[[], object], samples: int) -> list[float]:
    durations = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        durations.append(time.perf_counter() - began)
    return durations


def kombu_round_trips(amqp_uri: str) -> list[float]:
    """A raw request/reply over RabbitMQ: publish, a consumer echoes, the reply is consumed."""
    from kombu import Connection

    stop = threading.Event()

    def echo() -> None:
        with Connection(amqp_uri) as connection:
            requests_q = connection.SimpleQueue("bench-request")
            replies_q = connection.SimpleQueue("bench-reply")
            while not stop.is_set():
                try:
                    message = requests_q.get(timeout=0.5)
                except requests_q.Empty:
                    continue
                replies_q.put(message.payload)
                message.ack()

    server = threading.Thread(target=echo, daemon=True)
    server.start()
    with Connection(amqp_uri) as connection:
        requests_q = connection.SimpleQueue("bench-request")
        replies_q = connection.SimpleQueue("bench-reply")

        def round_trip() -> None:
            requests_q.put({"ping": 1})
            replies_q.get(timeout=5).ack()

        timed(round_trip, 20)  # warm up
        durations = timed(round_trip, FLOOR_SAMPLES)
    stop.set()
    server.join(2)
    return durations


def postgres_commits(url: str) -> list[float]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE bench_commit (id serial primary key, at "
                                   "timestamptz)")
        connection.commit()

        def commit() -> None:
            connection.exec_driver_sql("INSERT INTO bench_commit (at) VALUES (now())")
            connection.commit()

        timed(commit, 20)
        durations = timed(commit, FLOOR_SAMPLES)
        connection.exec_driver_sql("DROP TABLE bench_commit")
        connection.commit()
    engine.dispose()
    return durations


def load(clients: int, total: int, request: Callable[[requests.Session, int], int],
         drained: Callable[[], bool] = lambda: True, cpu: Callable[[], float] = lambda: 0.0,
         ok: int = 200) -> dict:
    """``total`` requests from ``clients`` threads; latencies, throughput of ``ok`` answers
    until ``drained()`` says the work they caused is done, status counts, CPU seconds."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            began = time.perf_counter()
            status = request(session, index)
            spent = time.perf_counter() - began
            with lock:
                latencies.append(spent)
                statuses[status] = statuses.get(status, 0) + 1

    cpu_before = cpu()
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    answered = time.perf_counter() - began
    give_up = time.perf_counter() + DRAIN_SECONDS
    while not drained():
        if time.perf_counter() > give_up:
            raise SystemExit(f"the work of {total} requests was not done {DRAIN_SECONDS} s "
                             "after their last answer")
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    done = statuses.get(ok, 0)
    return {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95),
            "throughput": done / elapsed, "answered": answered, "elapsed": elapsed,
            "statuses": statuses, "cpu_ms": (cpu() - cpu_before) * 1000 / max(done, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", default=",".join(str(n) for _, n in PHASES),
                        help="bookings at 1, 8 and 32 clients")
    totals = [int(n) for n in parser.parse_args().bookings.split(",")]
    phases = tuple(zip((1, 8, 32), totals, strict=True))
    with System(ADMIN_TOKEN) as system:
        return run(system.base, system.amqp_uri, system.databases,
                   lambda: cpu_seconds(system.process.pid), phases)


def work_left(urls: dict[str, str]) -> Callable[[], bool]:
    """Whether every confirmed booking's events are published, its busy time recorded in
    availability and both its emails sent."""
    engines = {name: sa.create_engine(url) for name, url in urls.items()}

    def count(name: str, sql: str) -> int:
        with engines[name].connect() as connection:
            return connection.exec_driver_sql(sql).scalar_one()

    def drained() -> bool:
        confirmed = count("booking", "SELECT count(*) FROM bookings WHERE status = 'confirmed'")
        return (count("booking", "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
                and count("availability", "SELECT count(*) FROM busy_times") >= confirmed
                and count("notifications", "SELECT count(*) FROM notifications "
                          "WHERE status = 'sent'") >= 2 * confirmed  # client and therapist
                and count("notifications", "SELECT count(*) FROM notifications "
                          "WHERE status = 'pending'") == 0)
    return drained


def run(gateway: str, amqp_uri: str, urls: dict[str, str], cpu: Callable[[], float],
        phases: tuple[tuple[int, int], ...] = PHASES) -> int:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    therapist = "dr-bench"
    requests.post(gateway + "/api/v1/therapists", headers=headers, timeout=10, json={
        "id": therapist, "name": "Dr Bench", "specialties": ["dit"],
        "email": "dr-bench@clinic.example",  # emailed about each booking, as clients are
        "modalities": ["video"], "timezone": "UTC"}).raise_for_status()
    requests.put(gateway + f"/api/v1/therapists/{therapist}/schedule", headers=headers,
                 timeout=10, json={
                     "timezone": "UTC", "buffer_minutes": 10, "min_notice_hours": 0,
                     "horizon_days": 365,
                     "weekly": [{"weekday": d, "start": "00:00", "end": "23:00",
                                 "modalities": ["video"]} for d in WEEKDAYS]}).raise_for_status()
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    slots = iter(first + timedelta(hours=h) for h in range(24 * 300) if (first.hour + h) % 24 < 23)
    slot_lock = threading.Lock()

    def book(session: requests.Session, index: int) -> int:
        with slot_lock:
            start = next(slots).isoformat()
        return session.post(gateway + "/api/v1/bookings", timeout=30, json={
            "therapist_id": therapist, "session_type": "dit-session", "modality": "video",
            "start": start, "client": {"name": f"Client {index}",
                                       "email": f"c{index}@example.org"}}).status_code

    def ping(session: requests.Session, index: int) -> int:
        return session.get(gateway + "/internal/booking-ping", timeout=30).status_code

    http = requests.Session()
    timed(lambda: http.get(gateway + "/health", timeout=5), 20)
    floor_parts = {
        "kombu request/reply": statistics.median(kombu_round_trips(amqp_uri)),
        "PostgreSQL commit": statistics.median(postgres_commits(urls["booking"])),
        "HTTP no-op (/health)": statistics.median(
            timed(lambda: http.get(gateway + "/health", timeout=5), FLOOR_SAMPLES)),
    }
    floor = sum(floor_parts.values())
    drained = work_left(urls)
    load(4, 100, ping)  # warm up
    noop_1 = load(1, 300, ping, cpu=cpu)
    noop_32 = load(32, 2000, ping, cpu=cpu)
    load(1, 5, book, drained, ok=201)  # warm up (connections, caches), then drained
    results = {clients: load(clients, total, book, drained, cpu, ok=201)
               for clients, total in phases}

    print("floor (p50, measured now):")
    for name, value in floor_parts.items():
        print(f"  {name:24s} {value * 1000:7.2f} ms")
    print(f"  {'sum = floor':24s} {floor * 1000:7.2f} ms")
    print(f"no-op gateway->RPC: p50 {noop_1['p50'] * 1000:.2f} ms at 1 client; "
          f"{noop_32['throughput']:.0f} req/s at 32 clients; clinic CPU "
          f"{noop_32['cpu_ms']:.2f} ms a request")
    print("POST /api/v1/bookings, sustained (the window ends when every event's work is done):")
    print(f"  {'clients':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'201/s':>8s} {'answered s':>10s} "
          f"{'drained s':>9s} {'CPU ms/booking':>14s}  statuses")
    for clients, result in results.items():
        print(f"  {clients:7d} {result['p50'] * 1000:8.2f} {result['p95'] * 1000:8.2f} "
              f"{result['throughput']:8.1f} {result['answered']:10.1f} {result['elapsed']:9.1f} "
              f"{result['cpu_ms']:14.1f}  {result['statuses']}")
    p50_ratio = results[1]["p50"] / noop_1["p50"]
    throughput_ratio = results[32]["throughput"] / noop_32["throughput"]
    engine = sa.create_engine(urls["booking"])
    with engine.connect() as connection:
        doubles = connection.exec_driver_sql(
            "SELECT count(*) FROM bookings a JOIN bookings b ON a.therapist_id = b.therapist_id "
            "AND a.id < b.id AND a.start < b.blocked_end AND b.start < a.blocked_end "
            "WHERE a.status = 'confirmed' AND b.status = 'confirmed'").scalar_one()
        confirmed = connection.exec_driver_sql(
            "SELECT count(*) FROM bookings WHERE status = 'confirmed'").scalar_one()
    engine.dispose()
    print(f"CPU per booking at 32 clients: {results[32]['cpu_ms']:.1f} ms, "
          f"{results[32]['cpu_ms'] / max(noop_32['cpu_ms'], 1e-9):.0f}x the no-op RPC's "
          f"{noop_32['cpu_ms']:.2f} ms (all clinic processes, from /proc)")
    print("\ngoals (issue 18; ratios to figures of this run)")
    goals = Goals()
    goals.check("booking p50 at 1 client / no-op gateway->RPC p50", p50_ratio, "<= 3x",
                p50_ratio <= 3, "x")
    goals.check("sustained bookings/s at 32 / no-op req/s at 32", throughput_ratio, ">= 0.5x",
                throughput_ratio >= 0.5, "x")
    goals.check(f"double bookings among {confirmed} confirmed", doubles, "0", doubles == 0)
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
