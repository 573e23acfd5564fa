"""The letters of the progress kinds: check-in invitation, risk alert, shared goodbye letter.

None of them carries health data: an invitation says when the session is and where to check in;
a risk alert says only that a check-in needs the therapist's attention today and where to look;
the shared-letter notice says a letter is waiting, not what it says. Links: the client's
``/progress`` page (with a manage token made when sending), the therapist's page for the course.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

from clinic.wire import zone_or
from services.notifications import mailer
from services.notifications.composer import Letter, Letterhead, _Draft, local_time
from services.notifications.repository import Claimed
from services.notifications.settings import NotificationSettings

KINDS = ("checkin_invite", "risk_alert", "letter_shared")


def progress_url(base_url: str, token: str, course_id: str) -> str:
    return f"{base_url.rstrip('/')}/progress?{urlencode({'token': token, 'course': course_id})}"


def therapist_url(base_url: str, course_id: str) -> str:
    return f"{base_url.rstrip('/')}/therapist?{urlencode({'course': course_id})}"


def compose(kind: str, payload: dict, head: Letterhead, course_id: str,
            token: str | None, therapist_name: str | None) -> Letter:
    signature = f"With best wishes, {head.clinic_name}"
    link = progress_url(head.public_base_url, token, course_id) if token else None
    if kind == "risk_alert":
        initials = payload.get("client_initials") or "a client"
        draft = _Draft(f"Dear {therapist_name}," if therapist_name else "Hello,", [
            f"A check-in by your client {initials} has just been flagged for risk. Please look "
            "at it today and follow the clinic's risk procedure.",
            "The check-in itself is on the course's progress page; nothing of it is in this "
            "email. The course stays marked on your page until you have seen it."])
        draft.links.append(("Open the course's progress", therapist_url(head.public_base_url,
                                                                        course_id)))
        return Letter(f"Please look today: a check-in by {initials} needs your attention",
                      draft.text(signature), draft.html(signature))
    client = payload.get("client") or {}
    greeting = f"Dear {client.get('name') or 'client'},"
    if kind == "checkin_invite":
        session = payload.get("session") or {}
        tz = zone_or(client.get("timezone"), head.clinic_timezone)
        which = (f"session {session['number']} of {session['of']}"
                 if session.get("number") and session.get("of") else "your next session")
        draft = _Draft(greeting, [
            f"Before {which} ({local_time(session['start'], tz)}), please take a few minutes "
            "for your weekly check-in: two short questionnaires about the last two weeks and, "
            "if you like, a few words on what you tried since your last session.",
            "You and your therapist can then follow your progress from week to week."])
        if link:
            draft.links.append(("Fill in your check-in", link))
        return Letter(f"Your check-in before {which}", draft.text(signature),
                      draft.html(signature))
    draft = _Draft(greeting, [
        f"{therapist_name or 'Your therapist'} has written you a letter as your course comes "
        "to its end. You can read it on your progress page, whenever suits you."])
    if link:
        draft.links.append(("Read your letter", link))
    return Letter("A letter from your therapist is waiting for you", draft.text(signature),
                  draft.html(signature))


def send(item: Claimed, settings: NotificationSettings, head: Letterhead, post: mailer.Post,
         address: str, name: str, therapist_name: str | None,
         manage_token: Callable[[], str | None], now: datetime) -> str:
    """Compose and send one progress-kind message; returns the address it went to."""
    token = manage_token() if item.recipient_role == "client" else None
    letter = compose(item.kind, item.payload, head, item.course_id or "", token, therapist_name)
    post.mail.send(mailer.build_email(
        subject=letter.subject, text=letter.text, html=letter.html, sender=settings.smtp_from,
        sender_name=settings.clinic_name, to=address, to_name=name,
        message_id=mailer.message_id(item.id, settings.smtp_from), date=now))
    return address
