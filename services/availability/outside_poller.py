"""Fetching outside calendars in the background of the availability service.

A fetch is slow and may be hostile, so it never runs inside a transaction nor on the path of a
request: the timer's worker and a link's "fetch at once" hand therapists to this provider's own
small pool of green threads. The network waits cooperatively (eventlet) and parsing runs in a
native thread (``tpool``), so other workers keep serving. Every failure, of the feed or of our
own database, is caught and logged without the address: a feed can never kill the container.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import eventlet
from eventlet import tpool
from nameko.extensions import DependencyProvider
from nameko.timer import Timer

from clinic.db import UnitOfWork
from services.availability import outside_repository as outside
from services.availability import outside_usecases as usecases
from services.availability.calendar_fetch import FetchLimits, FetchRefused, fetch
from services.availability.outside_calendar import FeedRefused, busy_spans

log = logging.getLogger(__name__)

POOL_SIZE = 4
BATCH = 50


def _flag(config, key: str) -> bool:
    return str(config.get(key) or "0").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class OutsideSettings:
    poll_seconds: float
    limits: FetchLimits

    @classmethod
    def from_config(cls, config) -> OutsideSettings:
        return cls(
            poll_seconds=float(config.get("EXTERNAL_CALENDAR_POLL_SECONDS") or 300),
            limits=FetchLimits(
                timeout_seconds=float(config.get("EXTERNAL_CALENDAR_TIMEOUT_SECONDS") or 15),
                allow_private=_flag(config, "EXTERNAL_CALENDAR_ALLOW_PRIVATE"),
                trusted=frozenset(part.strip() for part in str(
                    config.get("EXTERNAL_CALENDAR_ALLOW_ADDRESSES") or "").split(",")
                    if part.strip())))


class OutsidePollTimer(Timer):
    """nameko's timer, its interval read from ``EXTERNAL_CALENDAR_POLL_SECONDS``."""

    def setup(self) -> None:
        self.interval = OutsideSettings.from_config(self.container.config).poll_seconds


class OutsideCalendars(DependencyProvider):
    """The fetcher: ``sync_due()`` from the timer, ``sync_soon(id)`` after a link."""

    def __init__(self, database_attr: str = "db", clock_attr: str = "clock",
                 relay_attr: str = "relay"):
        self.database_attr = database_attr
        self.clock_attr = clock_attr
        self.relay_attr = relay_attr

    def setup(self) -> None:
        self.settings = OutsideSettings.from_config(self.container.config)
        self.pool = eventlet.GreenPool(POOL_SIZE)

    def stop(self) -> None:
        self.pool.waitall()  # each fetch is bounded by its timeouts

    def kill(self) -> None:
        for thread in list(self.pool.coroutines_running):
            thread.kill()

    def get_dependency(self, worker_ctx) -> OutsideCalendars:
        return self

    def _provider(self, attr: str):
        return next(d for d in self.container.dependencies
                    if getattr(d, "attr_name", None) == attr)

    @property
    def uow(self) -> UnitOfWork:
        return self._provider(self.database_attr).unit_of_work

    def now(self) -> datetime:
        return self._provider(self.clock_attr).get_dependency(None)()

    # --- entry points ---

    def sync_soon(self, therapist_id: str) -> None:
        """Fetch this therapist's calendar now, in the background (after a link)."""
        self.pool.spawn_n(self._guarded, therapist_id, True)

    def sync_due(self) -> int:
        """Fetch every calendar not tried within the poll interval; waits for them (bounded)."""
        try:
            with self.uow.reading() as session:
                due = outside.due(session, self.now(), self._poll, BATCH)
        except Exception as error:
            log.warning("outside calendars: could not list the due ones: %s", error)
            return 0
        for therapist_id in due:
            self.pool.spawn_n(self._guarded, therapist_id, False)
        self.pool.waitall()
        return len(due)

    @property
    def _poll(self) -> timedelta:
        return timedelta(seconds=self.settings.poll_seconds)

    # --- one calendar ---

    def _guarded(self, therapist_id: str, force: bool) -> None:
        try:
            self.sync(therapist_id, force=force)
        except Exception as error:  # our own database away: the next tick tries again
            log.warning("outside calendar of %s not synced: %s", therapist_id,
                        type(error).__name__)

    def sync(self, therapist_id: str, *, force: bool = False,
             fetcher: Callable = fetch) -> str | None:
        """Fetch, read and store one therapist's calendar; returns the refusal, if any."""
        with self.uow.transaction() as session:
            job = usecases.claim_job(session, therapist_id, self.now(), self._poll, force=force)
        if job is None:
            return None
        try:
            got = fetcher(job.url, self.settings.limits, etag=job.etag,
                          last_modified=job.last_modified)
            spans = None if got.body is None else tpool.execute(
                busy_spans, got.body, job.zone, job.window_start, job.window_end)
        except (FetchRefused, FeedRefused) as refusal:
            return self._failed(job, str(refusal))
        except Exception as error:  # a library's surprise on a hostile feed
            return self._failed(job, f"The calendar could not be read "
                                     f"({type(error).__name__}).")
        with self.uow.transaction() as session:
            flagged = usecases.store_success(session, job, spans, got.etag, got.last_modified,
                                             self.now())
        self._publish()  # offer_changed: booking stops offering the busy times at once
        log.info("outside calendar of %s synced (%s busy spans, %d bookings newly flagged)",
                 therapist_id, "unchanged" if spans is None else len(spans), flagged)
        return None

    def _publish(self) -> None:
        relay = next((d for d in self.container.dependencies
                      if getattr(d, "attr_name", None) == self.relay_attr), None)
        if relay is not None:
            relay.publish_now()

    def _failed(self, job: usecases.FetchJob, error: str) -> str:
        log.info("outside calendar of %s failing: %s", job.therapist_id, error)
        with self.uow.transaction() as session:
            usecases.store_failure(session, job, error)
        return error
