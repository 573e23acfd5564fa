"""What every benchmark shares: the whole clinic started on its own vhost, databases and port.

``System`` creates a RabbitMQ vhost and one PostgreSQL database per service, migrates them,
starts ``clinic.supervisor`` on a free port, waits for ``/ready``, and removes it all on exit.
RabbitMQ is reached through its management API, or ``rabbitmqctl`` when that is not enabled.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import clinic  # noqa: E402,F401 (quiets eventlet's notice)
from clinic import migrate  # noqa: E402
from clinic.settings import SERVICES  # noqa: E402

AMQP = os.environ.get("CLINIC_TEST_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_ADMIN = os.environ.get("CLINIC_TEST_RABBIT_ADMIN", "http://guest:guest@127.0.0.1:15672")
POSTGRES = os.environ.get("CLINIC_TEST_POSTGRES_URL",
                          "postgresql://postgres@127.0.0.1:5432/postgres")


def rabbit(method: str, path: str) -> None:
    """PUT/DELETE ``vhosts/<name>`` or PUT ``permissions/<name>/guest``."""
    parts = urllib.parse.urlsplit(RABBIT_ADMIN)
    url = f"{parts.scheme}://{parts.hostname}:{parts.port}/api/{path}"
    body = {"configure": ".*", "write": ".*", "read": ".*"} if "permissions" in path else None
    try:
        requests.request(method, url, auth=(parts.username, parts.password), json=body,
                         timeout=10).raise_for_status()
        return
    except requests.ConnectionError:
        pass
    vhost = urllib.parse.unquote(path.split("/")[1])
    if path.startswith("vhosts"):
        subprocess.run(["rabbitmqctl", "-q", "add_vhost" if method == "PUT" else "delete_vhost",
                        vhost], check=True)
    else:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                        ".*"], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` (0..1) of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


class System:
    """The whole clinic on PostgreSQL, as ``make run`` starts it; a context manager."""

    def __init__(self, admin_token: str = "bench-admin-token-9a4c7e2f1d6b3085") -> None:
        self.admin_token = admin_token
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.vhost = f"clinic_bench_{uuid.uuid4().hex[:8]}"
        self.amqp_uri = AMQP.rstrip("/") + "/" + self.vhost
        self.databases: dict[str, str] = {}
        self._names: list[str] = []
        self.folder = tempfile.mkdtemp(prefix="clinic-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> System:
        rabbit("PUT", f"vhosts/{self.vhost}")
        rabbit("PUT", f"permissions/{self.vhost}/guest")
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for service in SERVICES:
                name = f"clinic_bench_{uuid.uuid4().hex[:8]}_{service}"
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
                self._names.append(name)
                self.databases[service] = POSTGRES.rsplit("/", 1)[0] + "/" + name
        admin.dispose()
        for service, url in self.databases.items():
            migrate.upgrade(service, url)
        env = {**os.environ, "AMQP_URI": self.amqp_uri, "CLINIC_DATA_DIR": self.folder,
               "GATEWAY_PORT": str(self.port), "CLINIC_DEMO": "0",
               "CLINIC_ADMIN_TOKEN": self.admin_token, "RATE_LIMIT_PER_MINUTE": "1000000",
               "SEARCH_RATE_LIMIT_PER_MINUTE": "1000000",
               # a benchmark's few clients book far more than any one person would
               "MAX_BOOKINGS_PER_EMAIL": "1000000", "MAX_COURSES_PER_EMAIL": "1000000",
               "PYTHONUNBUFFERED": "1",
               **{f"{s.upper()}_DATABASE_URL": url for s, url in self.databases.items()}}
        self.log = open(os.path.join(self.folder, "clinic.log"), "ab")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "clinic.supervisor"], cwd=ROOT,
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/ready", timeout=3).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        self.__exit__()
        raise SystemExit(f"the clinic did not start; see {self.log.name}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self._names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        rabbit("DELETE", f"vhosts/{self.vhost}")


class Goals:
    """Each goal printed beside its figure; ``exit_code`` is 1 when any is missed."""

    def __init__(self) -> None:
        self.missed: list[str] = []

    def check(self, name: str, figure: float, goal: str, met: bool, unit: str = "") -> None:
        verdict = "met" if met else "MISSED"
        print(f"  {name:<58s} {figure:9.2f}{unit}  goal {goal:<10s} {verdict}")
        if not met:
            self.missed.append(name)

    def exit_code(self) -> int:
        if self.missed:
            print(f"goals missed: {len(self.missed)} ({'; '.join(self.missed)})")
            return 1
        print("every goal met")
        return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and all its descendants (clock ticks from /proc)."""
    total = 0
    for process in descendants(pid):
        try:
            with open(f"/proc/{process}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")
