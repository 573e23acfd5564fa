"""Benchmark: POST /api/v1/bookings through the gateway at 1, 8 and 32 concurrent clients.

Starts the whole system itself (PostgreSQL databases it creates and drops, a RabbitMQ vhost of
its own, free ports), and measures in the same run:
- the floor: a raw kombu request/reply round trip + a PostgreSQL commit + an HTTP no-op
  (GET /health on the gateway), each p50, summed;
- a no-op gateway->RPC call (GET /internal/booking-ping) at 1 and 32 clients;
then prints p50/p95 and throughput of bookings beside them, the ratios against the goals
(p50 at one client within 3x the floor; throughput at 32 clients at least half the no-op
gateway->RPC throughput), and counts double bookings left in the data (must be 0).

Run: `make bench` or `python bench/booking.py` (needs RabbitMQ and PostgreSQL as `make test`).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa
from _system import System, percentile  # also puts the project on sys.path

ADMIN_TOKEN = "bench-admin-token-9a4c7e2f1d6b3085"
PHASES = ((1, 100), (8, 400), (32, 960))  # (clients, bookings)
FLOOR_SAMPLES = 200
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


def load(clients: int, total: int, request: Callable[[requests.Session, int], int]) -> dict:
    """``total`` requests from ``clients`` threads; latencies, throughput, status counts."""
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

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    elapsed = time.perf_counter() - began
    return {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95),
            "throughput": total / elapsed, "statuses": statuses}


def main() -> int:
    with System(ADMIN_TOKEN) as system:
        return run(system.base, system.amqp_uri, system.databases)


def run(gateway: str, amqp_uri: str, urls: dict[str, str]) -> int:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    therapist = "dr-bench"
    requests.post(gateway + "/api/v1/therapists", headers=headers, timeout=10, json={
        "id": therapist, "name": "Dr Bench", "specialties": ["dit"],
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
    load(4, 100, ping)  # warm up
    noop_1 = load(1, 300, ping)
    noop_32 = load(32, 2000, ping)
    load(1, 5, book)  # warm up (connections, caches)
    results = {clients: load(clients, total, book) for clients, total in PHASES}

    print("floor (p50, measured now):")
    for name, value in floor_parts.items():
        print(f"  {name:24s} {value * 1000:7.2f} ms")
    print(f"  {'sum = floor':24s} {floor * 1000:7.2f} ms")
    print(f"no-op gateway->RPC: p50 {noop_1['p50'] * 1000:.2f} ms at 1 client; "
          f"{noop_32['throughput']:.0f} req/s at 32 clients")
    print("POST /api/v1/bookings:")
    print(f"  {'clients':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'req/s':>8s}  statuses")
    for clients, result in results.items():
        print(f"  {clients:7d} {result['p50'] * 1000:8.2f} {result['p95'] * 1000:8.2f} "
              f"{result['throughput']:8.1f}  {result['statuses']}")
    p50_ratio = results[1]["p50"] / floor
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
    print(f"ratio p50 at 1 client / floor: {p50_ratio:.2f} (goal <= 3)")
    print(f"ratio throughput at 32 / no-op gateway->RPC at 32: {throughput_ratio:.2f} "
          "(goal >= 0.5)")
    print(f"double bookings: {doubles} among {confirmed} confirmed (goal 0)")
    return 0 if doubles == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
