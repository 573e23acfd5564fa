"""The progress service's SQL. Every function takes the caller's session: the use case decides
the transaction (an event's changes commit with its ``processed_events`` row; a check-in with
its outbox event)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.progress.journey import CheckIn, CourseFacts, KnownSession
from services.progress.models import check_ins, course_sessions, courses


def utc(moment: datetime | None) -> datetime | None:
    """SQLite keeps no offset: everything is stored as UTC and read back as aware UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _insert(session: Session, table):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


# ---- courses and sessions, from booking's events ------------------------------------------


def ensure_course(session: Session, course_id: str, therapist_id: str, session_count: int,
                  now: datetime) -> None:
    """The course's row, made by whichever of its events arrives first."""
    session.execute(_insert(session, courses).values(
        id=course_id, therapist_id=therapist_id, session_count=session_count, status="active",
        created_at=utc(now)).on_conflict_do_nothing(index_elements=["id"]))


def set_course_status(session: Session, course_id: str, status: str) -> None:
    session.execute(update(courses).where(courses.c.id == course_id).values(status=status))


def upsert_session(session: Session, session_row: KnownSession) -> bool:
    """Store a session unless a newer sequence is known already; True if applied."""
    values = {"booking_id": session_row.booking_id, "course_id": session_row.course_id,
              "number": session_row.number, "start": utc(session_row.start),
              "end": utc(session_row.end), "status": session_row.status,
              "sequence": session_row.sequence}
    statement = _insert(session, course_sessions).values(**values)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["booking_id"],
        set_={"number": new.number, "start": new.start, "end": new.end, "status": new.status,
              "sequence": new.sequence},
        where=course_sessions.c.sequence <= new.sequence)
    return session.execute(statement).rowcount == 1


def course(session: Session, course_id: str, for_update: bool = False) -> CourseFacts | None:
    if "\x00" in str(course_id):
        return None
    query = select(courses).where(courses.c.id == str(course_id))
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    if row is None:
        return None
    sessions = session.execute(select(course_sessions).where(
        course_sessions.c.course_id == row["id"]).order_by(course_sessions.c.number)).all()
    return CourseFacts(
        id=row["id"], therapist_id=row["therapist_id"], session_count=row["session_count"],
        status=row["status"],
        sessions=[KnownSession(s.booking_id, s.course_id, s.number, utc(s.start), utc(s.end),
                               s.status, s.sequence) for s in sessions],
        focus=({"interpersonal": row["focus_interpersonal"] or "",
                "affective": row["focus_affective"] or "",
                "updated_at": utc(row["focus_updated_at"]).isoformat()}
               if row["focus_updated_at"] else None),
        letter_text=row["letter_text"], letter_status=row["letter_status"],
        letter_updated_at=utc(row["letter_updated_at"]),
        letter_shared_at=utc(row["letter_shared_at"]),
        risk_unseen_since=utc(row["risk_unseen_since"]))


def therapist_courses(session: Session, therapist_id: str | None) -> list[str]:
    """Ids of a therapist's courses (every course for None), newest first."""
    query = select(courses.c.id).order_by(courses.c.created_at.desc(), courses.c.id)
    if therapist_id is not None:
        query = query.where(courses.c.therapist_id == therapist_id)
    return list(session.execute(query).scalars())


# ---- check-ins, focus, letter, risk --------------------------------------------------------


def course_check_ins(session: Session, course_id: str) -> list[CheckIn]:
    rows = session.execute(select(check_ins).where(check_ins.c.course_id == course_id)
                           .order_by(check_ins.c.session_number)).mappings().all()
    return [CheckIn(id=r["id"], course_id=r["course_id"], session_number=r["session_number"],
                    booking_id=r["booking_id"], submitted_at=utc(r["submitted_at"]),
                    phq9_total=r["phq9_total"], gad7_total=r["gad7_total"], risk=r["risk"],
                    reflection=r["reflection"]) for r in rows]


def add_check_in(session: Session, check_in: CheckIn, phq9: list[int], gad7: list[int]) -> None:
    session.execute(check_ins.insert().values(
        id=check_in.id, course_id=check_in.course_id, session_number=check_in.session_number,
        booking_id=check_in.booking_id, submitted_at=utc(check_in.submitted_at),
        phq9_answers=phq9, gad7_answers=gad7, phq9_total=check_in.phq9_total,
        gad7_total=check_in.gad7_total, risk=check_in.risk, reflection=check_in.reflection))


def flag_risk(session: Session, course_id: str, now: datetime) -> None:
    """Mark the course for its therapist; an earlier unseen flag keeps its time."""
    session.execute(update(courses).where(courses.c.id == course_id,
                                          courses.c.risk_unseen_since.is_(None))
                    .values(risk_unseen_since=utc(now)))


def clear_risk(session: Session, course_id: str) -> None:
    session.execute(update(courses).where(courses.c.id == course_id)
                    .values(risk_unseen_since=None))


def set_focus(session: Session, course_id: str, interpersonal: str, affective: str,
              now: datetime) -> None:
    session.execute(update(courses).where(courses.c.id == course_id).values(
        focus_interpersonal=interpersonal, focus_affective=affective, focus_updated_at=utc(now)))


def set_letter(session: Session, course_id: str, values: dict[str, Any]) -> None:
    session.execute(update(courses).where(courses.c.id == course_id).values(
        **{f"letter_{key}": (utc(value) if isinstance(value, datetime) else value)
           for key, value in values.items()}))


def course_answers(session: Session, course_id: str) -> list[dict[str, Any]]:
    rows = session.execute(select(check_ins.c.session_number, check_ins.c.phq9_answers,
                                  check_ins.c.gad7_answers)
                           .where(check_ins.c.course_id == course_id)
                           .order_by(check_ins.c.session_number)).all()
    return [{"session_number": r.session_number, "phq9": r.phq9_answers, "gad7": r.gad7_answers}
            for r in rows]


def erase_course(session: Session, course_id: str) -> int:
    """Answers, reflections, focus and letter gone; 1 if the course was known, else 0."""
    session.execute(update(check_ins).where(check_ins.c.course_id == course_id).values(
        phq9_answers=[], gad7_answers=[], reflection=None))
    return session.execute(update(courses).where(courses.c.id == course_id).values(
        focus_interpersonal=None, focus_affective=None, focus_updated_at=None,
        letter_text=None, letter_status=None, letter_updated_at=None,
        letter_shared_at=None)).rowcount

