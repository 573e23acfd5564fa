"""Tables the booking service owns.

Holds and bookings share one table, ``bookings`` (a hold is a row with status ``held`` and an
``expires_at``), so that one pair of PostgreSQL exclusion constraints covers both: no two active
rows may overlap on a therapist's blocked time ([start, blocked_end)) or on a room ([start, end)).
On SQLite the same guarantee comes from IMMEDIATE write transactions and the overlap query in
``services.booking.claims`` (``claim_time``).
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from clinic.outbox import outbox_table
from clinic.sql import UtcDateTime

metadata = MetaData()
outbox = outbox_table(metadata)

# Statuses whose rows take the therapist's (and room's) time. A held row whose expires_at has
# passed still counts until it is marked expired: that happens inside every write transaction
# that needs its time, and in a timer.
ACTIVE_STATUSES = ("held", "confirmed", "attended", "no_show")

courses = Table(
    "courses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("therapist_id", String(64), nullable=False, index=True),
    Column("session_type", String(64), nullable=False),
    Column("modality", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("session_count", Integer, nullable=False),
    Column("skip_weeks", JSON, nullable=False),
    Column("first_start", UtcDateTime(), nullable=False),
    Column("last_end", UtcDateTime(), nullable=False),
    Column("client_name", String(200), nullable=False),
    Column("client_email", String(320), nullable=False),
    Column("client_phone", String(64), nullable=True),
    Column("client_timezone", String(64), nullable=True),
    Column("notes", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("cancelled_at", UtcDateTime(), nullable=True),
    Column("cancelled_by", String(16), nullable=True),
    Column("cancelled_by_id", String(80), nullable=True),
    # the course's emailed link is derived from this (guards.mail_token); a sign-out clears it
    Column("link_nonce", String(32), nullable=True),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("therapist_id", String(64), nullable=False),
    Column("session_type", String(64), nullable=False),
    Column("modality", String(16), nullable=False),
    Column("start", UtcDateTime(), nullable=False),
    Column("end", UtcDateTime(), nullable=False),
    # end + the schedule's buffer at booking time: the therapist is busy until then
    Column("blocked_end", UtcDateTime(), nullable=False),
    Column("room", String(64), nullable=True),
    # held | expired | released | converted (holds); confirmed | cancelled | attended | no_show
    Column("status", String(16), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("sequence", Integer, nullable=False, default=0),
    Column("course_id", String(36), ForeignKey("courses.id"), nullable=True, index=True),
    Column("session_number", Integer, nullable=True),
    Column("course_sessions", Integer, nullable=True),
    Column("client_name", String(200), nullable=True),
    Column("client_email", String(320), nullable=True),
    Column("client_phone", String(64), nullable=True),
    Column("client_timezone", String(64), nullable=True),
    Column("notes", Text, nullable=True),
    Column("late_cancellation", Boolean, nullable=False, default=False),
    Column("cancelled_by", String(16), nullable=True),
    Column("cancelled_by_id", String(80), nullable=True),  # who exactly (guards.actor)
    Column("cancelled_at", UtcDateTime(), nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("hold_id", String(36), nullable=True),
    # the client address (proxy-aware, from the gateway) a hold or booking was made from: the
    # live-hold limit counts by it, and the admin can cancel what one address booked
    Column("client_address", String(64), nullable=True),
    Column("link_nonce", String(32), nullable=True),  # as courses.link_nonce
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_bookings_therapist_start", "therapist_id", "start"),
    Index("ix_bookings_room_start", "room", "start"),
    Index("ix_bookings_status_expires_at", "status", "expires_at"),
    Index("ix_bookings_client_address", "client_address"),
    Index("ix_bookings_client_email", "client_email"),
)

manage_tokens = Table(
    "manage_tokens",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("booking_id", String(36), ForeignKey("bookings.id"), nullable=True, index=True),
    Column("course_id", String(36), ForeignKey("courses.id"), nullable=True, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("waitlist_entry_id", String(36), ForeignKey("waitlist_entries.id"), nullable=True,
           index=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("key", String(255), nullable=False),
    Column("scope", String(32), nullable=False),
    Column("request_hash", String(64), nullable=False),
    # the first answer, without its manage token (a replay gets a fresh one)
    Column("response", JSON, nullable=True),
    # sha256 of the caller that used the key first (guards.key_owner): nobody else is answered
    Column("owner", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
    UniqueConstraint("key", "scope", name="uq_idempotency_keys_key_scope"),
)

# Who read or changed a booking or course (API.md "Personal data"): the actor is a kind and,
# for a therapist, their id, for a client, a pseudonym of the link used (guards.actor).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(80), nullable=True),
    Column("action", String(32), nullable=False),
    Column("booking_id", String(36), nullable=True, index=True),
    Column("course_id", String(36), nullable=True, index=True),
)

# PostgreSQL's own guard against double booking, created in migration 0002 (alembic's
# compare_metadata does not look at exclusion constraints; the integration tests do).
EXCLUSION_CONSTRAINTS = ("bookings_therapist_no_overlap", "bookings_room_no_overlap")

# The waitlist (services/booking/waitlist.py). An entry waits for a time like the one it
# describes; an offer holds a freed time for one entry with real ``held`` rows of ``bookings``
# (``waitlist_offer_holds``), so the no-overlap rule above keeps it from anyone else.
waitlist_entries = Table(
    "waitlist_entries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("therapist_id", String(64), nullable=True),  # None: any therapist offering it
    Column("session_type", String(64), nullable=False),
    Column("modality", String(16), nullable=False),
    Column("kind", String(8), nullable=False),  # session | course
    Column("sessions", Integer, nullable=False),
    Column("windows", JSON, nullable=False),  # [{weekday, start, end}] in ``timezone``
    Column("timezone", String(64), nullable=False),
    Column("until_at", UtcDateTime(), nullable=True),  # the end of the ``until`` day
    # bit masks of the UTC weekdays and hours a time in the windows could start at (any DST
    # offset): the scan skips in SQL the entries a freed time cannot fit (waitlist.reach)
    Column("utc_weekdays", Integer, nullable=False),
    Column("utc_hours", Integer, nullable=False),
    # waiting | offered | booked | left | expired
    Column("status", String(16), nullable=False),
    Column("joined_at", UtcDateTime(), nullable=False),
    # joining order: strictly increasing (a PostgreSQL sequence; on SQLite max + 1 inside the
    # IMMEDIATE transaction), so two entries that joined in the same instant keep their order
    Column("position", BigInteger().with_variant(Integer, "sqlite"), nullable=False,
           unique=True),
    Column("client_name", String(200), nullable=True),
    Column("client_email", String(320), nullable=True),
    Column("client_phone", String(64), nullable=True),
    Column("client_timezone", String(64), nullable=True),
    Column("booking_id", String(36), nullable=True),
    Column("course_id", String(36), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    # The scan for a freed time: waiting entries of one therapist (or of any), in joining order.
    Index("ix_waitlist_entries_scan", "status", "therapist_id", "position"),
    Index("ix_waitlist_entries_client_email", "client_email"),
)

waitlist_offers = Table(
    "waitlist_offers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("entry_id", String(36), ForeignKey("waitlist_entries.id"), nullable=False),
    Column("therapist_id", String(64), nullable=False),
    Column("session_type", String(64), nullable=False),
    Column("modality", String(16), nullable=False),
    Column("start", UtcDateTime(), nullable=False),  # the first session's
    Column("starts", JSON, nullable=False),  # every session's, for a course
    # live | accepted | declined | lapsed | refused
    Column("status", String(16), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    Index("ix_waitlist_offers_entry", "entry_id"),
    Index("ix_waitlist_offers_time", "therapist_id", "start"),
    # One live offer per entry, whatever races the use cases lose.
    Index("uq_waitlist_offers_live_entry", "entry_id", unique=True,
          sqlite_where=text("status = 'live'"), postgresql_where=text("status = 'live'")),
)

waitlist_offer_holds = Table(
    "waitlist_offer_holds",
    metadata,
    Column("hold_id", String(36), ForeignKey("bookings.id"), primary_key=True),
    Column("offer_id", String(36), ForeignKey("waitlist_offers.id"), nullable=False,
           index=True),
)
