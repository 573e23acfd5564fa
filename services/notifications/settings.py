"""The notifications service's settings: the shared ones plus mail, SMS and retry details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinic.settings import Settings


def _get(config: Mapping[str, Any], key: str, default: str = "") -> str:
    value = config.get(key)
    return default if value is None or str(value).strip() == "" else str(value).strip()


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class NotificationSettings:
    public_base_url: str
    clinic_timezone: str
    data_dir: Path
    reminder_hours: float
    course_ending_notice_sessions: int
    poll_seconds: float
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_starttls: bool
    smtp_username: str
    smtp_password: str
    smtp_timeout: float
    retry_seconds: float  # first retry after this, doubling each time
    max_attempts: int
    rpc_timeout: float
    claim_lease_seconds: float  # a sender that died holding a claim: sent again after this
    clinic_name: str
    clinic_address: str
    arrival_notes: str
    checkin_hours: float = 48.0  # check-in invitations go this long before a course session
    message_retention_days: float = 30  # a sent message's payload is dropped after this

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NotificationSettings:
        shared = Settings.from_config(config)
        return cls(
            public_base_url=shared.public_base_url,
            clinic_timezone=shared.clinic_timezone,
            data_dir=shared.data_dir,
            reminder_hours=shared.reminder_hours,
            course_ending_notice_sessions=shared.course_ending_notice_sessions,
            poll_seconds=shared.notifications_poll_seconds,
            smtp_host=shared.smtp_host,
            smtp_port=shared.smtp_port,
            smtp_from=shared.smtp_from,
            smtp_starttls=_flag(_get(config, "SMTP_STARTTLS", "0")),
            smtp_username=_get(config, "SMTP_USERNAME"),
            smtp_password=_get(config, "SMTP_PASSWORD"),
            smtp_timeout=float(_get(config, "SMTP_TIMEOUT_SECONDS", "30")),
            retry_seconds=float(_get(config, "NOTIFICATIONS_RETRY_SECONDS", "30")),
            max_attempts=int(_get(config, "NOTIFICATIONS_MAX_ATTEMPTS", "5")),
            rpc_timeout=float(_get(config, "RPC_TIMEOUT_SECONDS", "10")),
            claim_lease_seconds=float(_get(config, "NOTIFICATIONS_CLAIM_LEASE_SECONDS", "300")),
            clinic_name=_get(config, "CLINIC_NAME", "The Clinic"),
            clinic_address=_get(config, "CLINIC_ADDRESS", "the clinic (address in your booking)"),
            arrival_notes=_get(config, "CLINIC_ARRIVAL_NOTES",
                               "Please arrive five minutes early and ring the bell; "
                               "the waiting room is on the ground floor."),
            checkin_hours=float(_get(config, "CHECKIN_HOURS", "48")),
            message_retention_days=float(_get(config, "MESSAGE_RETENTION_DAYS", "30")),
        )

    def __post_init__(self) -> None:
        # A live sender must never lose its claim mid-send, or a second one would send too.
        longest_send = self.smtp_timeout + 2 * self.rpc_timeout
        if self.claim_lease_seconds <= longest_send:
            raise ValueError(f"NOTIFICATIONS_CLAIM_LEASE_SECONDS must exceed {longest_send:g} "
                             "(SMTP_TIMEOUT_SECONDS + 2 x RPC_TIMEOUT_SECONDS)")

    @property
    def mail_folder(self) -> Path:
        return self.data_dir / "mail"
