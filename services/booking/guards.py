"""Abuse limits and the rules of credentials, as pure functions (issue #16): how many live
holds one client address may keep, how many sessions and courses one email may book, when a
manage token has expired, what an Idempotency-Key may look like and whom it belongs to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from clinic.access import MANAGE_PREFIX, Caller, token_hash
from clinic.errors import InvalidRequest, RateLimited, TokenExpired

MIN_KEY, MAX_KEY = 16, 255
HOLD_RETRY_SECONDS = 60  # a client over the hold limit may try again once one of them lapses


def check_idempotency_key(key: str | None) -> None:
    """16 to 255 visible ASCII characters: long enough not to be guessed by another caller,
    short enough to index."""
    if key is None:
        return
    if not (MIN_KEY <= len(key) <= MAX_KEY) or not all("!" <= ch <= "~" for ch in key):
        raise InvalidRequest.field(
            "Idempotency-Key", f"Use {MIN_KEY} to {MAX_KEY} visible ASCII characters.")


def key_owner(caller: Caller, client_address: str | None = None) -> str:
    """Who an Idempotency-Key belongs to: the principal behind a token (the admin, one
    therapist, the holder of one manage token), else the client's address. Stored hashed: a
    key row says nothing about who sent it."""
    if caller.kind == "admin":
        who = "admin"
    elif caller.kind == "therapist":
        who = f"therapist:{caller.therapist_id}"
    elif caller.kind == "manage" and caller.token:
        who = f"manage:{token_hash(caller.token)}"
    else:
        who = f"address:{client_address or ''}"
    return hashlib.sha256(who.encode()).hexdigest()


def actor(caller: Caller) -> tuple[str, str | None]:
    """Who did it, for the audit log and ``cancelled_by_id``: the admin; a therapist by id; a
    client by a pseudonym of the link they used (never the token); the public, unnamed."""
    if caller.kind == "therapist":
        return "therapist", caller.therapist_id
    if caller.kind == "manage" and caller.token:
        return "client", "link:" + token_hash(caller.token)[:16]
    return caller.kind, None


def new_link_nonce() -> str:
    return secrets.token_hex(16)


def mail_token(secret: bytes, kind: str, target_id: str, nonce: str) -> str:
    """The one manage token every email about a booking or course carries: derived, not
    stored, so a retried or a later email reuses it and no clear token sits in any table. A
    sign-out replaces the nonce (the old link dies, the next email gets a new one); rotating
    MANAGE_LINK_SECRET ends every emailed link at once."""
    digest = hmac.new(secret, f"{kind}:{target_id}:{nonce}".encode(), hashlib.sha256).digest()
    return MANAGE_PREFIX + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def check_live_holds(live: int, limit: int) -> None:
    if live >= limit:
        raise RateLimited(f"At most {limit} slots may be held at once from one address.",
                          {"retry_after_seconds": HOLD_RETRY_SECONDS})


def check_email_quota(booked: int, limit: int, what: str) -> None:
    """One email address may hold only so many future sessions (or active courses): a stranger
    cannot fill a calendar, nor flood someone's inbox, in that person's name."""
    if booked >= limit:
        raise RateLimited(f"This email address already has {booked} {what} booked; "
                          "please contact the clinic.", {"retry_after_seconds": 3600})


def token_expires_at(last_end: datetime, days: int) -> datetime:
    return last_end + timedelta(days=days)


def check_not_expired(last_end: datetime, now: datetime, days: int) -> None:
    """A manage token ends MANAGE_TOKEN_DAYS after the last session it covers."""
    if now >= token_expires_at(last_end, days):
        raise TokenExpired("This link has expired; please contact the clinic.")
