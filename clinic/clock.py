"""The clock, as a dependency: services ask it for "now" so tests can move time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from nameko.extensions import DependencyProvider

Now = Callable[[], datetime]
log = logging.getLogger(__name__)


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
        if offset:  # for tests only: in production it would send reminders at the wrong time
            log.warning("CLINIC_CLOCK_OFFSET_SECONDS=%s: %s runs %s ahead of the real clock; "
                        "this setting is for tests only, unset it in production", seconds,
                        self.container.service_name, offset)
        self.now: Now = (lambda: utcnow() + offset) if offset else utcnow

    def get_dependency(self, worker_ctx) -> Now:
        return self.now
