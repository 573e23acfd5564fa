"""One database per service: engine set-up and the dependency that hands workers transactions.

SQLite: every write transaction begins IMMEDIATE (it takes the write lock up front, so two
writers can never both read "free" and then both insert), and writers inside one process queue
on a green lock first, because SQLite's busy wait would otherwise block the whole eventlet hub
while another green thread of the same process holds the lock.
PostgreSQL: psycopg2 made cooperative with eventlet's wait callback; constraints do the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from clinic.settings import Settings

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
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class UnitOfWork:
    """What a worker gets: short transactions, committed on success, rolled back on error."""

    def __init__(self, engine: Engine, write_lock: threading.Lock | None):
        self.engine = engine
        self._write_lock = write_lock
        self._reader = sessionmaker(engine, expire_on_commit=False)
        writer_bind = engine.execution_options(sqlite_begin="IMMEDIATE") if write_lock else engine
        self._writer = sessionmaker(writer_bind, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction; on SQLite it holds the database's write lock throughout."""
        if self._write_lock is None:
            with self._writer.begin() as session:
                yield session
            return
        with self._write_lock, self._writer.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only snapshot; never takes the write lock."""
        with self._reader() as session, session.begin():
            yield session


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
        self.unit_of_work = UnitOfWork(self.engine, lock)

    def stop(self) -> None:
        self.engine.dispose()

    def kill(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx) -> UnitOfWork:
        return self.unit_of_work
