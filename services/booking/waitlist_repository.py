"""The waitlist's SQL: entries, offers and the holds an offer keeps. Functions of a session;
the use cases (``waitlist_usecases``) own the transactions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from clinic.access import token_hash
from clinic.errors import NotFound
from services.booking.models import (
    bookings,
    manage_tokens,
    waitlist_entries,
    waitlist_offer_holds,
    waitlist_offers,
)
from services.booking.waitlist import LIVE, OFFERED, WAITING, reach_bits

SCAN_BATCH = 200


def entry_row(session: Session, entry_id: str, for_update: bool = False) -> Mapping[str, Any]:
    if "\x00" in str(entry_id):
        raise NotFound("No such waitlist entry.")
    query = select(waitlist_entries).where(waitlist_entries.c.id == str(entry_id))
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    if row is None:
        raise NotFound("No such waitlist entry.")
    return row


def next_position(session: Session) -> int:
    """The next place in joining order (SQLite: its write transaction is the only one)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(text("SELECT nextval('waitlist_entries_position_seq')")).scalar()
    return session.execute(select(func.coalesce(func.max(waitlist_entries.c.position), 0) + 1)
                           ).scalar()


def insert_entry(session: Session, values: Mapping[str, Any]) -> Mapping[str, Any]:
    row = {column.name: None for column in waitlist_entries.columns}
    row.update(values, position=next_position(session))
    session.execute(insert(waitlist_entries).values(row))
    return row


def update_entry(session: Session, entry_id: str, **values: Any) -> Mapping[str, Any]:
    session.execute(update(waitlist_entries).where(waitlist_entries.c.id == entry_id)
                    .values(**values))
    return entry_row(session, entry_id)


def waiting_batch(session: Session, therapist_id: str, start: datetime,
                  after: int | None = None,
                  limit: int = SCAN_BATCH) -> list[Mapping[str, Any]]:
    """The next waiting entries (after position ``after``) that a time of this therapist at
    ``start`` could go to, first joined first: the therapist's own and those for any
    therapist, whose windows can reach that UTC weekday and hour. Two reads along
    ``ix_waitlist_entries_scan`` (status, therapist, position), each already in order (one
    query with an OR would sort every batch), merged here."""
    entry = waitlist_entries.c
    weekday, hour = reach_bits(start)
    found: list[Mapping[str, Any]] = []
    for whose in (entry.therapist_id == therapist_id, entry.therapist_id.is_(None)):
        query = select(waitlist_entries).where(
            entry.status == WAITING, whose,
            or_(entry.until_at.is_(None), entry.until_at > start),
            entry.utc_weekdays.op("&")(weekday) != 0, entry.utc_hours.op("&")(hour) != 0)
        if after is not None:
            query = query.where(entry.position > after)
        found += session.execute(query.order_by(entry.position).limit(limit)).mappings().all()
    return sorted(found, key=lambda row: row["position"])[:limit]


def waiting_kinds(session: Session, therapist_id: str) -> list[tuple[str, str]]:
    """The (session type, modality) pairs someone waits for with this therapist (or any)."""
    entry = waitlist_entries.c
    return [tuple(row) for row in session.execute(
        select(entry.session_type, entry.modality).distinct().where(
            entry.status == WAITING, or_(entry.therapist_id == therapist_id,
                                         entry.therapist_id.is_(None))))]


def offered_this_time(session: Session, therapist_id: str, start: datetime) -> set[str]:
    """Entries that were already offered this very time (and declined or let it lapse)."""
    return set(session.execute(select(waitlist_offers.c.entry_id).where(
        waitlist_offers.c.therapist_id == therapist_id,
        waitlist_offers.c.start == start)).scalars())


def therapist_entries(session: Session, therapist_id: str) -> list[Mapping[str, Any]]:
    return list(session.execute(select(waitlist_entries).where(
        waitlist_entries.c.therapist_id == therapist_id).order_by(
        waitlist_entries.c.position)).mappings().all())


def client_entries(session: Session, email: str, session_type: str) -> list[Mapping[str, Any]]:
    """A client's open entries for a session type (they booked it some other way)."""
    return list(session.execute(select(waitlist_entries).where(
        waitlist_entries.c.client_email == email,
        waitlist_entries.c.session_type == session_type,
        waitlist_entries.c.status.in_((WAITING, OFFERED)))).mappings().all())


def expire_entries(session: Session, now: datetime) -> int:
    """Waiting entries whose ``until`` has passed stop waiting."""
    return session.execute(update(waitlist_entries).where(
        waitlist_entries.c.status == WAITING, waitlist_entries.c.until_at.is_not(None),
        waitlist_entries.c.until_at <= now).values(status="expired", updated_at=now)).rowcount


# --- offers ------------------------------------------------------------------------------

def insert_offer(session: Session, values: Mapping[str, Any], hold_ids: list[str]) -> None:
    session.execute(insert(waitlist_offers).values(**values))
    for hold_id in hold_ids:
        session.execute(insert(waitlist_offer_holds).values(hold_id=hold_id,
                                                            offer_id=values["id"]))


def live_offer(session: Session, entry_id: str,
               for_update: bool = False) -> Mapping[str, Any] | None:
    query = select(waitlist_offers).where(waitlist_offers.c.entry_id == entry_id,
                                          waitlist_offers.c.status == LIVE)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).mappings().first()


def offer_row(session: Session, offer_id: Any, entry_id: str,
              for_update: bool = False) -> Mapping[str, Any]:
    query = select(waitlist_offers).where(waitlist_offers.c.id == str(offer_id),
                                          waitlist_offers.c.entry_id == entry_id)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    if row is None:
        raise NotFound("No such offer for this waitlist entry.")
    return row


def offer_holds(session: Session, offer_id: str) -> list[Mapping[str, Any]]:
    """The hold rows an offer keeps, earliest first."""
    return list(session.execute(select(bookings).join(
        waitlist_offer_holds, waitlist_offer_holds.c.hold_id == bookings.c.id).where(
        waitlist_offer_holds.c.offer_id == offer_id).order_by(bookings.c.start)
        .with_for_update(of=bookings)).mappings().all())


def lapsing_offers(session: Session, now: datetime, limit: int = 200) -> list[Mapping[str, Any]]:
    return list(session.execute(select(waitlist_offers).where(
        waitlist_offers.c.status == LIVE, waitlist_offers.c.expires_at <= now)
        .limit(limit).with_for_update()).mappings().all())


def close_offer(session: Session, offer_id: str, status: str, now: datetime) -> bool:
    """Close a live offer once (the status test makes a racing second close change nothing)."""
    return bool(session.execute(update(waitlist_offers).where(
        waitlist_offers.c.id == offer_id, waitlist_offers.c.status == LIVE).values(
        status=status, closed_at=now)).rowcount)


# --- manage tokens -----------------------------------------------------------------------

def insert_entry_token(session: Session, now: datetime, hashed: str, entry_id: str) -> None:
    session.execute(insert(manage_tokens).values(token_hash=hashed, created_at=now,
                                                 waitlist_entry_id=entry_id))


def entry_token_hashes(session: Session, token: str, entry_id: str) -> list[str]:
    return list(session.execute(select(manage_tokens.c.token_hash).where(
        manage_tokens.c.token_hash == token_hash(token),
        manage_tokens.c.waitlist_entry_id == entry_id)).scalars())
