"""Replicas starting together (``docker compose up --scale booking=3``) each run the migrations:
on PostgreSQL they take turns under one advisory lock, so every one of them succeeds."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest
import sqlalchemy as sa

from clinic import migrate
from tests.conftest import POSTGRES_ADMIN, _postgres_admin

REPLICAS = 6


def migrate_when_all_are_ready(url: str, ready, failures) -> None:
    import clinic.migrations_env  # noqa: F401 (loaded before the barrier, so the replicas
    import services.booking.models  # noqa: F401 reach the database at the same moment)

    ready.wait()
    try:
        migrate.upgrade("booking", url)
    except Exception as error:  # reported to the test, which names it
        failures.put(repr(error)[:300])


@pytest.fixture
def empty_database():
    name = f"clinic_test_{uuid.uuid4().hex[:12]}_migrations"
    with _postgres_admin().connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
    with _postgres_admin().connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_replicas_migrating_one_database_at_once_all_succeed(empty_database):
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters, as replicas are
    ready, failures = spawn.Barrier(REPLICAS), spawn.Queue()
    replicas = [spawn.Process(target=migrate_when_all_are_ready,
                              args=(empty_database, ready, failures)) for _ in range(REPLICAS)]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.join(120)
    problems = []
    while not failures.empty():
        problems.append(failures.get())
    assert problems == []
    assert [replica.exitcode for replica in replicas] == [0] * REPLICAS
    engine = sa.create_engine(empty_database)
    with engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        tables = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    assert len(versions) == 1  # at head once, not stamped by each replica
    assert {"bookings", "courses", "outbox", "idempotency_keys"} <= tables
