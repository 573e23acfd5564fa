"""Faults under load: the whole clinic, two booking processes, on a private RabbitMQ node and
PostgreSQL cluster, while ``bench/load.py`` books, moves, cancels and polls feeds.

Each scenario breaks one thing in the middle of the load, lets the services recover by
themselves, re-sends what was answered 503 (same Idempotency-Key), and then checks the
promises of ``invariants``. The figures of each run (per-endpoint latency and statuses, 503s,
recovery time) are written to ``test-artifacts/resilience/`` and printed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clinic.settings import SERVICES
from tests.resilience import invariants
from tests.resilience.infra import (
    MailCatcher,
    PostgresCluster,
    Processes,
    RabbitNode,
    free_port,
)

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from load import Load, report  # noqa: E402  (bench/ is not a package; it is run as scripts)

ARTIFACTS = ROOT / "test-artifacts" / "resilience"
ADMIN_TOKEN = "resilience-admin-token-2b8f6d4a9c1e7053"
INSTANCES = (("availability", "availability"), ("booking-1", "booking"),
             ("booking-2", "booking"), ("notifications", "notifications"),
             ("progress", "progress"), ("gateway", "gateway"))
RPC_TIMEOUT = 5  # the gateway's deadline: an outage is a 503 within this
# After a fault ends: a service's reconnect, plus one deadline for calls made just before.
RECOVERY_GRACE = 20.0
LOAD = {"clients": 6, "rate": 10.0, "duration": 45.0, "timeout": 20.0}
FAULT_AT = 10.0  # seconds into the load


@pytest.fixture
def mail(tmp_path) -> Iterator[MailCatcher]:
    """A mail catcher per scenario: notification ids start at 1 in each clinic."""
    with MailCatcher(tmp_path / "mail") as catcher:
        catcher.start()
        yield catcher


@dataclass
class Clinic:
    """One clinic on the private servers: its vhost, databases and processes."""

    rabbit: RabbitNode
    postgres: PostgresCluster
    mail: MailCatcher
    processes: Processes
    databases: dict[str, str]
    base_url: str
    vhost: str

    def start(self) -> None:
        for name, kind in INSTANCES:
            self.processes.start(name, kind)
        for name, _ in INSTANCES[:-1]:
            self.processes.wait_connected(name)
        self.processes.wait_ready(self.base_url, name="gateway")

    def replace(self, name: str, down_seconds: float) -> None:
        """kill -9, and start a replacement after ``down_seconds`` (what a supervisor does)."""
        self.processes.kill(name, signal.SIGKILL)
        time.sleep(down_seconds)
        self.processes.restart(name)
        self.processes.wait_connected(name)


@contextlib.contextmanager
def clinic_on(rabbit: RabbitNode, amqp_uri: Callable[[str], str], postgres: PostgresCluster,
              mail: MailCatcher, folder: Path) -> Iterator[Clinic]:
    """A started clinic in a vhost of its own (made through ``rabbit``), reached at
    ``amqp_uri(vhost)``, with databases of its own; stopped and its vhost deleted after."""
    vhost = f"clinic_{uuid.uuid4().hex[:8]}"
    rabbit.ctl("add_vhost", vhost)
    rabbit.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    databases = {service: postgres.create_database(f"{vhost}_{service}", service)
                 for service in SERVICES}
    port = free_port()
    env = {
        "AMQP_URI": amqp_uri(vhost), "GATEWAY_PORT": str(port),
        "CLINIC_DATA_DIR": str(folder), "CLINIC_DEMO": "0", "CLINIC_ADMIN_TOKEN": ADMIN_TOKEN,
        "RATE_LIMIT_PER_MINUTE": "1000000", "RPC_TIMEOUT_SECONDS": str(RPC_TIMEOUT),
        "SEARCH_RATE_LIMIT_PER_MINUTE": "1000000",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mail.port), "SMTP_TIMEOUT_SECONDS": "5",
        "NOTIFICATIONS_POLL_SECONDS": "2", "NOTIFICATIONS_RETRY_SECONDS": "2",
        "NOTIFICATIONS_MAX_ATTEMPTS": "30", "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "20",
        **{f"{service.upper()}_DATABASE_URL": url for service, url in databases.items()},
    }
    processes = Processes(ROOT, env, folder / "logs")
    system = Clinic(rabbit, postgres, mail, processes, databases, f"http://127.0.0.1:{port}",
                    vhost)
    try:
        system.start()
        yield system
    finally:
        processes.stop_all()
        rabbit.ctl("delete_vhost", vhost, check=False)


@pytest.fixture
def clinic(rabbit_node, postgres_cluster, mail, tmp_path) -> Iterator[Clinic]:
    with clinic_on(rabbit_node, lambda vhost: rabbit_node.amqp_uri + vhost, postgres_cluster,
                   mail, tmp_path) as system:
        yield system


def run_under_load(clinic: Clinic, fault: Callable[[], None], name: str,
                   outage: bool = True, duration: float | None = None) -> None:
    """The load, the fault ``FAULT_AT`` seconds in, recovery, re-sends; then every check.
    ``outage=False``: clients must not notice at all (no 503 either). ``duration`` lengthens
    the load for a long fault (clients wait out their deadline meanwhile)."""
    options = {**LOAD, "duration": duration or LOAD["duration"]}
    load = Load(clinic.base_url, ADMIN_TOKEN, prefix=name.replace("_", "-"), **options)
    load.prepare()
    load.start()
    time.sleep(FAULT_AT)
    began = time.time()
    fault()
    ended = time.time()
    load.wait()
    load.settle(120)
    window = (began, ended + RECOVERY_GRACE) if outage else (0.0, 0.0)

    # The checks below say nothing about a load that did nothing.
    assert len(load.outcomes) > 200 and len(load.bookings) > 100 and load.courses, report(
        load.outcomes, load.elapsed)
    problems = invariants.answers(load.outcomes, window, deadline=RPC_TIMEOUT)
    problems += invariants.what_clients_were_told(clinic.databases["booking"], load)
    problems += invariants.no_double_booking(clinic.databases["booking"])
    converged = converge(clinic, load)
    problems += converged
    record_figures(name, load, began, ended)
    assert problems == [], "\n".join(problems[:40])


def converge(clinic: Clinic, load: Load, seconds: float = 120) -> list[str]:
    """The asynchronous promises, once the system had time to catch up: events published and
    applied, every letter sent once."""
    deadline = time.time() + seconds
    while True:
        problems = (invariants.outbox_drained(clinic.databases["booking"])
                    + invariants.busy_times_agree(clinic.databases["booking"],
                                                  clinic.databases["availability"])
                    + invariants.mail_once(clinic.databases["notifications"],
                                           clinic.mail.messages())
                    + invariants.letters_per_change(clinic.databases["notifications"], load))
        if not problems or time.time() > deadline:
            return problems
        time.sleep(2)


def record_figures(name: str, load: Load, began: float, ended: float) -> None:
    unavailable = [o for o in load.outcomes if o.status == 503]
    figures = {
        "scenario": name,
        "requests": len(load.outcomes),
        "fault_seconds": round(ended - began, 1),
        "answered_503": len(unavailable),
        "last_503_after_fault_end_s": round(max(o.finished for o in unavailable) - ended, 1)
        if unavailable else None,
        "resent": sum(o.retry for o in load.outcomes),
        "bookings": len(load.bookings), "courses": len(load.courses),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    table = report([o for o in load.outcomes if not o.retry], load.elapsed)
    (ARTIFACTS / f"{name}.txt").write_text(json.dumps(figures) + "\n\n" + table + "\n")
    print(f"\n{name}: {json.dumps(figures)}\n{table}")


# --- the scenarios ---------------------------------------------------------------------------

def test_rabbitmq_restarted(clinic):
    run_under_load(clinic, lambda: clinic.rabbit.restart(down_seconds=5), "rabbitmq_restart")


def test_one_booking_process_killed(clinic):
    run_under_load(clinic, lambda: clinic.replace("booking-1", down_seconds=5), "kill_booking")


def test_notifications_killed(clinic):
    run_under_load(clinic, lambda: clinic.replace("notifications", down_seconds=5),
                   "kill_notifications", outage=False)


def test_availability_killed(clinic):
    run_under_load(clinic, lambda: clinic.replace("availability", down_seconds=3),
                   "kill_availability")


def test_smtp_unreachable_for_30_seconds(clinic):
    def outage() -> None:
        clinic.mail.stop()
        time.sleep(30)
        clinic.mail.start()

    run_under_load(clinic, outage, "smtp_down", outage=False)


def test_postgresql_restarted(clinic):
    run_under_load(clinic, lambda: clinic.postgres.restart(down_seconds=5), "postgres_restart")


def test_sigterm_finishes_the_work_in_hand(clinic):
    """A booking process told to stop mid-load finishes what it took, answers it, exits 0 and
    leaves no message unacknowledged; its twin takes the rest."""
    codes: list[int] = []

    def stop_one() -> None:
        codes.append(clinic.processes.terminate("booking-1", timeout=30))

    run_under_load(clinic, stop_one, "sigterm_booking", outage=False)
    assert codes == [0]

    def busy_queues() -> tuple[list[str], str]:
        queues = clinic.rabbit.ctl("list_queues", "-p", clinic.vhost, "--no-table-headers",
                                   "name", "messages_unacknowledged", "messages").stdout
        return [line for line in queues.splitlines()
                if len(line.split()) == 3 and line.split()[1:] != ["0", "0"]], queues

    # The other services may still be handling the load's last events; what the stopped process
    # held must not stay unacknowledged (it would, for good, had it not acked before exiting).
    deadline = time.monotonic() + 30
    busy, queues = busy_queues()
    while busy and time.monotonic() < deadline:
        time.sleep(1)
        busy, queues = busy_queues()
    assert busy == [], queues


def test_a_service_told_to_stop_while_starting_still_stops(rabbit_node, postgres_cluster,
                                                           tmp_path):
    """nameko 2.14 can hang in its graceful stop when SIGTERM comes just as its consumers
    start (most tries here, without the bound); ``SHUTDOWN_TIMEOUT_SECONDS`` ends it anyway."""
    vhost = f"clinic_{uuid.uuid4().hex[:8]}"
    rabbit_node.ctl("add_vhost", vhost)
    rabbit_node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = postgres_cluster.create_database(f"{vhost}_booking", "booking")
    processes = Processes(ROOT, {"AMQP_URI": rabbit_node.amqp_uri + vhost,
                                 "BOOKING_DATABASE_URL": url, "CLINIC_DATA_DIR": str(tmp_path),
                                 "SHUTDOWN_TIMEOUT_SECONDS": "3"}, tmp_path / "logs")
    try:
        for attempt in range(4):
            processes.start("booking", "booking")
            processes.wait_connected("booking", settle=0)
            began = time.monotonic()
            processes.terminate("booking", timeout=20)
            assert time.monotonic() - began < 10, f"attempt {attempt}"
    finally:
        processes.stop_all()
        rabbit_node.ctl("delete_vhost", vhost, check=False)
