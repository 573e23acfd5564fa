"""Sending what the log says is due: claim, compose, send outside any transaction, record.

Exactly once: a message's row exists before it is sent, and is claimed by one sender at a time.
What cannot be made perfect is a crash after the mail server accepted a message and before the
row says ``sent``: after the claim's lease that message is sent again (at most one duplicate,
with the same Message-ID, which receivers may use to drop it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import eventlet

from clinic.db import UnitOfWork
from services.notifications import composer, ledger, mailer, progress_letters
from services.notifications.invitations import invitation
from services.notifications.settings import NotificationSettings

log = logging.getLogger(__name__)

BATCH = 50
MANAGED_KINDS = ("confirmation", "reschedule", "reminder", "course_ending")


class Directory:
    """What other services know that a letter needs: the manage link, the therapist's contact.

    Calls are bounded by ``RPC_TIMEOUT_SECONDS``; a failure fails this attempt (retried later).
    """

    def __init__(self, booking, availability, timeout: float):
        self.booking = booking
        self.availability = availability
        self.timeout = timeout

    def _call(self, proxy, method: str, *args: Any) -> Any:
        # An ordinary exception, not eventlet's Timeout (a BaseException): one escaping a
        # worker skips nameko's result handling and would leave the timer waiting forever.
        late = TimeoutError(f"{method} did not answer within {self.timeout:g}s")
        with eventlet.Timeout(self.timeout, late):
            return getattr(proxy, method)(*args)

    def manage_token(self, kind: str, ident: str) -> str:
        return self._call(self.booking, "issue_manage_token", kind, ident)

    def therapist_contact(self, therapist_id: str) -> dict[str, Any]:
        return self._call(self.availability, "get_therapist_contact", therapist_id)


@dataclass(frozen=True)
class Outcome:
    sent: int = 0
    failed: int = 0


def letterhead(settings: NotificationSettings) -> composer.Letterhead:
    return composer.Letterhead(settings.clinic_name, settings.clinic_timezone,
                               settings.clinic_address, settings.arrival_notes,
                               settings.public_base_url)


def deliver_due(uow: UnitOfWork, now: Callable[[], datetime], settings: NotificationSettings,
                post: mailer.Post, directory: Directory) -> Outcome:
    """Send every due message, batch by batch, until none is left."""
    sent = failed = 0
    lease = timedelta(seconds=settings.claim_lease_seconds)
    while True:
        with uow.transaction() as session:
            claimed = ledger.claim_due(session, now(), BATCH, lease)
        for item in claimed:
            with uow.transaction() as session:
                if not ledger.renew_claim(session, item, now(), lease):
                    continue
            try:
                recipient = send_one(item, settings, post, directory, now())
            except Exception as error:  # SMTP down, RPC timeout, refused address: retry later
                log.warning("notification %s (%s to %s) not sent, attempt %s: %s", item.id,
                            item.kind, item.recipient_role, item.attempts, error)
                with uow.transaction() as session:
                    ledger.mark_failed_attempt(session, item, f"{type(error).__name__}: {error}",
                                               now(), settings.max_attempts,
                                               settings.retry_seconds)
                failed += 1
                continue
            with uow.transaction() as session:
                ledger.mark_sent(session, item.id, recipient, now())
            sent += 1
        if len(claimed) < BATCH:
            return Outcome(sent, failed)


def _optional(lookup: Callable[[], Any], needed: bool) -> Any:
    """A lookup a letter can do without on its last attempt: better sent plainer than never."""
    try:
        return lookup()
    except Exception:
        if needed:
            raise
        log.warning("sending without a looked-up detail on the last attempt", exc_info=True)
        return None


def send_one(item: ledger.Claimed, settings: NotificationSettings, post: mailer.Post,
             directory: Directory, now: datetime) -> str:
    """Compose and send one claimed notification; returns the address it went to."""
    head = letterhead(settings)
    last_try = item.attempts >= settings.max_attempts
    if item.channel == "sms":
        post.sms.send(item.recipient or "", composer.sms_text(item.payload, head))
        return item.recipient or ""

    if item.recipient_role == "therapist":
        contact = directory.therapist_contact(item.therapist_id) or {}
        if not contact.get("email"):
            raise LookupError(f"therapist {item.therapist_id} has no email address")
        address, name = contact["email"], contact.get("name") or ""
        therapist_name = name or None
    else:
        contact = _optional(lambda: directory.therapist_contact(item.therapist_id),
                            needed=not last_try) or {}
        client = item.payload.get("client") or {}
        address, name = item.recipient or client.get("email", ""), client.get("name", "")
        therapist_name = contact.get("name")

    if item.kind in progress_letters.KINDS:  # about the course's journey: no invitation
        return progress_letters.send(item, settings, head, post, address, name, therapist_name,
                                     lambda: _optional(lambda: directory.manage_token(
                                         "course", item.course_id), needed=not last_try), now)
    link = None
    if item.recipient_role == "client" and item.kind in MANAGED_KINDS:
        scope, ident = (("course", item.course_id) if item.course_id
                        else ("booking", item.booking_id))
        token = _optional(lambda: directory.manage_token(scope, ident), needed=not last_try)
        link = (composer.manage_url(settings.public_base_url, token, scope, ident)
                if token else None)

    letter = composer.compose(item.kind, item.recipient_role, item.payload, head,
                              therapist_name=therapist_name, manage_link=link)
    calendar = invitation(item.kind, item.recipient_role, item.payload, head,
                          organizer=settings.smtp_from, attendee=(name, address), dtstamp=now,
                          therapist_name=therapist_name)
    message = mailer.build_email(
        subject=letter.subject, text=letter.text, html=letter.html, sender=settings.smtp_from,
        sender_name=settings.clinic_name, to=address, to_name=name,
        message_id=mailer.message_id(item.id, settings.smtp_from), date=now, calendar=calendar)
    post.mail.send(message)
    return address
