"""The waitlist offer letter (kind ``waitlist_offer``): a freed time is held for a waiting
client, who follows the link to accept or decline it.

The ``waitlist_offered`` event carries ids and times only; the client's name and address and a
fresh manage token for the entry are asked of booking when the letter is written
(``waitlist_contact``), so neither the address nor a token rests in this service's payloads.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from clinic.wire import zone_or
from services.notifications.composer import (
    Letter,
    Letterhead,
    _Draft,
    local_time,
    session_type_label,
)
from services.notifications.notices import Notice

KIND = "waitlist_offer"
MODALITY_WORDS = {"in_person": "in person", "video": "by video", "phone": "by phone"}


def offer_notice(event: dict[str, Any]) -> Notice:
    """One letter to the client, keyed by the offer (a redelivered event finds it there)."""
    data = event["data"]
    return Notice(f"waitlist_offer:{data['offer_id']}", KIND, "client", "email", None,
                  data["therapist_id"], None, None, dict(data))


def offer_url(base_url: str, token: str, entry_id: str) -> str:
    return f"{base_url.rstrip('/')}/waitlist?{urlencode({'token': token, 'entry': entry_id})}"


def compose_offer(offer: dict[str, Any], contact: dict[str, Any], head: Letterhead,
                  link: str | None, therapist_name: str | None) -> Letter:
    tz = zone_or(contact.get("timezone"), head.clinic_timezone)
    label = session_type_label(str(offer.get("session_type", "session")))
    starts = list(offer.get("starts") or [])
    what = f"course of {len(starts)} weekly {label}s" if len(starts) > 1 else label
    subject = f"A time has come free: {what}, {local_time(starts[0], tz)}"
    draft = _Draft(f"Dear {contact.get('name') or 'client'},", [
        f"A time you were waiting for has come free with {therapist_name or 'your therapist'}, "
        f"{MODALITY_WORDS.get(str(offer.get('modality')), '')}. We are holding it for you "
        f"until {local_time(offer['expires_at'], tz)}; after that it goes to the next person "
        "waiting, and you keep your place on the list."])
    for number, start in enumerate(starts, start=1):
        draft.facts.append((f"Session {number}" if len(starts) > 1 else "When",
                            local_time(start, tz)))
    if link:
        draft.links.append(("Accept or decline this time", link))
    signature = f"With best wishes, {head.clinic_name}"
    return Letter(subject=subject, text=draft.text(signature), html=draft.html(signature))
