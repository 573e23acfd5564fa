"""What the pages and any client may know about the clinic: its name, where it is, its zone, how
long a course and a hold are, and how to reach someone (the accessibility statement's contact).

Read once from the gateway's config (``CLINIC_NAME``, ``CLINIC_CITY``, ``CLINIC_ADDRESS``,
``CLINIC_PHONE``, ``CLINIC_EMAIL``, ``COURSE_SESSIONS``, with ``CLINIC_TIMEZONE`` and
``HOLD_MINUTES`` from the shared settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nameko.extensions import DependencyProvider

from clinic.settings import Settings

DEFAULT_COURSE_SESSIONS = 16  # a DIT course (API.md: a course's `sessions` defaults to 16)


def _text(config: Mapping[str, Any], key: str, default: str) -> str:
    value = config.get(key)
    return default if value is None or not str(value).strip() else str(value).strip()


@dataclass(frozen=True)
class ClinicInfo:
    name: str
    city: str
    address: str
    timezone: str
    phone: str
    email: str
    course_sessions: int
    hold_minutes: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClinicInfo:
        settings = Settings.from_config(config)
        sessions = int(_text(config, "COURSE_SESSIONS", str(DEFAULT_COURSE_SESSIONS)))
        if not 1 <= sessions <= 52:
            raise ValueError("COURSE_SESSIONS must be 1 to 52 (a course's limits in API.md)")
        return cls(
            name=_text(config, "CLINIC_NAME", "The Clinic"),
            city=_text(config, "CLINIC_CITY", "London"),
            address=_text(config, "CLINIC_ADDRESS", ""),
            timezone=settings.clinic_timezone,
            # Ofcom's number range for drama: a placeholder that can never ring anyone.
            phone=_text(config, "CLINIC_PHONE", "020 7946 0000"),
            email=_text(config, "CLINIC_EMAIL", "help@clinic.example"),
            course_sessions=sessions,
            hold_minutes=settings.hold_minutes,
        )

    def public(self) -> dict[str, Any]:
        return asdict(self)


class Clinic(DependencyProvider):
    """The clinic's public description, parsed once."""

    def setup(self) -> None:
        self.info = ClinicInfo.from_config(self.container.config)

    def get_dependency(self, worker_ctx) -> ClinicInfo:
        return self.info
