"""The clock, as a dependency: services ask it for "now" so tests can move time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from nameko.extensions import DependencyProvider

Now = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Clock(DependencyProvider):
    """Injects a callable returning the current aware UTC instant.

    ``CLINIC_CLOCK_OFFSET_SECONDS`` in the config shifts it, so end-to-end tests can run a whole
    system "tomorrow" (reminders, attendance) without waiting.
    """

    def setup(self) -> None:
        seconds = float(self.container.config.get("CLINIC_CLOCK_OFFSET_SECONDS") or 0)
        offset = timedelta(seconds=seconds)
        self.now: Now = (lambda: utcnow() + offset) if offset else utcnow

    def get_dependency(self, worker_ctx) -> Now:
        return self.now
