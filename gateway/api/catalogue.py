"""Catalogue and Finding a time: session types, rooms, therapists, schedules, time off, slots.

The models here check the shape of a request (types, unknown fields, naive instants); the
availability service checks the rest (zones, ranges, that a therapist exists) and authorises the
caller against its own data, naming the same fields in its refusals.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from werkzeug.wrappers import Response

from clinic.access import Caller
from gateway.entrypoints import api
from gateway.schemas import Body, Day, Instant, Query, Text, TimeZone, Whole

Modality = Literal["in_person", "video", "phone"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"
EMAIL = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
THERAPIST = "/api/v1/therapists/{therapist_id}"


class SessionTypeIn(Body):
    id: str = Field(pattern=SLUG, max_length=64, examples=["dit-session"])
    name: Text = Field(max_length=200, examples=["DIT session"])
    duration_minutes: Whole = Field(ge=5, le=720, examples=[50])


class SessionType(Body):
    id: str
    name: str
    duration_minutes: int


class RoomIn(Body):
    id: str = Field(pattern=SLUG, max_length=64, examples=["room-1"])
    name: Text = Field(max_length=200, examples=["Garden room"])


class Room(Body):
    id: str
    name: str


class TherapistIn(Body):
    id: str | None = Field(None, pattern=SLUG, max_length=64,
                           description="A slug; generated from the name when absent.")
    name: Text = Field(max_length=200)
    email: str | None = Field(None, max_length=320, pattern=EMAIL,
                              description="Never shown to the public.")
    title: Text | None = Field(None, max_length=200)
    bio: Text | None = Field(None, max_length=4000)
    specialties: list[Annotated[Text, Field(max_length=100)]] = Field(
        default_factory=list, examples=[["DIT", "depression"]])
    modalities: list[Modality] = Field(min_length=1)
    timezone: TimeZone | None = Field(None, description="IANA zone; default CLINIC_TIMEZONE.")


class Therapist(Body):
    id: str
    name: str
    title: str | None = None
    bio: str | None = None
    specialties: list[str]
    modalities: list[Modality]
    timezone: str
    email: str | None = Field(None, description="Only in the reply to the admin who created it.")


class TherapistQuery(Query):
    specialty: str | None = None
    modality: Modality | None = None


class TokenReply(Body):
    token: str = Field(description="Shown once; only its hash is kept.")


class WeeklyRule(Body):
    weekday: Weekday
    start: str = Field(pattern=HH_MM, examples=["09:00"], description="Wall clock, HH:MM.")
    end: str = Field(pattern=HH_MM, examples=["17:00"])
    modalities: list[Modality] = Field(min_length=1)


class ScheduleIn(Body):
    timezone: TimeZone | None = Field(None, description="IANA zone; default the therapist's.")
    weekly: list[WeeklyRule]
    buffer_minutes: Whole = Field(10, ge=0, le=240)
    slot_interval_minutes: Whole = Field(60, ge=5, le=1440)
    min_notice_hours: Whole = Field(24, ge=0, le=8760)
    horizon_days: Whole = Field(180, ge=1, le=1095)


class Schedule(Body):
    timezone: str
    weekly: list[WeeklyRule]
    buffer_minutes: int
    slot_interval_minutes: int
    min_notice_hours: int
    horizon_days: int


class TimeOffIn(Body):
    start: Instant
    end: Instant
    reason: Text | None = Field(None, max_length=500)


class TimeOff(Body):
    id: str
    start: Instant
    end: Instant
    reason: str | None = None


class SlotQuery(Query):
    session_type: str
    modality: Modality
    from_: Day = Field(alias="from", description="First date, inclusive, read in tz.")
    to: Day = Field(description="Last date, inclusive; at most 92 days after from.")
    tz: TimeZone | None = Field(None, description="IANA zone; default the therapist's.")


class Slot(Body):
    start: Instant
    end: Instant


class Slots(Body):
    slots: list[Slot]
    timezone: str | None = None


class CourseQuery(Query):
    session_type: str
    modality: Modality
    sessions: int = Field(16, ge=1, le=52)
    from_: Day | None = Field(None, alias="from", description="Default: today in tz.")
    tz: TimeZone | None = Field(None, description="IANA zone; default the therapist's.")
    skip_weeks: str | None = Field(None, description="Comma list of dates; their weeks get no "
                                                     "session and the course runs on.")


class CourseOption(Body):
    weekday: Weekday
    local_time: str = Field(examples=["10:00"])
    sessions: list[Instant]


class CourseOptions(Body):
    options: list[CourseOption]
    timezone: str | None = Field(None, description="The zone of weekday and local_time.")


def _no_content() -> Response:
    return Response(status=204)


class CatalogueApi:
    # --- session types and rooms ---

    @api("GET", "/api/v1/session-types", summary="Session types on offer.", tag="catalogue",
         reply=list[SessionType])
    def list_session_types(self, request):
        return self.availability.list_session_types()

    @api("POST", "/api/v1/session-types", summary="Add a session type.", tag="catalogue",
         body=SessionTypeIn, reply=SessionType, status=201, access="admin",
         errors=(401, 403, 409))
    def create_session_type(self, request, caller: Caller, body: SessionTypeIn):
        return self.availability.create_session_type(caller.to_rpc(), body.model_dump())

    @api("GET", "/api/v1/rooms", summary="The clinic's rooms.", tag="catalogue",
         reply=list[Room])
    def list_rooms(self, request):
        return self.availability.list_rooms()

    @api("POST", "/api/v1/rooms", summary="Add a clinic room.", tag="catalogue", body=RoomIn,
         reply=Room, status=201, access="admin", errors=(401, 403, 409))
    def create_room(self, request, caller: Caller, body: RoomIn):
        return self.availability.create_room(caller.to_rpc(), body.model_dump())

    # --- therapists ---

    @api("POST", "/api/v1/therapists", summary="Add a therapist.", tag="catalogue",
         body=TherapistIn, reply=Therapist, status=201, access="admin", errors=(401, 403, 409))
    def create_therapist(self, request, caller: Caller, body: TherapistIn):
        return self.availability.create_therapist(caller.to_rpc(),
                                                  body.model_dump(mode="json", exclude_none=True))

    @api("GET", "/api/v1/therapists", summary="Therapists, by specialty and modality.",
         tag="catalogue", query=TherapistQuery, reply=list[Therapist])
    def list_therapists(self, request, query: TherapistQuery):
        return self.availability.list_therapists(query.specialty, query.modality)

    @api("GET", THERAPIST, summary="One therapist.", tag="catalogue", reply=Therapist,
         errors=(404,))
    def get_therapist(self, request, therapist_id: str):
        return self.availability.get_therapist(therapist_id)

    @api("POST", THERAPIST + "/tokens", summary="Issue a token for this therapist.",
         tag="catalogue", reply=TokenReply, status=201, access="admin",
         errors=(401, 403, 404))
    def issue_therapist_token(self, request, caller: Caller, therapist_id: str):
        return {"token": self.availability.issue_therapist_token(caller.to_rpc(), therapist_id)}

    @api("DELETE", THERAPIST + "/tokens", summary="Revoke all of this therapist's tokens.",
         tag="catalogue", status=204, access="admin", errors=(401, 403, 404))
    def revoke_therapist_tokens(self, request, caller: Caller, therapist_id: str):
        self.availability.revoke_therapist_tokens(caller.to_rpc(), therapist_id)
        return _no_content()

    # --- schedules and time off ---

    @api("PUT", THERAPIST + "/schedule", summary="Set the weekly schedule.", tag="catalogue",
         body=ScheduleIn, reply=Schedule, access="therapist", errors=(401, 403, 404))
    def put_schedule(self, request, caller: Caller, therapist_id: str, body: ScheduleIn):
        return self.availability.put_schedule(caller.to_rpc(), therapist_id,
                                              body.model_dump(mode="json", exclude_none=True))

    @api("GET", THERAPIST + "/schedule", summary="The weekly schedule.", tag="catalogue",
         reply=Schedule, errors=(404,))
    def get_schedule(self, request, therapist_id: str):
        return self.availability.get_schedule(therapist_id)

    @api("POST", THERAPIST + "/time-off", summary="Add time off.", tag="catalogue",
         body=TimeOffIn, reply=TimeOff, status=201, access="therapist", errors=(401, 403, 404))
    def add_time_off(self, request, caller: Caller, therapist_id: str, body: TimeOffIn):
        data = {"start": body.start.isoformat(), "end": body.end.isoformat(),
                "reason": body.reason}
        return self.availability.add_time_off(caller.to_rpc(), therapist_id, data)

    @api("GET", THERAPIST + "/time-off", summary="This therapist's time off.", tag="catalogue",
         reply=list[TimeOff], access="therapist", errors=(401, 403, 404))
    def list_time_off(self, request, caller: Caller, therapist_id: str):
        return self.availability.list_time_off(caller.to_rpc(), therapist_id)

    @api("DELETE", THERAPIST + "/time-off/{time_off_id}", summary="Remove time off.",
         tag="catalogue", status=204, access="therapist", errors=(401, 403, 404))
    def delete_time_off(self, request, caller: Caller, therapist_id: str, time_off_id: str):
        self.availability.delete_time_off(caller.to_rpc(), therapist_id, time_off_id)
        return _no_content()

    # --- finding a time ---

    @api("GET", THERAPIST + "/slots", summary="Free session starts in a date range.",
         tag="finding a time", query=SlotQuery, reply=Slots, errors=(404,))
    def find_slots(self, request, therapist_id: str, query: SlotQuery):
        return self.availability.find_slots(therapist_id, query.session_type, query.modality,
                                            query.from_.isoformat(), query.to.isoformat(),
                                            query.tz.value if query.tz else None)

    @api("GET", THERAPIST + "/course-options",
         summary="Weekly times at which a whole course is free.", tag="finding a time",
         query=CourseQuery, reply=CourseOptions, errors=(404,))
    def course_options(self, request, therapist_id: str, query: CourseQuery):
        skip = [part.strip() for part in (query.skip_weeks or "").split(",") if part.strip()]
        return self.availability.course_options(
            therapist_id, query.session_type, query.modality, query.sessions,
            query.from_.isoformat() if query.from_ else None,
            query.tz.value if query.tz else None, skip)

    @api("GET", "/internal/availability-ping", summary="One no-op RPC to availability "
         "(the floor benchmarks compare with).", tag="operations", extra={"hidden": True})
    def availability_ping(self, request):
        return {"status": self.availability.ping()}
