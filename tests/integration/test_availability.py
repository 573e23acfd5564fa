"""The availability service on the real broker: booking events keep its busy table right.

Events are published as the booking service publishes them (nameko's standalone dispatcher to
the "booking" exchange), each waited for with entrypoint_waiter, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from clinic.access import Caller
from clinic.errors import InvalidRequest, NotFound
from clinic.events import Event
from services.availability.service import AvailabilityService

ADMIN = Caller(kind="admin").to_rpc()
LONDON = ZoneInfo("Europe/London")


def monday_in(weeks: int) -> date:
    today = date.today()
    return today + timedelta(days=7 * weeks - today.weekday())


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=LONDON).astimezone(UTC)


def booking(booking_id: str, start: datetime, *, status: str = "confirmed", sequence: int = 0,
            room: str | None = None) -> dict:
    end = start + timedelta(minutes=50)
    return {"id": booking_id, "status": status, "therapist_id": "ann",
            "session_type": "dit-session", "modality": "in_person" if room else "video",
            "start": start.isoformat(), "end": end.isoformat(),
            "blocked_end": (end + timedelta(minutes=10)).isoformat(), "room": room,
            "video_url": None, "course_id": None, "session_number": None,
            "course_sessions": None, "client": {"name": "C", "email": "c@example.com",
                                                "phone": None, "timezone": None},
            "sequence": sequence, "late_cancellation": False, "cancelled_by": None,
            "notes_present": False}


@pytest.fixture
def availability(container_factory, service_config):
    container = container_factory(AvailabilityService, service_config)
    container.start()
    with ClusterRpcProxy(service_config) as cluster:
        cluster.availability.create_therapist(ADMIN, {
            "id": "ann", "name": "Ann", "modalities": ["in_person", "video"]})
        cluster.availability.put_schedule(ADMIN, "ann", {"weekly": [
            {"weekday": "monday", "start": "10:00", "end": "13:00",
             "modalities": ["in_person", "video"]}]})
        cluster.availability.create_room(ADMIN, {"id": "garden", "name": "Garden room"})
    dispatch = event_dispatcher(service_config)

    class Availability:
        def publish(self, event_type: str, data: dict, payload: dict | None = None) -> dict:
            payload = payload or Event(event_type, data, "booking").to_payload()
            with entrypoint_waiter(container, f"on_{event_type}", timeout=10):
                dispatch("booking", event_type, payload)
            return payload

        def slots(self, day: date, modality: str = "video") -> list[int]:
            with ClusterRpcProxy(service_config) as cluster:
                found = cluster.availability.find_slots("ann", "dit-session", modality,
                                                        day.isoformat(), day.isoformat())
            return [datetime.fromisoformat(s["start"]).astimezone(LONDON).hour
                    for s in found["slots"]]

    return Availability()


def test_confirmed_rescheduled_and_cancelled_bookings_move_the_busy_time(availability):
    day = monday_in(2)
    assert availability.slots(day) == [10, 11, 12]
    availability.publish("booking_confirmed", {"booking": booking("b1", at(day, 10))})
    assert availability.slots(day) == [11, 12]  # 10:50 + 10 minutes' buffer ends at 11:00
    availability.publish("booking_rescheduled", {
        "booking": booking("b1", at(day, 12), sequence=1),
        "previous": {"start": at(day, 10).isoformat()}})
    assert availability.slots(day) == [10, 11]
    availability.publish("booking_cancelled", {"booking": booking("b1", at(day, 12),
                                                                  status="cancelled",
                                                                  sequence=2)})
    assert availability.slots(day) == [10, 11, 12]


def test_redelivered_and_out_of_order_events_leave_the_table_right(availability):
    day = monday_in(2)
    confirmed = availability.publish("booking_confirmed", {"booking": booking("b1", at(day, 10))})
    # The cancellation, then the confirmation again (a redelivery), then an older reschedule.
    availability.publish("booking_cancelled", {"booking": booking(
        "b1", at(day, 10), status="cancelled", sequence=2)})
    availability.publish("booking_confirmed", {}, payload=confirmed)
    availability.publish("booking_rescheduled", {"booking": booking("b1", at(day, 12),
                                                                    sequence=1)})
    assert availability.slots(day) == [10, 11, 12]

    # A hold released before its placement arrives never counts.
    hold = {"id": "h1", "therapist_id": "ann", "session_type": "dit-session",
            "modality": "video", "start": at(day, 10).isoformat(),
            "end": (at(day, 10) + timedelta(minutes=50)).isoformat(),
            "blocked_end": (at(day, 11)).isoformat(), "room": None,
            "expires_at": (datetime.now(UTC) + timedelta(minutes=10)).isoformat()}
    availability.publish("hold_released", {"hold": hold, "reason": "expired"})
    availability.publish("hold_placed", {"hold": hold})
    assert availability.slots(day) == [10, 11, 12]
    held = {**hold, "id": "h2", "start": at(day, 12).isoformat(),
            "end": (at(day, 12) + timedelta(minutes=50)).isoformat()}
    availability.publish("hold_placed", {"hold": held})
    assert availability.slots(day) == [10, 11]


def test_a_course_takes_every_week_and_its_cancellation_frees_the_rest(availability):
    first = monday_in(2)
    sessions = [booking(f"s{n}", at(first + timedelta(weeks=n), 11), room="garden")
                for n in range(4)]
    course = {"id": "k1", "therapist_id": "ann", "client": sessions[0]["client"],
              "session_type": "dit-session", "modality": "in_person", "sessions": sessions,
              "first_start": sessions[0]["start"], "last_end": sessions[-1]["end"],
              "status": "active"}
    availability.publish("course_booked", {"course": course})
    for week in range(4):
        assert availability.slots(first + timedelta(weeks=week), "in_person") == [10, 12]
    cancelled = [{**s, "status": "cancelled", "sequence": 1} for s in sessions[2:]]
    availability.publish("course_cancelled", {"course": {**course, "status": "cancelled"},
                                              "cancelled": cancelled})
    assert availability.slots(first + timedelta(weeks=1), "in_person") == [10, 12]
    assert availability.slots(first + timedelta(weeks=2), "in_person") == [10, 11, 12]


def test_refusals_cross_rpc_as_clinic_errors(availability, service_config):
    with ClusterRpcProxy(service_config) as cluster:
        with pytest.raises(NotFound):
            cluster.availability.get_therapist("nobody")
        with pytest.raises(InvalidRequest) as error:
            cluster.availability.find_slots("ann", "dit-session", "video", "2030-01-01",
                                            "2030-06-01")
        assert error.value.details["fields"][0]["field"] == "to"
        assert cluster.availability.get_therapist_contact("ann")["name"] == "Ann"
