"""Tables the notifications service owns.

``sessions``: what this service knows of each booked session (from booking events), so the timer
can find due reminders and end-of-course notices from its own data. ``notifications``: the
delivery log; one row per message, keyed by what it is for, its recipient and its channel, and
written before anything is sent — the unique key is what makes each message go out once.
"""

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from clinic.events import processed_events_table
from clinic.sql import UtcDateTime

metadata = MetaData()
processed_events = processed_events_table(metadata)

sessions = Table(
    "sessions",
    metadata,
    Column("booking_id", String(64), primary_key=True),
    Column("course_id", String(64), nullable=True, index=True),
    Column("therapist_id", String(64), nullable=False),
    Column("start", UtcDateTime(), nullable=False, index=True),
    Column("end", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("sequence", Integer, nullable=False),
    # When the session got its current start, by our clock: a session booked or moved inside
    # the reminder window gets no separate reminder.
    Column("scheduled_at", UtcDateTime(), nullable=False),
    Column("booking", JSON, nullable=False),  # the latest booking dict of the events
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    # purpose|recipient role|channel, e.g. "event:<id>|client|email", "reminder:<booking>@<start>"
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient_role", String(16), nullable=False),
    Column("recipient", String(320), nullable=True),  # the therapist's is resolved when sending
    Column("booking_id", String(64), nullable=True, index=True),
    Column("course_id", String(64), nullable=True, index=True),
    Column("therapist_id", String(64), nullable=False),
    Column("payload", JSON, nullable=False),  # what the message is about, as of its event
    Column("status", String(8), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Index("ix_notifications_due", "status", "next_attempt_at"),
)

# Course sessions whose check-in is in (from progress's ``checkin_submitted``): no invitation.
checked_in = Table(
    "checked_in",
    metadata,
    Column("booking_id", String(64), primary_key=True),
    Column("course_id", String(64), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)
