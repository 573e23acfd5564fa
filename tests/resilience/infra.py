"""Servers and service processes that fault-injection tests can stop, restart and kill.

The rest of the suite shares the machine's RabbitMQ and PostgreSQL, which nobody may restart:
other test runs and other copies of the clinic use them. The resilience tests need to take the
broker or the database away in the middle of a booking, so everything here is PRIVATE to the test
run: a RabbitMQ node and a PostgreSQL cluster of their own, on free ports, with their state in a
folder that ``close()`` deletes, and an SMTP server in a process of its own.

Everything that listens runs as a separate OS process started with ``start_new_session=True``:
the test process is eventlet-monkey-patched (tests/conftest.py), so servers inside it would share
its one OS thread and die with it; and a Ctrl-C in the terminal must reach pytest only, not every
server (pytest then stops them through the fixtures' teardown, or ``atexit`` as a last resort).

Set ``CLINIC_RESILIENCE_KEEP=1`` to keep the folders (logs, data) after the run for a post-mortem.
"""

from __future__ import annotations

import atexit
import contextlib
import email
import email.policy
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from clinic import migrate
from clinic.supervisor import PROCESSES

ROOT = Path(__file__).resolve().parents[2]
# The Debian wrappers in /usr/sbin `su rabbitmq` when run as root, which drops our environment
# (node name, ports, cookie): the scripts behind them take it as given.
RABBIT_BIN = Path(os.environ.get("CLINIC_RESILIENCE_RABBIT_BIN", "/usr/lib/rabbitmq/bin"))


def newest_postgres_bin(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The newest installed PostgreSQL's programs, as .ci/run starts the newest cluster."""
    versions = sorted((p for p in root.glob("*/bin") if p.parent.name.replace(".", "").isdigit()),
                      key=lambda p: [int(n) for n in p.parent.name.split(".")])
    return versions[-1] if versions else root / "15" / "bin"


POSTGRES_BIN = Path(os.environ.get("CLINIC_RESILIENCE_POSTGRES_BIN") or newest_postgres_bin())
KEEP = os.environ.get("CLINIC_RESILIENCE_KEEP") == "1"


# --- small helpers -------------------------------------------------------------------------------

def free_port() -> int:
    """A port nothing listens on now (the OS's pick, so parallel runs do not collide)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP connection to the port is accepted right now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               gave_up: Callable[[], str | None] | None = None, poll: float = 0.1) -> None:
    """Poll ``condition``; ``gave_up`` names a reason to stop early (a server that exited)."""
    deadline = time.monotonic() + timeout
    while not condition():
        reason = gave_up() if gave_up else None
        if reason:
            raise RuntimeError(f"{what}: {reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g}s")
        time.sleep(poll)


def scratch_folder(kind: str) -> Path:
    """A fresh folder for one server's state, short and under /tmp on purpose.

    pytest's tmp_path lies under /tmp/pytest-of-root (mode 0700), which the ``postgres`` user
    cannot traverse, and PostgreSQL's unix socket path must stay under 107 bytes.
    """
    return Path(tempfile.mkdtemp(prefix=f"clinic-resilience-{kind}-", dir="/tmp"))


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path})"


def _exited(process: subprocess.Popen | None, log: Path) -> str | None:
    if process is not None and process.poll() is not None:
        return f"exited with {process.returncode}; {log}:\n{tail(log)}"
    return None


class _Closable(Protocol):
    def close(self) -> None: ...


_OPEN: list[_Closable] = []


@atexit.register
def _close_leftovers() -> None:
    """Last resort when a run is interrupted before the fixtures' teardown: no stray servers."""
    for thing in reversed(list(_OPEN)):
        try:
            thing.close()
        except Exception as error:  # keep closing the others
            print(f"resilience infra: closing {thing!r} failed: {error}", file=sys.stderr)


class _Server:
    """What the three servers share: a state folder, timings, close() as a context manager."""

    folder: Path

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, list[float]] = {}
        self.closed = False
        _OPEN.append(self)

    def _timed(self, what: str, began: float, minus: float = 0.0) -> float:
        seconds = time.monotonic() - began - minus
        self.timings.setdefault(what, []).append(seconds)
        return seconds

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop, then delete the folder (unless CLINIC_RESILIENCE_KEEP=1)."""
        if self.closed:
            return
        try:
            self.stop()
        finally:
            self.closed = True
            if self in _OPEN:
                _OPEN.remove(self)
            if not KEEP:
                shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.folder})"


# --- RabbitMQ ------------------------------------------------------------------------------------

class RabbitNode(_Server):
    """A private RabbitMQ node, stopped and started for real so its durable state survives.

    Its own node name (registered with the machine's epmd beside the shared ``rabbit@localhost``),
    AMQP and distribution ports, Erlang cookie, config file and env file: /etc/rabbitmq's files
    would give it the shared node's name and port 5672, and the shared node's cookie is readable
    only by the rabbitmq user. It runs as root with HOME=folder, so the server and our
    ``rabbitmqctl`` calls both read the cookie written there.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.nodename = f"clinic-resilience-{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen | None = None
        self.log_dir = self.folder / "log"
        self.log_dir.mkdir(exist_ok=True)
        (self.folder / "mnesia").mkdir(exist_ok=True)
        cookie = self.folder / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)  # Erlang refuses a cookie others can read
        (self.folder / "enabled_plugins").write_text("[].\n")  # no management port to clash
        (self.folder / "rabbitmq-env.conf").write_text("")  # instead of /etc/rabbitmq's
        (self.folder / "rabbitmq.conf").write_text(
            "log.console = false\n"
            "log.file.level = info\n")

    @property
    def env(self) -> dict[str, str]:
        """The environment of the node and of the CLI pointed at it (nothing from ours leaks)."""
        folder = str(self.folder)
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": folder,  # $HOME/.erlang.cookie, for the server and the CLI
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{folder}/mnesia",
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": f"{folder}/rabbit.pid",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{folder}/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": f"{folder}/rabbitmq.conf",
            "RABBITMQ_CONF_ENV_FILE": f"{folder}/rabbitmq-env.conf",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",  # only matters if no epmd runs yet
        }

    @property
    def amqp_uri(self) -> str:
        """guest/guest, allowed from localhost by RabbitMQ's default loopback_users."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ctl(self, *args: str, timeout: float = 90, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n NODE ...`` (e.g. ``list_queues``, ``close_all_connections``)."""
        result = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args],
                                env=self.env, cwd=self.folder, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} exited with {result.returncode}:\n"
                               f"{result.stdout}{result.stderr}")
        return result

    def start(self, timeout: float = 90) -> float:
        """Start the node and wait until it has booted and accepts AMQP; returns the seconds."""
        if self.running:
            return 0.0
        began = time.monotonic()
        output = self.log_dir / "server.out"
        with open(output, "ab") as log:
            self.process = subprocess.Popen(
                [str(RABBIT_BIN / "rabbitmq-server")], env=self.env, cwd=self.folder,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        # await_startup fails at once while the node is not yet registered with epmd, so wait for
        # the AMQP listener first (it opens near the end of the boot), then confirm with the CLI
        wait_until(lambda: port_open(self.port), timeout, f"{self.nodename} AMQP port",
                   lambda: _exited(self.process, output))
        self.ctl("await_startup", "--timeout", str(int(timeout)), timeout=timeout + 30)
        return self._timed("start", began)

    def stop(self, timeout: float = 60) -> float:
        """A real stop (``rabbitmqctl stop``): the node flushes and exits, the port closes."""
        if self.process is None:
            return 0.0
        began = time.monotonic()
        if self.process.poll() is None:
            self.ctl("stop", timeout=timeout, check=False)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(signal.SIGKILL)
        self.process = None
        wait_until(lambda: not port_open(self.port), 30, f"{self.nodename} port to close")
        return self._timed("stop", began)

    def kill(self) -> None:
        """A crash rather than a stop: SIGKILL, no chance to flush or say goodbye to clients."""
        if self.process is not None:
            self._kill_group(signal.SIGKILL)
            self.process = None
        wait_until(lambda: not port_open(self.port), 30, f"{self.nodename} port to close")

    def restart(self, down_seconds: float = 0) -> float:
        """Stop, stay down for ``down_seconds``, start; returns the seconds not spent down."""
        began = time.monotonic()
        self.stop()
        time.sleep(down_seconds)
        self.start()
        return self._timed("restart", began, minus=down_seconds)

    def close(self) -> None:
        if self.closed:
            return
        try:
            try:
                self.stop()
            except Exception:
                self.kill()  # never leave a node behind whose folder is gone
                raise
        finally:
            super().close()

    def _kill_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)  # beam and its port programs
        self.process.wait(30)


# --- PostgreSQL ----------------------------------------------------------------------------------

class PostgresCluster(_Server):
    """A private PostgreSQL 15 cluster: initdb on first start, pg_ctl to stop and start it.

    The server refuses to run as root, so initdb and pg_ctl run as the ``postgres`` user and the
    folder belongs to it (a folder that user cannot reach is refused with a clear error). Trust
    authentication on 127.0.0.1 only; fsync off, since a crash of the machine is not under test.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.port = free_port()
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.log = self.folder / "postgres.log"
        self.socket_dir.mkdir(exist_ok=True)
        self.as_root = os.geteuid() == 0
        if self.as_root:
            for path in (self.folder, self.socket_dir):
                shutil.chown(path, "postgres", "postgres")
            reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w",
                                        str(self.folder)], check=False)
            if reachable.returncode != 0:
                raise RuntimeError(f"the postgres user cannot write {self.folder} (is a parent "
                                   "folder mode 0700?); use scratch_folder()")

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL program as the postgres user, in a session of its own (so a Ctrl-C
        in the terminal does not also reach the postmaster pg_ctl leaves behind)."""
        command = [*(["runuser", "-u", "postgres", "--"] if self.as_root else []), *args]
        result = subprocess.run(command, cwd=self.folder, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited with {result.returncode}:\n"
                               f"{result.stdout}{result.stderr}\n{self.log}:\n{tail(self.log)}")
        return result

    def _initdb(self) -> None:
        began = time.monotonic()
        self._run(str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"""
# clinic resilience tests: a private cluster
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self.socket_dir}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
""")
        self._timed("initdb", began)

    @property
    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        command = [*(["runuser", "-u", "postgres", "--"] if self.as_root else []),
                   str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL,
                              check=False).returncode == 0

    def start(self, timeout: float = 60) -> float:
        """initdb the first time, then ``pg_ctl start -w``; returns the seconds."""
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        if self.running:
            return 0.0
        began = time.monotonic()
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-w", "-t", str(int(timeout)), "start", timeout=timeout + 30)
        wait_until(lambda: port_open(self.port), 10, f"PostgreSQL on {self.port}")
        return self._timed("start", began)

    def stop(self, mode: str = "fast", timeout: float = 60) -> float:
        """``pg_ctl stop -m smart|fast|immediate -w``: ``immediate`` is a crash (recovery runs
        on the next start), ``fast`` rolls back open transactions and disconnects clients."""
        if not self.running:
            return 0.0
        began = time.monotonic()
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t",
                  str(int(timeout)), "stop", timeout=timeout + 30)
        wait_until(lambda: not port_open(self.port), 30, f"PostgreSQL port {self.port} to close")
        return self._timed("stop", began)

    def restart(self, down_seconds: float = 0, mode: str = "fast") -> float:
        """Stop, stay down for ``down_seconds``, start; returns the seconds not spent down."""
        began = time.monotonic()
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()
        return self._timed("restart", began, minus=down_seconds)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, service: str | None = None) -> str:
        """A new database; with ``service``, brought to head by that service's migrations."""
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT",
                                  poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        url = self.url(name)
        if service:
            migrate.upgrade(service, url)
        return url

    def close(self) -> None:
        if self.closed:
            return
        try:
            try:
                self.stop()
            except Exception:
                self.stop("immediate")  # a stuck fast stop must not leave a server behind
                raise
        finally:
            super().close()


# --- SMTP ----------------------------------------------------------------------------------------

class MailCatcher(_Server):
    """The SMTP server of tests/resilience/mailcatcher.py, in a process tests can stop.

    The port is chosen once and kept, so the clinic, configured with it at start, finds the mail
    server again after an outage. Messages are files under ``folder/mail``.
    """

    def __init__(self, folder: Path, port: int | None = None) -> None:
        super().__init__(folder)
        self.port = port or free_port()
        self.mail = self.folder / "mail"
        self.mail.mkdir(exist_ok=True)
        self.log = self.folder / "mailcatcher.log"
        self.process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30) -> float:
        if self.running:
            return 0.0
        began = time.monotonic()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.resilience.mailcatcher", "--port", str(self.port),
                 "--folder", str(self.mail)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: port_open(self.port), timeout, f"mailcatcher on {self.port}",
                   lambda: _exited(self.process, self.log))
        return self._timed("start", began)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM; afterwards the port refuses connections. Returns the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        wait_until(lambda: not port_open(self.port), 10, f"mailcatcher port {self.port} to close")
        return process.returncode

    def messages(self) -> list[Message]:
        """Every message caught so far, in arrival order (X-Envelope-From/-To added on top)."""
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(self.mail.glob("*.eml"))]

    def wait_for(self, count: int, timeout: float = 30) -> list[Message]:
        """The messages once there are at least ``count``."""
        wait_until(lambda: len(list(self.mail.glob("*.eml"))) >= count, timeout,
                   f"{count} messages in {self.mail}")
        return self.messages()


# --- the clinic's own processes ------------------------------------------------------------------

@dataclass
class _Child:
    kind: str
    process: subprocess.Popen
    log: Path
    offset: int  # where the latest start's output begins in the log
    starts: int = 1
    env: dict[str, str] = field(default_factory=dict)


class Processes:
    """The clinic's services as separate OS processes, by instance name, to kill and restart.

    Each instance is started as ``make run`` would (``python -m clinic.cli run --config ...``,
    from clinic.supervisor.PROCESSES) but in a session of its own, so a signal reaches that one
    process only. ``env`` is laid over this process's environment (AMQP_URI, *_DATABASE_URL,
    GATEWAY_PORT, SMTP_PORT, ...). One log per instance, appended to across restarts.
    """

    def __init__(self, root: Path, env: dict[str, str], logs: Path) -> None:
        self.root = root
        self.env = env
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, _Child] = {}
        _OPEN.append(self)

    def start(self, name: str, kind: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen:
        """Start instance ``name`` of ``kind``; ``env`` adds to this instance's environment
        only (kept for its restarts)."""
        if name in self.children and self.alive(name):
            raise RuntimeError(f"{name} is already running")
        config, service = PROCESSES[kind]
        previous = self.children.get(name)
        extra = env if env is not None else (previous.env if previous else {})
        full_env = {**os.environ, **self.env, **extra, "PYTHONUNBUFFERED": "1"}
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(self.root), full_env.get("PYTHONPATH")]))
        log_path = self.logs / f"{name}.log"
        starts = previous.starts + 1 if previous else 1
        with open(log_path, "ab") as log:
            log.write(f"\n--- resilience: start #{starts} of {name} ({kind}) at "
                      f"{time.strftime('%H:%M:%S')} ---\n".encode())
            log.flush()
            offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, "-m", "clinic.cli", "run", "--config", config, service],
                cwd=self.root, env=full_env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.children[name] = _Child(kind, process, log_path, offset, starts, extra)
        return process

    def _child(self, name: str) -> _Child:
        try:
            return self.children[name]
        except KeyError:
            raise KeyError(f"no process named {name!r} was started") from None

    def log_size(self, name: str) -> int:
        """The log's length now: pass it as ``after`` to wait for what comes next (a service
        reconnecting after the broker came back, say)."""
        return self._child(name).log.stat().st_size

    def output(self, name: str, after: int | None = None) -> str:
        """What the instance logged since its latest start (or since byte ``after``)."""
        child = self._child(name)
        with open(child.log, "rb") as log:
            log.seek(child.offset if after is None else after)
            return log.read().decode(errors="replace")

    def wait_logged(self, name: str, text: str, after: int | None = None,
                    timeout: float = 60) -> None:
        """Until ``text`` appears in the log after the latest start (or after byte ``after``);
        gives up at once if the instance exits."""
        child = self._child(name)
        wait_until(lambda: text in self.output(name, after), timeout, f"{name} to log {text!r}",
                   lambda: _exited(child.process, child.log), poll=0.05)

    def wait_connected(self, name: str, timeout: float = 60, settle: float = 0.5) -> None:
        """Until the latest start logged "Connected to amqp", then ``settle`` seconds more.

        kombu logs that line when the connection is up but before nameko's QueueConsumer has
        declared its consumers and marked itself started. A SIGTERM in that window (a few ms)
        hangs nameko 2.14's graceful stop (QueueConsumer.stop during start), so a test that
        stops a service right after this call would hang rather than test anything; the settle
        time lets the container finish starting.
        """
        child = self._child(name)
        self.wait_logged(name, "Connected to amqp", timeout=timeout)
        time.sleep(settle)
        reason = _exited(child.process, child.log)
        if reason:
            raise RuntimeError(f"{name} connected, then {reason}")

    def wait_ready(self, base_url: str, timeout: float = 60, name: str | None = None) -> None:
        """Until GET base_url/ready answers 200 (the gateway's own readiness check); with
        ``name``, give up as soon as that instance has exited."""

        def ready() -> bool:
            try:
                return requests.get(base_url.rstrip("/") + "/ready", timeout=3).status_code == 200
            except requests.RequestException:
                return False

        child = self.children.get(name) if name else None
        wait_until(ready, timeout, f"{base_url}/ready",
                   (lambda: _exited(child.process, child.log)) if child else None, poll=0.3)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the instance only (SIGKILL: a crash; SIGSTOP/SIGCONT: a freeze)."""
        process = self._child(name).process
        if process.poll() is None:
            process.send_signal(sig)
            if sig == signal.SIGKILL:
                process.wait(10)

    def terminate(self, name: str, timeout: float = 30) -> int:
        """SIGTERM (nameko's graceful stop) and wait; returns the exit code. A process that
        does not stop in time is killed and TimeoutError raised (see wait_connected for the
        one way we know to make nameko's stop hang)."""
        process = self._child(name).process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.send_signal(signal.SIGCONT)  # in case a test froze it
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                raise TimeoutError(f"{name} did not stop within {timeout:g}s of SIGTERM") from None
        return process.returncode

    def restart(self, name: str, timeout: float = 30) -> subprocess.Popen:
        """terminate(), then start the same kind again with the same environment."""
        self.terminate(name, timeout)
        return self.start(name, self._child(name).kind)

    def alive(self, name: str) -> bool:
        return self._child(name).process.poll() is None

    def stop_all(self, timeout: float = 30) -> dict[str, int]:
        """SIGTERM every instance, wait up to ``timeout`` in all, SIGKILL what is left."""
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                child.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + timeout
        codes: dict[str, int] = {}
        for name, child in self.children.items():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(10)
            codes[name] = child.process.returncode
        return codes

    def close(self) -> None:
        """stop_all(), and no longer a leftover for the atexit net."""
        try:
            self.stop_all()
        finally:
            if self in _OPEN:
                _OPEN.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


# --- fixtures: import them into a test module or a conftest.py -----------------------------------

@pytest.fixture(scope="module")
def rabbit_node() -> Iterator[RabbitNode]:
    """A started private RabbitMQ node for the module; closed (and deleted) at its end."""
    with RabbitNode(scratch_folder("rabbit")) as node:
        node.start()
        yield node


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started private PostgreSQL cluster for the module; closed (and deleted) at its end."""
    with PostgresCluster(scratch_folder("postgres")) as cluster:
        cluster.start()
        yield cluster


@pytest.fixture(scope="module")
def mail_catcher() -> Iterator[MailCatcher]:
    """A started mail catcher for the module; closed (and deleted) at its end."""
    with MailCatcher(scratch_folder("mail")) as catcher:
        catcher.start()
        yield catcher
