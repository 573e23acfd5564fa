"""Therapists' contacts (name, address) as availability gave them, kept a few minutes per process.

Every letter needs one (the therapist's address, or their name in the client's letter), and a
booking's two letters asked availability twice for the same answer. Availability has no way to
change a therapist's name or address once created (there is no such RPC or endpoint), and so no
event about it; the time limit bounds how long a change made some other way (by hand in its
database) goes unnoticed here. A failed lookup is not kept: the next letter asks again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nameko.extensions import DependencyProvider

KEEP_SECONDS = 300.0
LIMIT = 1000  # therapists kept at most (a clinic has far fewer)


class ContactBook:
    """Answers by therapist id, each kept ``keep_seconds`` from when availability gave it."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._kept: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, therapist_id: str, lookup: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        now = self.clock()
        kept = self._kept.get(therapist_id)
        if kept is not None and kept[0] > now:
            return dict(kept[1])
        contact = lookup()  # raises when availability does not answer: nothing kept
        if contact:
            if len(self._kept) >= LIMIT:
                self._kept.clear()
            self._kept[therapist_id] = (now + self.keep_seconds, dict(contact))
        return contact


class TherapistContacts(DependencyProvider):
    """One ``ContactBook`` per service process, shared by its workers."""

    def setup(self) -> None:
        self.book = ContactBook()

    def get_dependency(self, worker_ctx) -> ContactBook:
        return self.book
