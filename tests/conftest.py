"""Fixtures every tier shares: a RabbitMQ vhost of this run, and databases on both backends.

The suite runs against the real broker and real databases. It creates a vhost of its own for
the run (so it passes while another copy of the system uses the same broker), and for each
database test a fresh SQLite file and a fresh PostgreSQL database, built by the services'
alembic migrations — never ``create_all``, which would hide a migration that drifted.
"""

import clinic  # noqa: F401  (silences eventlet's notice before eventlet is imported)

import eventlet  # isort: skip

eventlet.monkey_patch()  # as `nameko run` does, before anything opens a socket

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import urllib.parse  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from clinic import migrate  # noqa: E402
from clinic.settings import SERVICES  # noqa: E402

BROKER_URI = os.environ.get("CLINIC_TEST_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
BROKER_ADMIN = os.environ.get("CLINIC_TEST_RABBIT_ADMIN", "http://guest:guest@127.0.0.1:15672")
POSTGRES_ADMIN = os.environ.get("CLINIC_TEST_POSTGRES_URL",
                                "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")


def _rabbit_admin(method: str, path: str) -> None:
    """Create or delete a vhost: the management API when it is on, else rabbitmqctl."""
    parts = urllib.parse.urlsplit(BROKER_ADMIN)
    url = f"{parts.scheme}://{parts.hostname}:{parts.port}/api/{path}"
    try:
        body = {"configure": ".*", "write": ".*", "read": ".*"} if "permissions" in path else {}
        response = requests.request(method, url, auth=(parts.username, parts.password),
                                    json=body if method == "PUT" else None, timeout=10)
        response.raise_for_status()
        return
    except requests.ConnectionError:
        pass
    kind, _, rest = path.partition("/")
    vhost = urllib.parse.unquote(rest.split("/")[0])
    if kind == "vhosts":
        action = "add_vhost" if method == "PUT" else "delete_vhost"
        subprocess.run(["rabbitmqctl", "-q", action, vhost], check=True)
    else:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                        ".*"], check=True)


class Vhosts:
    """Vhosts on the real broker, each a world of its own, deleted at the end."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def new(self) -> str:
        vhost = f"clinic_test_{uuid.uuid4().hex[:10]}"
        _rabbit_admin("PUT", f"vhosts/{vhost}")
        _rabbit_admin("PUT", f"permissions/{vhost}/guest")
        self.made.append(vhost)
        return BROKER_URI.rstrip("/") + "/" + vhost

    def delete_all(self) -> None:
        for vhost in self.made:
            _rabbit_admin("DELETE", f"vhosts/{vhost}")


@pytest.fixture(autouse=True)
def vhosts() -> Iterator[Vhosts]:
    # autouse: set up first, so torn down last, after nameko's container fixtures stop
    made = Vhosts()
    yield made
    made.delete_all()


@pytest.fixture
def amqp_uri(vhosts) -> str:
    """A vhost of this test's own: no queue or message of another test, or system, leaks in."""
    return vhosts.new()


def _postgres_admin() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")


class Databases:
    """Makes fresh databases on one backend and drops them at the end."""

    def __init__(self, backend: str, folder: str):
        self.backend = backend
        self.folder = folder
        self.created: list[str] = []

    def new(self, service: str) -> str:
        name = f"clinic_test_{uuid.uuid4().hex[:12]}_{service}"
        if self.backend == "sqlite":
            url = f"sqlite:///{os.path.join(self.folder, name)}.db"
        else:
            with _postgres_admin().connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            url = POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
            self.created.append(name)
        migrate.upgrade(service, url)
        return url

    def drop_all(self) -> None:
        if not self.created:
            return
        with _postgres_admin().connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def databases(backend, tmp_path) -> Iterator[Databases]:
    made = Databases(backend, str(tmp_path))
    yield made
    made.drop_all()


@pytest.fixture
def database_urls(databases) -> dict[str, str]:
    """A migrated database per service, on the backend under test."""
    return {service: databases.new(service) for service in SERVICES}


@pytest.fixture
def service_config(amqp_uri, database_urls, tmp_path) -> dict:
    """nameko config for any of our services, pointed at this test's databases and vhost."""
    config = {
        "AMQP_URI": amqp_uri,
        "CLINIC_DATA_DIR": str(tmp_path),
        "CLINIC_DEMO": "0",
        "CLINIC_ADMIN_TOKEN": "test-admin-token-4f9c2a7e1b8d6035",
        "RPC_TIMEOUT_SECONDS": "10",
        "max_workers": 10,
    }
    for service, url in database_urls.items():
        config[f"{service.upper()}_DATABASE_URL"] = url
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningClinic:
    """The whole system as `make run` starts it, on free ports, in separate processes."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.base_url = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
        self.admin = {"Authorization": f"Bearer {env['CLINIC_ADMIN_TOKEN']}"}
        self.process: subprocess.Popen | None = None

    def start(self, log_path: str) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.log = open(log_path, "ab")  # noqa: SIM115 (kept open while the system runs)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clinic.supervisor"], cwd=root, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = eventlet.Timeout(seconds, False)
        with deadline:
            while True:
                try:
                    if requests.get(self.base_url + "/ready", timeout=3,
                                    headers=self.ready_headers()).status_code == 200:
                        return
                except requests.ConnectionError:
                    pass
                if self.process and self.process.poll() is not None:
                    raise RuntimeError(f"the clinic exited early; see {self.log.name}")
                eventlet.sleep(0.3)
        raise RuntimeError(f"the clinic did not become ready; see {self.log.name}")

    def ready_headers(self) -> dict[str, str]:
        """Headers of the readiness polls (a test behind a pretended proxy names a client)."""
        return {}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def clinic_factory(vhosts, tmp_path_factory) -> Iterator[Callable[..., RunningClinic]]:
    """Start whole systems (one per backend, or with extra settings); stop them afterwards."""
    started: list[tuple[RunningClinic, Databases]] = []

    def start(backend: str, **settings: str) -> RunningClinic:
        folder = tmp_path_factory.mktemp(f"clinic-{backend}")
        databases = Databases(backend, str(folder))
        env = {**os.environ, "AMQP_URI": vhosts.new(), "CLINIC_DATA_DIR": str(folder),
               "GATEWAY_PORT": str(free_port()), "CLINIC_DEMO": "0",
               "CLINIC_ADMIN_TOKEN": "e2e-admin-token-7d3e9b1c5a2f8064", "PYTHONUNBUFFERED": "1",
               # tests fire many POSTs from one address; the limit has a test of its own
               "RATE_LIMIT_PER_MINUTE": "1000000", "SEARCH_RATE_LIMIT_PER_MINUTE": "1000000",
               "AUTH_FAILURES_PER_MINUTE": "1000000"}
        for service in SERVICES:
            env[f"{service.upper()}_DATABASE_URL"] = databases.new(service)
        env.update(settings)
        system = RunningClinic(env)
        started.append((system, databases))
        system.start(str(folder / "clinic.log"))
        return system

    yield start
    for system, databases in started:
        system.stop()
        databases.drop_all()



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API leaves its asyncio loop registered as running
    in the process's one OS thread (eventlet's threads are green), and any later asyncio user,
    such as the aiosmtpd server of the notification tests, could not start its own loop."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
