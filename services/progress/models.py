"""Tables the progress service owns.

``courses`` and ``course_sessions``: what booking's events said of each course (never read from
booking's tables); the highest ``sequence`` of a session wins. ``check_ins``: one per course
session at most (the unique key is the last word on "a second check-in is 409"). Focus and
letter live on the course row. Health data (answers, reflections, focus, letter) stays in this
database; the ``outbox`` carries ids and the risk flag only.
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase

from clinic.events import processed_events_table
from clinic.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = MetaData()


metadata = Base.metadata
processed_events = processed_events_table(metadata)
outbox = outbox_table(metadata)

courses = Table(
    "courses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("therapist_id", String(64), nullable=False, index=True),
    Column("session_count", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # active | cancelled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("focus_interpersonal", Text, nullable=True),
    Column("focus_affective", Text, nullable=True),
    Column("focus_updated_at", DateTime(timezone=True), nullable=True),
    Column("letter_text", Text, nullable=True),
    Column("letter_status", String(8), nullable=True),  # draft | shared
    Column("letter_updated_at", DateTime(timezone=True), nullable=True),
    Column("letter_shared_at", DateTime(timezone=True), nullable=True),
    # A risk flag the therapist has not yet seen: set by a check-in, cleared by the therapist.
    Column("risk_unseen_since", DateTime(timezone=True), nullable=True),
)

course_sessions = Table(
    "course_sessions",
    metadata,
    Column("booking_id", String(64), primary_key=True),
    Column("course_id", String(64), ForeignKey("courses.id"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("end", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("sequence", Integer, nullable=False),
)

check_ins = Table(
    "check_ins",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("course_id", String(64), ForeignKey("courses.id"), nullable=False, index=True),
    Column("session_number", Integer, nullable=False),
    Column("booking_id", String(64), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("phq9_answers", JSON, nullable=False),
    Column("gad7_answers", JSON, nullable=False),
    Column("phq9_total", Integer, nullable=False),
    Column("gad7_total", Integer, nullable=False),
    Column("risk", Boolean, nullable=False),
    Column("reflection", Text, nullable=True),
    UniqueConstraint("course_id", "session_number", name="uq_check_ins_course_session"),
)
