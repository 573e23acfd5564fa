"""Transactional outbox: events are rows written with the change, published after commit.

A change and its event commit together or not at all, so nothing is published for a rolled-back
change and nothing committed is lost while RabbitMQ is down. The relay publishes each pending row
with publisher confirms and mandatory routing, and marks it sent only once the broker confirmed
it. Rows are claimed inside a transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write
lock on SQLite), so several processes of one service never publish the same row twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from kombu import Queue
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import AMQP_URI_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.orm import Session

from clinic import queues, tracing
from clinic.db import UnitOfWork
from clinic.events import SUBSCRIPTIONS, Event, handler_queue_name
from clinic.settings import Settings

log = logging.getLogger(__name__)

BATCH = 100
MAX_PAUSE_SECONDS = 2.0  # between passes while the broker or the database is away
PURGE_EVERY_SECONDS = 3600.0  # how often published rows past OUTBOX_RETENTION_DAYS are deleted
# One quick connection attempt per pass: a pass holds its rows' locks (on SQLite the write lock)
# while it publishes, so it must not sit in kombu's default 2 + 3 + 4 s of reconnecting.
CONNECT_ONCE = {**DEFAULT_TRANSPORT_OPTIONS, "max_retries": 1, "interval_start": 0.2,
                "interval_step": 0, "interval_max": 0.2}


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        # An increasing sequence keeps publication in commit order within a process.
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
               autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("type", String(64), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        # The X-Request-ID of the request that caused the event, published as its header.
        Column("request_id", String(128), nullable=True),
    )


def purge_published(session: Session, table: Table, published_before: datetime) -> int:
    """Delete rows published before the cut-off (OUTBOX_RETENTION_DAYS): their payloads hold
    clients' names and emails, and once published they are no longer needed."""
    return session.execute(table.delete().where(
        table.c.published_at.is_not(None), table.c.published_at < published_before)).rowcount


def record(session: Session, table: Table, event: Event) -> None:
    """Write ``event`` in the caller's transaction."""
    session.execute(table.insert().values(
        event_id=event.id, type=event.type, payload=event.to_payload(),
        created_at=datetime.now(UTC), attempts=0, request_id=tracing.current(),
    ))


class OutboxRelay(DependencyProvider):
    """Publishes a service's outbox in the background; ``wake()`` after a commit skips the wait.
    Once an hour it also deletes the rows published more than ``OUTBOX_RETENTION_DAYS`` (7) ago,
    in every service that has an outbox."""

    poll_seconds = 1.0
    monotonic = staticmethod(time.monotonic)  # when the last purge ran (a test sets its own)

    def __init__(self, source: str, table: Table, database_attr: str = "db"):
        self.source = source
        self.table = table
        self.database_attr = database_attr

    def setup(self) -> None:
        config = self.container.config
        self.exchange = get_event_exchange(self.source, config)
        self.publisher = Publisher(
            config[AMQP_URI_CONFIG_KEY], use_confirms=True, retry=False,
            declare=[self.exchange, *self.handler_queues()],
        )
        self.publisher.transport_options = dict(CONNECT_ONCE)
        self.retention = timedelta(days=Settings.from_config(config).outbox_retention_days)
        self._purged_at: float | None = None
        self._wake = threading.Event()
        self._running = False
        self._thread = None

    def handler_queues(self) -> list[Queue]:
        """Every subscribed handler's queue, declared exactly as its handler does
        (``clinic.queues``)."""
        return [
            queues.work_queue(handler_queue_name(source, event_type, service, method),
                              self.exchange, event_type)
            for (source, event_type), handlers in SUBSCRIPTIONS.items() if source == self.source
            for service, method in handlers
        ]

    def start(self) -> None:
        self._running = True
        self._thread = self.container.spawn_managed_thread(
            self._run, identifier=f"{self.source}.outbox_relay")

    def stop(self) -> None:
        """A graceful stop: nameko calls this once every worker has finished, so one last pass
        publishes the events of the last changes (left for the next start if the broker is
        away); the thread ends between passes, never mid-batch."""
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.wait()
        try:
            self.relay_pending()
        except Exception as error:  # kept in the outbox for the next start
            log.warning("outbox of %s left for the next start: %s", self.source, error)

    def kill(self) -> None:
        self._running = False
        self._wake.set()

    def _unit_of_work(self) -> UnitOfWork:
        provider = next(d for d in self.container.dependencies
                        if getattr(d, "attr_name", None) == self.database_attr)
        return provider.unit_of_work

    def _run(self) -> None:
        backoff = self.poll_seconds
        paused_at: float | None = None
        while self._running:
            try:
                published = self.relay_pending()
                backoff = self.poll_seconds
                if paused_at is not None:
                    log.warning("outbox relay of %s resumed after %.1fs", self.source,
                                time.monotonic() - paused_at)
                    paused_at = None
                if published == BATCH:
                    continue  # more waiting; no pause
            except Exception as error:  # broker down, database busy: keep the rows, try later
                if paused_at is None:  # one line an outage, not one a pass
                    log.warning("outbox relay of %s paused, retrying every %gs: %s",
                                self.source, MAX_PAUSE_SECONDS, error)
                    paused_at = time.monotonic()
                backoff = min(backoff * 2, MAX_PAUSE_SECONDS)
            self._purge_when_due()
            self._wake.wait(backoff)
            self._wake.clear()

    def _purge_when_due(self) -> None:
        if self._purged_at is not None and \
                self.monotonic() - self._purged_at < PURGE_EVERY_SECONDS:
            return
        self._purged_at = self.monotonic()
        try:  # a failed purge (the database away) waits for the next hour, the relay goes on
            self.purge(datetime.now(UTC))
        except Exception as error:
            log.warning("outbox of %s: published rows not purged: %s", self.source, error)

    def purge(self, now: datetime) -> int:
        """Delete the rows published before ``now`` less the retention; how many went."""
        with self._unit_of_work().transaction() as session:
            return purge_published(session, self.table, now - self.retention)

    def relay_pending(self) -> int:
        """Publish up to BATCH pending events; returns how many were confirmed."""
        uow = self._unit_of_work()
        failure: Exception | None = None
        with uow.transaction() as session:
            rows = session.execute(
                select(self.table.c.seq, self.table.c.type, self.table.c.payload,
                       self.table.c.request_id)
                .where(self.table.c.published_at.is_(None))
                .order_by(self.table.c.seq).limit(BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            confirmed: list[int] = []
            for seq, event_type, payload, request_id in rows:
                subscribed = (self.source, event_type) in SUBSCRIPTIONS
                # nameko hands this header to the handler's worker as its context data
                headers = {tracing.AMQP_HEADER: request_id} if request_id else {}
                try:
                    self.publisher.publish(payload, exchange=self.exchange, headers=headers,
                                           routing_key=event_type, mandatory=subscribed)
                except UndeliverableMessage as error:
                    session.execute(update(self.table).where(self.table.c.seq == seq).values(
                        attempts=self.table.c.attempts + 1, last_error=repr(error)))
                    continue
                except Exception as error:  # broker gone mid-batch: keep what was confirmed
                    failure = error
                    break
                confirmed.append(seq)
            if confirmed:  # one statement for the batch, not one a row
                session.execute(update(self.table).where(self.table.c.seq.in_(confirmed))
                                .values(published_at=datetime.now(UTC),
                                        attempts=self.table.c.attempts + 1))
        if failure is not None:
            raise failure
        return len(rows)

    def wake(self) -> None:
        self._wake.set()

    def publish_now(self) -> None:
        """Publish what is pending in the calling worker, before it answers: its caller's
        next request then finds the event delivered (booking's copies of what therapists offer
        are dropped before the next booking). With the broker away, the relay's thread does
        it later, as for every event."""
        try:
            self.relay_pending()
        except Exception as error:
            log.warning("outbox of %s: left for the relay (%s)", self.source, error)
            self.wake()

    def get_dependency(self, worker_ctx) -> OutboxRelay:
        return self
