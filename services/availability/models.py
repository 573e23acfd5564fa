"""Tables the availability service owns.

Instants are ``clinic.sql.UtcDateTime`` columns: every instant leaving this module is aware UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from clinic.events import processed_events_table
from clinic.outbox import outbox_table
from clinic.sql import UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class SessionType(Base):
    __tablename__ = "session_types"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(Integer)


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Therapist(Base):
    __tablename__ = "therapists"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bio: Mapped[str | None] = mapped_column(Text, nullable=True)
    specialties: Mapped[list] = mapped_column(JSON)
    modalities: Mapped[list] = mapped_column(JSON)
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TherapistToken(Base):
    """Only the SHA-256 of a therapist's token is kept; the token itself is shown once."""

    __tablename__ = "therapist_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    therapist_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("therapists.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CalendarFeed(Base):
    """A therapist's feed secret: the capability in the feed URL their calendar app polls.

    Kept readable, unlike login tokens, because the therapist may ask for the URL again (as
    with any calendar's "secret address"); it grants reading the privacy-safe feed and nothing
    else. Looked up by its SHA-256 so the lookup leaks nothing about the secret itself.
    """

    __tablename__ = "calendar_feeds"

    therapist_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rotated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ScheduleRow(Base):
    """A therapist's weekly wall-clock rules (JSON list) and booking policy."""

    __tablename__ = "schedules"

    therapist_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    weekly: Mapped[list] = mapped_column(JSON)
    buffer_minutes: Mapped[int] = mapped_column(Integer)
    slot_interval_minutes: Mapped[int] = mapped_column(Integer)
    min_notice_hours: Mapped[int] = mapped_column(Integer)
    horizon_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TimeOff(Base):
    __tablename__ = "time_off"
    __table_args__ = (Index("ix_time_off_therapist_start", "therapist_id", "start"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    therapist_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("therapists.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class BusyTime(Base):
    """What the booking service told us is taken: one row per booking or hold id.

    Rows are never deleted by events: a cancelled booking or released hold stays as an inactive
    tombstone, so a late or repeated older event cannot bring it back. ``sequence`` is the
    booking's own change counter (holds never change). ``expires_at`` lets a hold lapse on time
    even before its ``hold_released`` event arrives. No foreign key to therapists: the booking
    service is the authority and its events may name a therapist we learn of later.
    """

    __tablename__ = "busy_times"
    __table_args__ = (
        # Slot search asks for one therapist's (or room's) rows in a time window.
        Index("ix_busy_times_therapist_start", "therapist_id", "start"),
        Index("ix_busy_times_room_start", "room", "start"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # hold | booking
    therapist_id: Mapped[str] = mapped_column(String(64))
    room: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    blocked_end: Mapped[datetime] = mapped_column(UtcDateTime())
    active: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    sequence: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SearchStamp(Base):
    """A random value renewed by every transaction that changes what a slot search reads.

    Scopes: ``therapist:<id>`` (their busy times, time off, outside busy times, schedule, the
    therapist) and ``room:<id>`` (any busy time in that room, or the room's creation). A process
    reuses a computed search only while the stamps it read before the rows are unchanged
    (``search_cache``).
    """

    __tablename__ = "search_stamps"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    stamp: Mapped[str] = mapped_column(String(32))


class OutsideCalendar(Base):
    """A therapist's linked outside calendar (an iCalendar address) and how its last fetch went.

    ``url`` is a secret of the therapist's (private calendar addresses carry their own key): it
    is shown to that therapist and the admin only and never logged. ``generation`` grows with
    each (re)link, so a fetch that began before a relink cannot write over the new address's times.
    """

    __tablename__ = "outside_calendars"

    therapist_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # pending | ok | failing
    etag: Mapped[str | None] = mapped_column(String(512), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(128), nullable=True)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_synced_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    expanded_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    busy_count: Mapped[int] = mapped_column(Integer)


class OutsideBusy(Base):
    """A busy span read from a therapist's outside calendar: times only, never a title."""

    __tablename__ = "outside_busy"
    __table_args__ = (Index("ix_outside_busy_therapist_start", "therapist_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    therapist_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("outside_calendars.therapist_id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())


class OutsideConflict(Base):
    """A clinic booking that the outside calendar came to overlap after it was booked.

    Not cancelled: flagged to the therapist (their page, and one email through the event written
    to the outbox with the row). The row goes when the overlap does.
    """

    __tablename__ = "outside_conflicts"

    booking_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    therapist_id: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    busy_start: Mapped[datetime] = mapped_column(UtcDateTime())
    busy_end: Mapped[datetime] = mapped_column(UtcDateTime())
    found_at: Mapped[datetime] = mapped_column(UtcDateTime())


metadata = Base.metadata
processed_events = processed_events_table(metadata)
outbox = outbox_table(metadata)
