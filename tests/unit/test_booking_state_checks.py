"""Booking's state checks and room choice as pure functions: no broker, no database."""

from datetime import UTC, datetime, timedelta

import pytest

from clinic import errors
from clinic.access import Caller
from services.booking import policy

START = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)
BEFORE, AFTER = START - timedelta(hours=1), START + timedelta(minutes=1)
THERAPIST = Caller(kind="therapist", therapist_id="t1")


def row(**values):
    base = {"id": "b1", "therapist_id": "t1", "session_type": "dit", "modality": "video",
            "status": "confirmed", "start": START, "end": START + timedelta(minutes=50),
            "blocked_end": START + timedelta(minutes=60), "room": None,
            "expires_at": START - timedelta(minutes=30)}
    return {**base, **values}


def test_only_a_confirmed_session_not_yet_started_is_cancellable():
    policy.check_cancellable(row(), BEFORE)
    with pytest.raises(errors.InvalidState, match="already started"):
        policy.check_cancellable(row(), START)
    with pytest.raises(errors.InvalidState, match="is cancelled"):
        policy.check_cancellable(row(status="cancelled"), BEFORE)


def test_a_move_keeps_the_session_and_needs_a_confirmed_future_booking():
    policy.check_movable(row(), "t1", "dit", "video", BEFORE)
    with pytest.raises(errors.InvalidRequest) as refused:
        policy.check_movable(row(), "t1", "dit", "phone", BEFORE)
    assert refused.value.details["fields"][0]["field"] == "start"
    with pytest.raises(errors.InvalidState, match="cannot be moved"):
        policy.check_movable(row(status="attended"), "t1", "dit", "video", BEFORE)
    with pytest.raises(errors.InvalidState, match="already started"):
        policy.check_movable(row(), "t1", "dit", "video", AFTER)


def test_a_hold_converts_only_into_its_own_session_while_held():
    asked = {"therapist_id": "t1", "session_type": "dit", "modality": "video",
             "start": START.isoformat()}
    hold = row(status="held")
    policy.check_convertible(hold, asked, START - timedelta(hours=1))
    with pytest.raises(errors.InvalidRequest):
        policy.check_convertible(hold, {**asked, "therapist_id": "t2"}, BEFORE)
    with pytest.raises(errors.HoldExpired):  # past its expiry, though the timer has not run
        policy.check_convertible(hold, asked, START - timedelta(minutes=30))
    with pytest.raises(errors.HoldExpired):
        policy.check_convertible(row(status="expired"), asked, BEFORE)
    with pytest.raises(errors.InvalidState, match="already converted"):
        policy.check_convertible(row(status="converted"), asked, BEFORE)


def test_a_hold_is_releasable_until_its_expiry():
    policy.check_releasable(row(status="held"), START - timedelta(hours=1))
    with pytest.raises(errors.InvalidState):
        policy.check_releasable(row(status="held"), START - timedelta(minutes=30))
    with pytest.raises(errors.InvalidState):
        policy.check_releasable(row(status="released"), START - timedelta(hours=1))


def test_attendance_is_the_clinics_and_comes_after_the_start():
    assert policy.attendance_status("no_show") == "no_show"
    with pytest.raises(errors.InvalidRequest):
        policy.attendance_status("late")
    policy.check_attendance(row(), THERAPIST, AFTER)
    with pytest.raises(errors.Forbidden):
        policy.check_attendance(row(), Caller(kind="manage", token="mng_x"), AFTER)
    with pytest.raises(errors.InvalidState, match="cancelled"):
        policy.check_attendance(row(status="cancelled"), THERAPIST, AFTER)
    with pytest.raises(errors.InvalidState, match="once the session has started"):
        policy.check_attendance(row(), THERAPIST, BEFORE)


def test_access_the_clinic_or_a_token_holder_and_nobody_else_sees_the_row():
    asked = []

    def holds(answer):
        return lambda: asked.append(answer) or answer

    policy.check_access(THERAPIST, "t1", holds(False), "booking")
    policy.check_access(Caller(kind="admin"), "t1", holds(False), "booking")
    assert asked == []  # the clinic needs no token lookup
    policy.check_access(Caller(kind="manage", token="mng_x"), "t1", holds(True), "booking")
    with pytest.raises(errors.NotFound, match="No such course"):
        policy.check_access(Caller(kind="therapist", therapist_id="t2"), "t1", holds(False),
                            "course")
    with pytest.raises(errors.Unauthorized):
        policy.check_access(Caller(), "t1", holds(True), "booking")


def test_a_room_is_the_first_free_one_and_a_moved_session_keeps_its_own():
    end = START + timedelta(minutes=50)
    in_room_a = [row(room="room-a", therapist_id="t2")]
    assert policy.choose_room(["room-a", "room-b"], in_room_a, START, end) == "room-b"
    assert policy.choose_room(["room-a", "room-b"], [], START, end, prefer="room-b") == "room-b"
    later = [row(room="room-a", start=end, end=end + timedelta(minutes=50))]
    assert policy.choose_room(["room-a"], later, START, end) == "room-a"  # back to back is fine
    with pytest.raises(errors.SlotUnavailable):
        policy.choose_room(["room-a"], in_room_a, START, end)


def test_the_therapist_is_busy_during_the_buffer_too():
    live = [row()]
    blocked_end = START + timedelta(minutes=60)
    assert policy.therapist_busy(live, "t1", blocked_end - timedelta(minutes=5),
                                 blocked_end + timedelta(minutes=50))
    assert not policy.therapist_busy(live, "t1", blocked_end, blocked_end + timedelta(hours=1))
    assert not policy.therapist_busy(live, "t2", START, blocked_end)
