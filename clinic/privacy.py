"""Erasing a client (API.md "Personal data"), the pure part every service uses: what an erased
client looks like, how events name them (a hash, never the address), and how a stored document
(an outbox payload, a stored answer, a message's payload) loses them. Bookings and their times
stay; only who they were for goes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
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


def has_email(email: str) -> Callable[[dict], bool]:
    """A test of a client dict: is it the client with this email (any case)?"""
    wanted = email.strip().lower()
    return lambda client: str(client.get("email") or "").lower() == wanted


def anyone(client: dict) -> bool:
    """Every client (a service that knows the erased bookings by id, not by email)."""
    return True


def scrub(document: Any, theirs: Callable[[dict], bool]) -> Any:
    """The document with every client ``theirs`` picks replaced by the erased client, and the
    notes and cancellation reasons beside it dropped."""
    if isinstance(document, list):
        return [scrub(item, theirs) for item in document]
    if not isinstance(document, dict):
        return document
    client = document.get("client")
    cleaned = {key: scrub(value, theirs) for key, value in document.items()}
    if isinstance(client, dict) and theirs(client):
        cleaned["client"] = dict(ERASED_CLIENT)
        for key in ("notes", "cancel_reason"):
            if key in cleaned:
                cleaned[key] = None
    return cleaned
