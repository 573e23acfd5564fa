"""Settings read from a service's nameko config (itself filled from the environment).

Each service's ``config.yml`` holds the defaults as ``${VAR:default}``; values that derive from
others (database files under the data folder, the public URL) are derived here, once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from nameko.extensions import DependencyProvider

SERVICES = ("availability", "booking", "notifications", "progress")


def _text(config: Mapping[str, Any], key: str, default: str = "") -> str:
    value = config.get(key)
    return default if value is None or str(value).strip() == "" else str(value).strip()


@dataclass(frozen=True)
class Settings:
    amqp_uri: str
    data_dir: Path
    gateway_host: str
    gateway_port: int
    public_base_url: str
    admin_token: str
    clinic_timezone: str
    hold_minutes: int
    cancellation_notice_hours: float
    reminder_hours: float
    course_ending_notice_sessions: int
    notifications_poll_seconds: float
    smtp_host: str
    smtp_port: int
    smtp_from: str
    cors_origins: tuple[str, ...]
    rate_limit_per_minute: int
    demo: bool
    video_base_url: str = ""  # a video session's link is this plus the booking id
    waitlist_offer_minutes: int = 30  # how long a freed time is held for a waiting client
    max_live_holds: int = 3  # per client address
    manage_token_days: int = 90  # after the last session a manage token covers
    max_bookings_per_email: int = 10  # single sessions still to come, per client email
    max_courses_per_email: int = 2  # active courses, per client email
    manage_link_secret: str = ""  # booking derives emailed manage links with it
    outbox_retention_days: float = 7  # published outbox rows are deleted after this

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        host = _text(config, "GATEWAY_HOST", "127.0.0.1")
        port = int(_text(config, "GATEWAY_PORT", "8000"))
        origins = _text(config, "CORS_ORIGINS")
        return cls(
            amqp_uri=_text(config, "AMQP_URI", "amqp://guest:guest@localhost:5672/"),
            data_dir=Path(_text(config, "CLINIC_DATA_DIR", "./var")),
            gateway_host=host,
            gateway_port=port,
            public_base_url=_text(config, "PUBLIC_BASE_URL", f"http://{host}:{port}").rstrip("/"),
            admin_token=_text(config, "CLINIC_ADMIN_TOKEN"),
            clinic_timezone=_text(config, "CLINIC_TIMEZONE", "Europe/London"),
            hold_minutes=int(_text(config, "HOLD_MINUTES", "10")),
            cancellation_notice_hours=float(_text(config, "CANCELLATION_NOTICE_HOURS", "48")),
            reminder_hours=float(_text(config, "REMINDER_HOURS", "24")),
            course_ending_notice_sessions=int(_text(config, "COURSE_ENDING_NOTICE_SESSIONS", "3")),
            notifications_poll_seconds=float(_text(config, "NOTIFICATIONS_POLL_SECONDS", "30")),
            smtp_host=_text(config, "SMTP_HOST"),
            smtp_port=int(_text(config, "SMTP_PORT", "25")),
            smtp_from=_text(config, "SMTP_FROM", "clinic@localhost"),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            rate_limit_per_minute=int(_text(config, "RATE_LIMIT_PER_MINUTE", "120")),
            demo=_text(config, "CLINIC_DEMO", "1") not in ("0", "false", "no"),
            video_base_url=_text(config, "CLINIC_VIDEO_BASE_URL"),
            waitlist_offer_minutes=int(_text(config, "WAITLIST_OFFER_MINUTES", "30")),
            max_live_holds=int(_text(config, "MAX_LIVE_HOLDS", "3")),
            manage_token_days=int(_text(config, "MANAGE_TOKEN_DAYS", "90")),
            max_bookings_per_email=int(_text(config, "MAX_BOOKINGS_PER_EMAIL", "10")),
            max_courses_per_email=int(_text(config, "MAX_COURSES_PER_EMAIL", "2")),
            manage_link_secret=_text(config, "MANAGE_LINK_SECRET"),
            outbox_retention_days=float(_text(config, "OUTBOX_RETENTION_DAYS", "7")),
        )

    @classmethod
    def from_env(cls) -> Settings:
        return cls.from_config(os.environ)

    def database_url(self, service: str, config: Mapping[str, Any] | None = None) -> str:
        """The service's database: its ``<SERVICE>_DATABASE_URL``, else a SQLite file."""
        explicit = _text(config if config is not None else os.environ,
                         f"{service.upper()}_DATABASE_URL")
        if explicit:
            return explicit
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"


SettingsT = TypeVar("SettingsT")


class SettingsProvider(DependencyProvider, Generic[SettingsT]):
    """A service's settings, parsed once per container from its config: the shared
    ``Settings`` unless the service names its own typed parser (``NotificationSettings``)."""

    def __init__(self, parse: Callable[[Mapping[str, Any]], SettingsT] = Settings.from_config):
        self.parse = parse

    def setup(self) -> None:
        self.settings = self.parse(self.container.config)

    def get_dependency(self, worker_ctx) -> SettingsT:
        return self.settings
