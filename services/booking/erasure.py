"""Erasing a client (API.md "Personal data"), the pure part: what an erased client looks like
and how a stored document (an outbox payload, a stored answer) loses them. Bookings and their
times stay; only who they were for goes."""

from __future__ import annotations

import hashlib
from typing import Any

ERASED_NAME = "Erased client"
ERASED_CLIENT = {"name": ERASED_NAME, "email": None, "phone": None, "timezone": None}
# the columns of bookings (and courses) that say who the client is or what they wrote
ERASED_COLUMNS = {"client_name": ERASED_NAME, "client_email": None, "client_phone": None,
                  "client_timezone": None, "notes": None}


def email_hash(email: str) -> str:
    """How an event names the erased client to other services: never the address itself."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def mentions(document: Any, email: str) -> bool:
    """Whether a stored JSON document names the client (their email, any case)."""
    return email.strip().lower() in repr(document).lower()


def scrub(document: Any, email: str) -> Any:
    """The document with every client that has this email replaced by the erased client, and
    the notes and cancellation reasons beside it dropped."""
    if isinstance(document, list):
        return [scrub(item, email) for item in document]
    if not isinstance(document, dict):
        return document
    client = document.get("client")
    theirs = isinstance(client, dict) and str(client.get("email") or "").lower() == \
        email.strip().lower()
    cleaned = {key: scrub(value, email) for key, value in document.items()}
    if theirs:
        cleaned["client"] = dict(ERASED_CLIENT)
        for key in ("notes", "cancel_reason"):
            if key in cleaned:
                cleaned[key] = None
    return cleaned
