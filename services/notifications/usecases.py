"""The notifications service's use cases: recording what booking events call for, planning
reminders, showing the delivery log, and sending what the log says is due: claim, compose, send
outside any transaction, record.

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

from sqlalchemy.orm import Session

from clinic import tracing
from clinic.access import Caller
from clinic.db import UnitOfWork
from clinic.errors import NotFound
from clinic.events import first_delivery
from services.notifications import (
    checkin_store,
    composer,
    contacts,
    mailer,
    progress_letters,
    repository,
    waitlist_letter,
)
from services.notifications.invitations import invitation
from services.notifications.models import processed_events
from services.notifications.settings import NotificationSettings

log = logging.getLogger(__name__)

BATCH = 50
FRESH_CLAIM = timedelta(seconds=1)
MANAGED_KINDS = ("confirmation", "reschedule", "reminder", "course_ending")


# What an event turns into: rows of the delivery log (and known sessions) in the event's
# transaction, marked with the request that caused it; how many messages are new.
Apply = Callable[[Session, dict[str, Any], datetime, str | None], int]
BOOKING_EVENT: Apply = repository.apply_event


def record_event(uow: UnitOfWork, payload: dict[str, Any], now: datetime,
                 apply: Apply = BOOKING_EVENT) -> int:
    """The messages an event calls for, written with the event's id in one transaction (a
    redelivered event writes nothing); how many are new."""
    with uow.transaction() as session:
        if not first_delivery(session, processed_events, payload["id"]):
            return 0
        return apply(session, payload, now, tracing.current())


def record_offer(uow: UnitOfWork, payload: dict[str, Any], now: datetime) -> int:
    """The offer letter a ``waitlist_offered`` event calls for, once."""
    return record_event(uow, payload, now, lambda session, event, at, request_id: (
        repository.add_notices(session, [waitlist_letter.offer_notice(event)], at, request_id)))


def export_client(uow: UnitOfWork, caller: Caller, email: str) -> list[dict[str, Any]]:
    """The messages sent to the client at this address (the admin's export)."""
    caller.require_admin()
    with uow.reading() as session:
        return repository.listing(session, None, None, recipient=email)


def erase_client(uow: UnitOfWork, payload: dict[str, Any]) -> int:
    """The booking service erased a client: forget them in every message and session of the
    bookings and courses it names, once per event."""
    with uow.transaction() as session:
        if not first_delivery(session, processed_events, payload["id"]):
            return 0
        data = payload["data"]
        return repository.erase_client(session, list(data.get("booking_ids") or []),
                                       list(data.get("course_ids") or []))


def drop_old_bodies(uow: UnitOfWork, now: datetime, settings: NotificationSettings) -> int:
    with uow.transaction() as session:
        return repository.drop_sent_bodies(
            session, now - timedelta(days=settings.message_retention_days))


def plan_due(uow: UnitOfWork, now: datetime, settings: NotificationSettings) -> None:
    """Add the reminders, end-of-course notices and check-in invitations that have come due."""
    with uow.transaction() as session:
        repository.plan_due(session, now, settings.reminder_hours,
                            settings.course_ending_notice_sessions)
        checkin_store.plan_invitations(session, now, settings.checkin_hours)


def list_notifications(uow: UnitOfWork, caller: Caller, booking_id: str | None,
                       course_id: str | None) -> list[dict[str, Any]]:
    """The delivery log: all of it for the admin; a booking's or course's for its therapist."""
    with uow.reading() as session:
        if not caller.is_admin:
            if caller.kind != "therapist" or not (booking_id or course_id):
                caller.require_admin()  # the whole log is the admin's
            owner = repository.therapist_of(session, booking_id, course_id)
            if owner is None:
                raise NotFound("No notifications for that booking or course.")
            caller.require_therapist(owner)
        return repository.listing(session, booking_id, course_id)


class Directory:
    """What other services know that a letter needs: the manage link, the therapist's contact.

    ``booking`` and ``availability`` are ``clinic.rpc.ServiceRpc`` clients: each call is bounded
    by ``RPC_TIMEOUT_SECONDS`` and a late or missing answer is a ``ServiceUnavailable`` (an
    ordinary exception), which fails this attempt; it is retried later. Therapists' contacts
    come through ``book`` (the process's; without one, this pass's own), so a booking's
    two letters, and the next bookings with that therapist, ask availability once.
    """

    def __init__(self, booking, availability, book: contacts.ContactBook | None = None):
        self.booking = booking
        self.availability = availability
        self.contacts = book if book is not None else contacts.ContactBook()

    def manage_token(self, kind: str, ident: str) -> str:
        return self.booking.issue_manage_token(kind, ident)

    def therapist_contact(self, therapist_id: str) -> dict[str, Any]:
        return self.contacts.get(therapist_id,
                                 lambda: self.availability.get_therapist_contact(therapist_id))

    def waitlist_contact(self, entry_id: str) -> dict[str, Any]:
        return self.booking.waitlist_contact(entry_id)


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
        claimed_at = now()
        with uow.transaction() as session:
            claimed = repository.claim_due(session, claimed_at, BATCH, lease)
        for item in claimed:
            # A claim under a second old is itself a fresh lease, and no other sender can have
            # taken the row since (its lease has not run out): a renewal would only repeat it.
            if now() - claimed_at >= FRESH_CLAIM:
                with uow.transaction() as session:
                    if not repository.renew_claim(session, item, now(), lease):
                        continue
            try:
                recipient = send_one(item, settings, post, directory, now())
            except Exception as error:  # SMTP down, RPC timeout, refused address: retry later
                log.warning("notification %s (%s to %s) not sent, attempt %s: %s", item.id,
                            item.kind, item.recipient_role, item.attempts, error)
                with uow.transaction() as session:
                    repository.mark_failed_attempt(
                        session, item, f"{type(error).__name__}: {error}", now(),
                        settings.max_attempts, settings.retry_seconds)
                failed += 1
                continue
            with uow.transaction() as session:
                repository.mark_sent(session, item.id, recipient, now())
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


def send_one(item: repository.Claimed, settings: NotificationSettings, post: mailer.Post,
             directory: Directory, now: datetime) -> str:
    """Compose and send one claimed notification; returns the address it went to."""
    head = letterhead(settings)
    last_try = item.attempts >= settings.max_attempts
    if item.kind == waitlist_letter.KIND:
        return send_offer(item, settings, post, directory, now)
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
    if item.request_id:  # the request that caused this letter, to follow it through the logs
        message[tracing.HEADER] = item.request_id
    post.mail.send(message)
    return address


def send_offer(item: repository.Claimed, settings: NotificationSettings, post: mailer.Post,
               directory: Directory, now: datetime) -> str:
    """A waitlist offer: booking names the client and gives a fresh link to the entry."""
    contact = directory.waitlist_contact(item.payload["entry_id"])
    therapist = _optional(lambda: directory.therapist_contact(item.therapist_id),
                          needed=False) or {}
    link = waitlist_letter.offer_url(settings.public_base_url, contact["manage_token"],
                                     item.payload["entry_id"])
    letter = waitlist_letter.compose_offer(item.payload, contact, letterhead(settings), link,
                                           therapist.get("name"))
    message = mailer.build_email(
        subject=letter.subject, text=letter.text, html=letter.html, sender=settings.smtp_from,
        sender_name=settings.clinic_name, to=contact["email"], to_name=contact.get("name") or "",
        message_id=mailer.message_id(item.id, settings.smtp_from), date=now, calendar=None)
    post.mail.send(message)
    return contact["email"]
