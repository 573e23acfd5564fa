"""One database per service: engine set-up and the dependency that hands workers transactions.

SQLite: every write transaction begins IMMEDIATE (it takes the write lock up front, so two
writers can never both read "free" and then both insert), and writers inside one process queue
on a green lock first, because SQLite's busy wait would otherwise block the whole eventlet hub
while another green thread of the same process holds the lock.
PostgreSQL: psycopg2 made cooperative with eventlet's wait callback; constraints do the rest.
Every connection is bounded: connecting, each statement, and a transaction left idle (by a
process that died mid-way) all time out, so a stuck database is a 503, never a hung worker.
A database that is down or restarting is ``ServiceUnavailable`` (503) to the caller.
"""

from __future__ import annotations

import copy
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from clinic.errors import ServiceUnavailable
from clinic.rpc import deadline_of
from clinic.settings import Settings

CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 10_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000

# A commit this close to the caller's deadline is refused: the commit and the answer's way
# back need time too, and a change must not land after its client was answered 503.
COMMIT_MARGIN_SECONDS = 1.0
# SQLite's OperationalError also means a missing table or bad SQL: bugs, not an outage.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open", "disk i/o error")


def is_unavailable(error: Exception) -> bool:
    """A database that is down, restarting or overloaded: psycopg2's OperationalError (refused,
    reset, admin shutdown, statement timeout, deadlock), a pool with no free connection, and
    SQLite's locked or missing file."""
    if isinstance(error, SqlTimeoutError | InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    if isinstance(error.orig, sqlite3.Error):
        return any(text in str(error.orig).lower() for text in _SQLITE_UNAVAILABLE)
    return True

_sqlite_write_locks: dict[str, threading.Lock] = {}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine_for(url: str) -> Engine:
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000",
                           "synchronous=NORMAL"):
                dbapi_connection.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:
            mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine

    from eventlet.support.psycopg2_patcher import make_psycopg_green

    make_psycopg_green()
    options = (f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
               f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}")
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                           pool_timeout=CONNECT_TIMEOUT_SECONDS,
                           connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS,
                                         "options": options})

    @event.listens_for(engine, "do_connect")
    def _bounded_connect(dialect, _record, cargs, cparams):
        # libpq's connect_timeout is not applied to the asynchronous connect that eventlet's
        # wait callback makes, so the bound is kept here.
        late = OperationalError("connect", {}, TimeoutError(
            f"no connection within {CONNECT_TIMEOUT_SECONDS}s"))
        with eventlet.Timeout(CONNECT_TIMEOUT_SECONDS, late):
            return dialect.connect(*cargs, **cparams)

    return engine


class UnitOfWork:
    """What a worker gets: short transactions, committed on success, rolled back on error.

    ``deadline`` (epoch seconds) is the caller's: a write transaction that reaches its commit
    later than ``COMMIT_MARGIN_SECONDS`` before it rolls back instead, because by the time the
    answer got back the caller would have been answered 503.
    """

    def __init__(self, engine: Engine, write_lock: threading.Lock | None = None,
                 name: str = "database", deadline: float | None = None):
        self.engine = engine
        self.write_lock = write_lock
        self.name = name
        self.deadline = deadline
        self._reader = sessionmaker(engine, expire_on_commit=False)
        writer_bind = engine.execution_options(sqlite_begin="IMMEDIATE") if write_lock else engine
        self._writer = sessionmaker(writer_bind, expire_on_commit=False)

    def bounded_by(self, deadline: float | None) -> UnitOfWork:
        """The same database, for a worker that must finish by ``deadline``."""
        if deadline is None:
            return self
        bounded = copy.copy(self)
        bounded.deadline = deadline
        return bounded

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction; on SQLite it holds the database's write lock throughout."""
        with self._unavailable_as_503():
            if self.write_lock is None:
                with self._writer.begin() as session:
                    yield session
                    self._refuse_if_late()
                return
            with self.write_lock, self._writer.begin() as session:
                yield session
                self._refuse_if_late()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only snapshot; never takes the write lock."""
        with self._unavailable_as_503(), self._reader() as session, session.begin():
            yield session

    def _refuse_if_late(self) -> None:
        if self.deadline is not None and time.time() > self.deadline - COMMIT_MARGIN_SECONDS:
            raise ServiceUnavailable("The request ran out of time; nothing was changed.",
                                     {"service": self.name})

    @contextmanager
    def _unavailable_as_503(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError, SqlTimeoutError) as error:
            if not is_unavailable(error):
                raise
            raise ServiceUnavailable(f"The {self.name} database is not available.",
                                     {"service": self.name}) from error


class Database(DependencyProvider):
    """The service's own database, from ``<SERVICE>_DATABASE_URL`` or a SQLite file."""

    def __init__(self, service: str):
        self.service = service

    def setup(self) -> None:
        config = self.container.config
        self.url = Settings.from_config(config).database_url(self.service, config)
        self.engine = create_engine_for(self.url)
        lock = None
        if is_sqlite(self.url):
            lock = _sqlite_write_locks.setdefault(self.url, threading.Lock())
        self.unit_of_work = UnitOfWork(self.engine, lock, self.service)

    def stop(self) -> None:
        self.engine.dispose()

    def kill(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx) -> UnitOfWork:
        return self.unit_of_work.bounded_by(deadline_of(worker_ctx))


def writes(use_case: Callable) -> Callable:
    """A use case that runs in one write transaction of the ``UnitOfWork`` it is handed first
    (in place of the session it is written against); the use case owns its transaction."""
    @functools.wraps(use_case)
    def in_transaction(uow: UnitOfWork, *args, **kwargs):
        with uow.transaction() as session:
            return use_case(session, *args, **kwargs)
    return in_transaction


def reads(use_case: Callable) -> Callable:
    """A use case that only reads, in one read transaction of the ``UnitOfWork`` handed first."""
    @functools.wraps(use_case)
    def in_transaction(uow: UnitOfWork, *args, **kwargs):
        with uow.reading() as session:
            return use_case(session, *args, **kwargs)
    return in_transaction
