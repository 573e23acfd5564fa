"""What each therapist offers, kept in this booking process so a booking needs no call.

Availability's schedules, time off, outside busy times, rooms and session types change rarely;
bookings come often. So each booking process keeps a therapist's ``clinic.offer.Offer``, fetched
once with availability's ``therapist_offer``, and decides each start with
``clinic.offer.check_session`` — the same function availability's own ``check_session`` uses.

A copy is dropped when availability's ``offer_changed`` event names its therapist (or all, for
rooms and session types). That event reaches every booking process (a broadcast); availability
writes it in the change's transaction and publishes it before answering the change (at once
after storing an outside calendar's sync). A booking decided in between is the same race as
before, when availability was asked before booking's transaction opened. A process
that was cut off from the broker forgets everything on reconnection (broadcasts sent meanwhile
are lost), and nothing is kept longer than ``OFFER_TTL_SECONDS`` whatever happens. A fetch that
an ``offer_changed`` overtook is used once and not kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from clinic import offer
from clinic.broker import on_every_connection
from clinic.offer import Offer
from clinic.rpc import ServiceRpc

OFFER_TTL_SECONDS = 60.0


class OfferCache:
    """Therapists' offers in this process, shared by its workers (green threads)."""

    def __init__(self, ttl_seconds: float = OFFER_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._offers: dict[str, tuple[Offer, float]] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0  # moves on each forget-all: fetches begun before it are not kept
        self._lock = threading.Lock()

    def get(self, therapist_id: str) -> Offer | None:
        kept = self._offers.get(therapist_id)
        if kept is None or self.clock() - kept[1] > self.ttl:
            return None
        return kept[0]

    def generation(self, therapist_id: str) -> tuple[int, int]:
        """Read before fetching; ``put`` keeps nothing that a change overtook."""
        return self._epoch, self._generations.get(therapist_id, 0)

    def put(self, therapist_id: str, found: Offer, fetched: tuple[int, int],
            fetched_at: float) -> None:
        with self._lock:
            if fetched == self.generation(therapist_id):
                self._offers[therapist_id] = (found, fetched_at)

    def forget(self, therapist_id: str | None) -> None:
        """Availability changed this therapist's offer (None: everyone's)."""
        with self._lock:
            if therapist_id is None:
                self._epoch += 1
                self._offers.clear()
            else:
                self._generations[therapist_id] = self._generations.get(therapist_id, 0) + 1
                self._offers.pop(therapist_id, None)

    def forget_all(self) -> None:
        self.forget(None)


class OfferedTimes:
    """The use cases' ``Availability`` port: ``check_session`` decided here from the kept offer;
    the rest asked of availability (``remote``, its RPC client)."""

    def __init__(self, remote: Any, cache: OfferCache, now: Callable[[], datetime]) -> None:
        self.remote = remote
        self.cache = cache
        self.now = now

    def check_session(self, therapist_id: str, session_type: str, modality: str,
                      start: str) -> dict[str, Any]:
        if not isinstance(therapist_id, str):  # availability's own 404, unchanged
            return self.remote.check_session(therapist_id, session_type, modality, start)
        found = self._offer(therapist_id)
        try:
            return offer.check_session(found, session_type, modality, start, self.now())
        except offer.BeyondOffer:  # past the horizon the offer was read for: availability says
            return self.remote.check_session(therapist_id, session_type, modality, start)

    def _offer(self, therapist_id: str) -> Offer:
        found = self.cache.get(therapist_id)
        if found is None:
            fetched, fetched_at = self.cache.generation(therapist_id), self.cache.clock()
            found = Offer.from_wire(self.remote.therapist_offer(therapist_id))
            self.cache.put(therapist_id, found, fetched, fetched_at)
        return found

    def check_course(self, therapist_id: str, session_type: str, modality: str,
                     first_start: str, sessions: int, skip_weeks: list[str]) -> dict[str, Any]:
        return self.remote.check_course(therapist_id, session_type, modality, first_start,
                                        sessions, skip_weeks)

    def get_therapist(self, therapist_id: str) -> dict[str, Any]:
        return self.remote.get_therapist(therapist_id)

    def find_slots(self, therapist_id: str, session_type: str, modality: str, from_date: str,
                   to_date: str, tz: str | None = None) -> dict[str, Any]:
        return self.remote.find_slots(therapist_id, session_type, modality, from_date, to_date,
                                      tz)


class AvailabilityWithOffers(ServiceRpc):
    """Booking's ``availability`` dependency: the RPC client, with ``check_session`` decided from
    this process's ``OfferCache`` (emptied whenever its consumer reconnects)."""

    def __init__(self) -> None:
        super().__init__("availability")

    def setup(self) -> None:
        super().setup()
        self.cache = OfferCache()

    def start(self) -> None:
        super().start()
        on_every_connection(self.container, self.cache.forget_all)

    def get_dependency(self, worker_ctx) -> OfferedTimes:
        remote = super().get_dependency(worker_ctx)
        return OfferedTimes(remote, self.cache, lambda: worker_ctx.service.clock())
