"""The Catalogue routes' request models say in their schema what the service accepts."""

import pytest
from pydantic import ValidationError

from gateway.api.catalogue import CourseQuery, ScheduleIn, SlotQuery, TherapistIn, TimeOffIn


@pytest.mark.parametrize(("model", "data", "field"), [
    (TherapistIn, {"name": "Ann", "modalities": ["video"], "specialties": [" "]},
     ("specialties", 0)),
    (TherapistIn, {"name": "An\x00n", "modalities": ["video"]}, ("name",)),
    (TherapistIn, {"name": "Ann", "modalities": ["video"], "timezone": "Mars/Olympus"},
     ("timezone",)),
    (TherapistIn, {"name": "Ann", "modalities": []}, ("modalities",)),
    (ScheduleIn, {"weekly": [], "min_notice_hours": False}, ("min_notice_hours",)),
    (ScheduleIn, {"weekly": [{"weekday": "tue", "start": "10:00", "end": "11:00",
                              "modalities": ["video"]}]}, ("weekly", 0, "weekday")),
    (TimeOffIn, {"start": 0, "end": "2030-01-01T00:00:00Z"}, ("start",)),
    (TimeOffIn, {"start": "2030-01-01T09:00:00", "end": "2030-01-01T10:00:00Z"}, ("start",)),
    (SlotQuery, {"session_type": "dit-session", "modality": "video", "from": "2030-01-01",
                 "to": "2030-01-02", "tz": "Nowhere/Town"}, ("tz",)),
    (CourseQuery, {"session_type": "dit-session", "modality": "video", "sessions": 53},
     ("sessions",)),
])
def test_requests_the_service_would_refuse_fail_their_schema(model, data, field):
    with pytest.raises(ValidationError) as error:
        model.model_validate(data)
    assert error.value.errors()[0]["loc"] == field


def test_valid_requests_pass_and_reach_the_service_as_json():
    schedule = ScheduleIn.model_validate({"weekly": [], "horizon_days": 90.0,
                                          "timezone": "America/New_York"})
    assert schedule.model_dump(mode="json", exclude_none=True) == {
        "timezone": "America/New_York", "weekly": [], "buffer_minutes": 10,
        "slot_interval_minutes": 60, "min_notice_hours": 24, "horizon_days": 90}
    query = SlotQuery.model_validate({"session_type": "dit-session", "modality": "in_person",
                                      "from": "2030-01-01", "to": "2030-01-31"})
    assert (query.from_.isoformat(), query.tz) == ("2030-01-01", None)
