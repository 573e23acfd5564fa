"""Getting a message out: email over SMTP or into .eml files, and SMS behind a small interface.

``MailTransport`` and ``SmsSender`` are all the delivery code knows; which one runs is settings:
with no ``SMTP_HOST`` mail is written under the data folder, one file per notification (a retry
rewrites the same file, so a file never appears twice).
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any, Protocol

from nameko.extensions import DependencyProvider

from services.notifications.settings import NotificationSettings

log = logging.getLogger(__name__)


class MailTransport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` over, or raise; returning means it was accepted."""


class SmsSender(Protocol):
    def send(self, to: str, text: str) -> None:
        """Send ``text`` to the phone number ``to``, or raise."""


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int = 25
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout: float = 30.0

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


@dataclass(frozen=True)
class FileTransport:
    """Development mail: ``<folder>/<message id>.eml``, readable by any mail client."""

    folder: Path

    def path_for(self, message: EmailMessage) -> Path:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(message["Message-ID"]).strip("<>"))
        return self.folder / f"{name}.eml"

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(message)
        partial = path.with_suffix(".part")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)  # whole file or none


class LoggingSms:
    """The default SMS provider: says what it would send. A real one implements ``send``."""

    def send(self, to: str, text: str) -> None:
        masked = f"…{to[-3:]}" if len(to) > 3 else "…"
        log.info("SMS to %s: %s", masked, text)


def transport_for(settings: NotificationSettings) -> MailTransport:
    if settings.smtp_host:
        return SmtpTransport(settings.smtp_host, settings.smtp_port, settings.smtp_starttls,
                             settings.smtp_username, settings.smtp_password,
                             settings.smtp_timeout)
    return FileTransport(settings.mail_folder)


# The MIME structure's own headers (Content-Type: text/plain; charset="utf-8", MIME-Version,
# Content-Transfer-Encoding, ...) are the same few values in every message, yet the modern email
# API parses each value every time it is set (building one letter sets them ~25 times) and
# refolds it every time the message is written: most of a letter's CPU. Parsed headers are
# immutable, so one parse and one fold per distinct value serve every message. Only those
# headers, and From (the clinic's own address on every letter), are kept: never a subject,
# a recipient or a boundary (unique per message).
_SHARED_LIMIT = 256
_shared: dict[tuple[str, str], Any] = {}  # (name, value) -> the parsed header
_folds: dict[int, dict[tuple, Any]] = {}  # id of a shared header -> its folds, by policy
_max_counts: dict[str, int | None] = {}  # header name -> how many a message may have


def _is_shared(name: str, value: str) -> bool:
    lowered = name.lower()
    return ((lowered.startswith("content-") or lowered in ("mime-version", "from"))
            and "boundary" not in value.lower())


class MailPolicy(EmailPolicy):
    """``email.policy.default`` (the same headers, bytes and folding), parsing and folding each
    structural header value (and From) once per process instead of once per use."""

    def header_store_parse(self, name, value):
        if type(value) is not str or not _is_shared(name, value):
            return super().header_store_parse(name, value)
        header = _shared.get((name, value))
        if header is None:
            if len(_shared) >= _SHARED_LIMIT:
                _shared.clear()
                _folds.clear()
            header = super().header_store_parse(name, value)[1]
            _shared[(name, value)] = header
            _folds[id(header)] = {}
        return name, header

    def header_max_count(self, name):
        # Asked on every header set; the registry answers by building a new class each time.
        lowered = name.lower()
        if lowered not in _max_counts:
            _max_counts[lowered] = super().header_max_count(name)
        return _max_counts[lowered]

    def _cached_fold(self, kind: str, name, value, fold):
        folds = _folds.get(id(value))  # only a shared header (alive while listed) has an entry
        if folds is None:
            return fold(name, value)
        key = (kind, name, self.linesep, self.max_line_length, self.utf8, self.cte_type,
               self.refold_source)
        folded = folds.get(key)
        if folded is None:
            folded = folds[key] = fold(name, value)
        return folded

    def fold(self, name, value):
        return self._cached_fold("text", name, value, super().fold)

    def fold_binary(self, name, value):
        return self._cached_fold("bytes", name, value, super().fold_binary)


POLICY = MailPolicy()


def message_id(notification_id: int, sender: str) -> str:
    """Stable per notification, so a receiver can drop the copy a crash may resend."""
    domain = sender.rpartition("@")[2] or "clinic.local"
    return f"<notification-{notification_id}@{domain}>"


def build_email(*, subject: str, text: str, html: str, sender: str, sender_name: str,
                to: str, to_name: str, message_id: str, date: datetime,
                calendar: tuple[str, str] | None = None) -> EmailMessage:
    """multipart/alternative text + HTML (+ the invitation inline), and the .ics attached.

    ``calendar`` is (method, iCalendar text). The method goes on the part's Content-Type as
    well as inside the file: Gmail and Outlook only treat it as an invitation then.
    """
    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject
    message["From"] = formataddr((sender_name, sender))
    message["To"] = formataddr((to_name, to))
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if calendar is not None:
        method, ics = calendar
        message.add_alternative(ics, subtype="calendar", params={"method": method})
        message.add_attachment(ics, subtype="calendar", filename="invite.ics",
                               params={"method": method})
    return message


class Post(DependencyProvider):
    """The transports, chosen once from the settings; tests may swap them (``post.mail``)."""

    def setup(self) -> None:
        settings = NotificationSettings.from_config(self.container.config)
        self.mail: MailTransport = transport_for(settings)
        self.sms: SmsSender = LoggingSms()

    def get_dependency(self, worker_ctx) -> Post:
        return self
