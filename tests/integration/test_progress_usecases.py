"""The progress service's entrypoints through ``worker_factory``, on SQLite and PostgreSQL.

Booking's events are fed as booking publishes them; booking's RPC (which checks manage tokens)
is a small fake that knows one token per course, as booking does.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from nameko.testing.services import worker_factory

from clinic.access import Caller
from clinic.db import UnitOfWork, create_engine_for, is_sqlite
from clinic.errors import Forbidden, InvalidRequest, InvalidState, NotFound, Unauthorized
from services.progress.models import outbox
from services.progress.service import ProgressService
from tests.integration.test_notifications_delivery import Clock
from tests.unit.test_notifications import START, course_dict, course_sessions, event

ADMIN = Caller(kind="admin").to_rpc()
THERAPIST = Caller(kind="therapist", therapist_id="dr-jo").to_rpc()
OTHER_THERAPIST = Caller(kind="therapist", therapist_id="dr-amy").to_rpc()
CLIENT = Caller(kind="manage", token="mng_crs-1").to_rpc()
OTHER_CLIENT = Caller(kind="manage", token="mng_crs-2").to_rpc()
PUBLIC = Caller().to_rpc()
CALM = {"phq9": [0] * 9, "gad7": [0] * 7}
LOW = {"phq9": [1, 1, 1, 1, 1, 0, 0, 0, 0], "gad7": [1, 1, 1, 0, 0, 0, 0]}
HIGH = {"phq9": [2, 2, 2, 2, 2, 2, 1, 1, 0], "gad7": [2, 2, 2, 2, 1, 1, 1]}
RISK = {"phq9": [0, 0, 0, 0, 0, 0, 0, 0, 1], "gad7": [0] * 7}


class Booking:
    """Stands in for booking's ``get_course``: one manage token per course, ``mng_<id>``;
    another course's token is 404 and no token 401, as booking answers."""

    def __init__(self, courses: dict[str, dict]) -> None:
        self.courses = courses
        self.audit: list[tuple[str, str, str | None]] = []  # (action, course, caller's kind)

    def get_course(self, caller: dict, course_id: str) -> dict:
        who = Caller.from_rpc(caller)
        if who.kind == "public":
            raise Unauthorized("This needs the course's manage token.")
        course = self.courses.get(course_id)
        if course is None or who.token != f"mng_{course_id}":
            raise NotFound("No such course.")
        return course

    def record_access(self, caller: dict, action: str, booking_id: str | None,
                      course_id: str) -> None:
        self.audit.append((action, course_id, Caller.from_rpc(caller).kind))


def answer_of(course: dict) -> dict:
    """Booking's get_course answer for a course dict."""
    return {"id": course["id"], "therapist_id": course["therapist_id"], "status": "active",
            "session_count": len(course["sessions"]),
            "sessions": [{"number": s["session_number"], "booking_id": s["id"],
                          "start": s["start"], "end": s["end"], "status": s["status"],
                          "sequence": s["sequence"]} for s in course["sessions"]]}


@pytest.fixture
def world(databases):
    url = databases.new("progress")
    engine = create_engine_for(url)
    uow = UnitOfWork(engine, threading.Lock() if is_sqlite(url) else None)
    sessions = course_sessions(16)
    course = course_dict(sessions)
    service = worker_factory(ProgressService, db=uow, clock=Clock(START - timedelta(days=3)),
                             booking=Booking({"crs-1": answer_of(course)}))
    service.engine = engine
    service.course = course
    yield service
    engine.dispose()


def published(service) -> list[dict]:
    with service.engine.connect() as connection:
        return [row.payload for row in connection.execute(
            sa.select(outbox).order_by(outbox.c.seq))]


def book(service) -> None:
    service.on_course_booked(event("course_booked", {"course": service.course}, "evt-booked"))


def test_a_booked_course_is_known_with_its_phases_and_schedule(world):
    book(world)
    view = world.get_progress(THERAPIST, "crs-1")
    assert view["sessions"] == 16 and view["current_phase"] == "assessment"
    assert view["phases"][1] == {"phase": "middle", "first": 5, "last": 12}
    assert view["next_session"]["number"] == 1 and view["check_in_open_for"] == 1
    assert [s["phase"] for s in view["schedule"]][3:5] == ["assessment", "middle"]
    assert view["check_ins"] == [] and view["baseline"] is None and view["latest"] is None
    assert view["risk_unseen"] is False


def test_check_ins_session_by_session_with_baseline_latest_and_verdicts(world):
    book(world)
    first = world.submit_check_in(CLIENT, "crs-1", HIGH, "Told my sister how I felt.")
    assert first["session_number"] == 1 and first["risk"] is False
    assert first["phq9"] == {"total": 14, "severity": "moderate"}
    assert first["gad7"] == {"total": 11, "severity": "moderate"}
    assert "urgent_help" not in first
    with pytest.raises(InvalidState):
        world.submit_check_in(CLIENT, "crs-1", LOW)  # session 1's is in
    world.clock.now = START + timedelta(hours=1)  # session 1 has ended
    second = world.submit_check_in(CLIENT, "crs-1", LOW)
    assert second["session_number"] == 2
    view = world.get_progress(CLIENT, "crs-1")
    assert [c["session_number"] for c in view["check_ins"]] == [1, 2]
    assert view["check_ins"][0]["reflection"] == "Told my sister how I felt."
    assert view["baseline"] == {"phq9": 14, "gad7": 11} and view["latest"] == {"phq9": 5,
                                                                               "gad7": 3}
    assert view["reliable_improvement"] is True and view["recovery"] is True
    assert view["reliable_deterioration"] is False
    assert "risk_unseen" not in view  # the therapist's marker


def test_risk_tells_the_client_where_help_is_and_marks_the_course_until_seen(world):
    book(world)
    answer = world.submit_check_in(CLIENT, "crs-1", RISK)
    assert answer["risk"] is True and answer["phq9"]["severity"] == "minimal"
    text = json.dumps(answer["urgent_help"])
    assert "111" in text and "116 123" in text and "999" in text
    assert world.get_progress(THERAPIST, "crs-1")["risk_unseen"] is True
    assert world.therapist_courses(THERAPIST, "dr-jo")[0]["risk_unseen"] is True
    with pytest.raises(Forbidden):
        world.mark_risk_seen(CLIENT, "crs-1")
    world.mark_risk_seen(THERAPIST, "crs-1")
    assert world.get_progress(THERAPIST, "crs-1")["risk_unseen"] is False


def test_events_carry_ids_and_the_risk_flag_only(world):
    book(world)
    world.submit_check_in(CLIENT, "crs-1", RISK, "a private reflection")
    world.put_letter(THERAPIST, "crs-1", "Dear Ann, a private letter")
    world.put_focus(THERAPIST, "crs-1", "private interpersonal", "private affective")
    world.share_letter(THERAPIST, "crs-1")
    events = published(world)
    assert [e["type"] for e in events] == ["checkin_submitted", "letter_shared"]
    assert set(events[0]["data"]) == {"check_in_id", "course_id", "booking_id",
                                      "session_number", "therapist_id", "risk"}
    assert events[0]["data"]["risk"] is True
    assert set(events[1]["data"]) == {"course_id", "therapist_id"}
    text = json.dumps(events)
    for private in ("private", "Dear Ann", "phq9", "gad7", "total", "severity"):
        assert private not in text


def test_who_may_read_and_write(world):
    book(world)
    for caller, error in ((PUBLIC, Unauthorized), (OTHER_CLIENT, NotFound),
                          (OTHER_THERAPIST, NotFound)):
        with pytest.raises(error):
            world.get_progress(caller, "crs-1")
        with pytest.raises(error):
            world.submit_check_in(caller, "crs-1", CALM)
        with pytest.raises(error):
            world.put_focus(caller, "crs-1", "a", "b")
    with pytest.raises(Forbidden):
        world.submit_check_in(THERAPIST, "crs-1", CALM)  # the client's own
    with pytest.raises(Forbidden):
        world.put_focus(CLIENT, "crs-1", "a", "b")
    with pytest.raises(Forbidden):
        world.put_letter(CLIENT, "crs-1", "a")
    with pytest.raises(NotFound):
        world.get_progress(ADMIN, "no-such-course")
    assert world.get_progress(ADMIN, "crs-1")["course_id"] == "crs-1"


def test_reads_and_changes_of_progress_go_to_the_audit_log_refusals_do_not(world):
    book(world)
    world.get_progress(CLIENT, "crs-1")
    world.submit_check_in(CLIENT, "crs-1", CALM)
    world.put_focus(THERAPIST, "crs-1", "a", "b")
    with pytest.raises(NotFound):
        world.get_progress(OTHER_THERAPIST, "crs-1")
    assert world.booking.audit == [("progress_read", "crs-1", "manage"),
                                   ("check_in_submitted", "crs-1", "manage"),
                                   ("focus_changed", "crs-1", "therapist")]


def test_the_client_reads_a_course_before_its_event_arrives(world):
    view = world.get_progress(CLIENT, "crs-1")  # booking vouched for it
    assert view["sessions"] == 16 and len(view["schedule"]) == 16
    book(world)  # the late event changes nothing
    assert world.get_progress(CLIENT, "crs-1")["schedule"] == view["schedule"]


def test_a_redelivered_event_changes_nothing_and_a_stale_one_is_ignored(world):
    book(world)
    moved = dict(world.course["sessions"][0], start=(START + timedelta(days=1)).isoformat(),
                 end=(START + timedelta(days=1, minutes=50)).isoformat(), sequence=1)
    world.on_booking_rescheduled(event("booking_rescheduled", {"booking": moved}, "evt-moved"))
    book(world)  # redelivered: already handled
    stale = dict(world.course["sessions"][0], status="cancelled", sequence=0)
    world.on_booking_cancelled(event("booking_cancelled", {"booking": stale}, "evt-stale"))
    first = world.get_progress(ADMIN, "crs-1")["schedule"][0]
    assert first["start"] == (START + timedelta(days=1)).isoformat()
    assert first["status"] == "confirmed"


def test_no_check_in_on_a_cancelled_course_or_after_the_end(world):
    book(world)
    world.clock.now = START + timedelta(weeks=20)
    with pytest.raises(InvalidState):
        world.submit_check_in(CLIENT, "crs-1", CALM)
    world.clock.now = START - timedelta(days=1)
    cancelled = dict(world.course, status="cancelled",
                     sessions=[dict(s, status="cancelled", sequence=1)
                               for s in world.course["sessions"]])
    world.on_course_cancelled(event("course_cancelled", {"course": cancelled, "cancelled": []}))
    with pytest.raises(InvalidState):
        world.submit_check_in(CLIENT, "crs-1", CALM)
    assert world.get_progress(ADMIN, "crs-1")["status"] == "cancelled"


def test_bad_answers_are_a_400_and_change_nothing(world):
    book(world)
    for bad in ({"phq9": [0] * 8, "gad7": [0] * 7}, {"phq9": [0] * 9, "gad7": [4] * 7}, {}):
        with pytest.raises(InvalidRequest):
            world.submit_check_in(CLIENT, "crs-1", bad)
    assert world.get_progress(ADMIN, "crs-1")["check_ins"] == []


def test_focus_and_a_letter_shared_once(world):
    book(world)
    world.put_focus(THERAPIST, "crs-1", "Pleasing others, then resenting it", "Anger, guilt")
    assert world.get_progress(CLIENT, "crs-1")["focus"]["affective"] == "Anger, guilt"
    with pytest.raises(InvalidState):
        world.share_letter(THERAPIST, "crs-1")  # nothing to share yet
    assert world.put_letter(THERAPIST, "crs-1", "Dear Ann,")["status"] == "draft"
    assert world.get_progress(CLIENT, "crs-1")["letter"] is None
    shared = world.share_letter(THERAPIST, "crs-1")
    assert shared["status"] == "shared"
    assert world.share_letter(ADMIN, "crs-1") == shared  # told once
    assert world.get_progress(CLIENT, "crs-1")["letter"]["text"] == "Dear Ann,"
    with pytest.raises(InvalidState):
        world.put_letter(THERAPIST, "crs-1", "changed")
    assert [e["type"] for e in published(world)] == ["letter_shared"]


def test_export_and_erase_are_the_admins_and_leave_the_totals(world):
    book(world)
    world.submit_check_in(CLIENT, "crs-1", HIGH, "my own words")
    world.put_focus(THERAPIST, "crs-1", "a pattern", "a feeling")
    world.put_letter(THERAPIST, "crs-1", "Dear Ann")
    with pytest.raises(Forbidden):
        world.export_courses(THERAPIST, ["crs-1"])
    with pytest.raises(Unauthorized):
        world.erase_courses(PUBLIC, ["crs-1"])
    (exported,) = world.export_courses(ADMIN, ["crs-1", "unknown"])
    assert exported["answers"] == [{"session_number": 1, "phq9": HIGH["phq9"],
                                    "gad7": HIGH["gad7"]}]
    assert exported["check_ins"][0]["reflection"] == "my own words"
    assert world.erase_courses(ADMIN, ["crs-1", "unknown"]) == 1
    (after,) = world.export_courses(ADMIN, ["crs-1"])
    assert after["answers"] == [{"session_number": 1, "phq9": [], "gad7": []}]
    assert after["check_ins"][0]["reflection"] is None
    assert after["check_ins"][0]["phq9"]["total"] == 14  # anonymous totals stay
    assert after["focus"] is None and after["letter"] is None

