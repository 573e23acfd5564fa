"""Booking and Courses (docs/http-contract.md): holds, bookings, courses, cancellation,
reschedule, attendance."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import ConfigDict, Field

from clinic.access import Caller
from clinic.errors import InvalidRequest
from gateway.auth import identify
from gateway.entrypoints import api
from gateway.schemas import Body, Day, EmailAddress, Instant, PersonName, Query

Modality = Literal["in_person", "video", "phone"]
MAX_IDEMPOTENCY_KEY = 255
MIN_IDEMPOTENCY_KEY = 16


class ClientIn(Body):
    name: PersonName  # one line: it becomes an email header and a calendar SUMMARY
    email: EmailAddress  # exactly one address
    phone: str | None = Field(default=None, max_length=64)
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/London"])


class HoldRequest(Body):
    therapist_id: str = Field(min_length=1, max_length=64)
    session_type: str = Field(min_length=1, max_length=64)
    modality: Modality
    start: Instant


class BookingRequest(HoldRequest):
    client: ClientIn
    hold_id: str | None = Field(default=None, max_length=36)
    notes: str | None = Field(default=None, max_length=4000)


class CancelRequest(Body):
    reason: str | None = Field(default=None, max_length=1000)


class RescheduleRequest(Body):
    start: Instant


class AttendanceRequest(Body):
    status: Literal["attended", "no_show"]


class CourseRequest(Body):
    therapist_id: str = Field(min_length=1, max_length=64)
    session_type: str = Field(min_length=1, max_length=64)
    modality: Modality
    first_start: Instant
    sessions: int = Field(default=16, ge=1, le=52)
    skip_weeks: list[Day] | None = Field(default=None, max_length=52)
    client: ClientIn
    notes: str | None = Field(default=None, max_length=4000)


class BookingsQuery(Query):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    tz: str | None = Field(default=None, max_length=64)


class ClientOut(Body):
    name: str
    email: str | None = Field(default=None, description="None once the client was erased.")
    phone: str | None = None
    timezone: str | None = None


class ClaimedTime(Body):
    """What a hold and a booking both say (services/booking/policy.py ``claimed_time``)."""

    id: str
    therapist_id: str
    session_type: str
    modality: Modality
    start: str
    end: str
    blocked_end: str
    room: str | None = None


class Hold(ClaimedTime):
    status: str
    expires_at: str
    manage_token: str | None = None


class Booking(ClaimedTime):
    status: Literal["confirmed", "cancelled", "attended", "no_show"]
    video_url: str | None = None
    course_id: str | None = None
    session_number: int | None = None
    course_sessions: int | None = None
    client: ClientOut
    sequence: int
    late_cancellation: bool = False
    cancelled_by: str | None = None
    cancelled_by_id: str | None = Field(default=None, description="Who exactly: a therapist's "
                                        "id, or a pseudonym of the client's link.")
    cancel_reason: str | None = None
    cancelled_at: str | None = None
    notes_present: bool = False
    notes: str | None = None
    created_at: str
    manage_token: str | None = Field(default=None, description="Only in the creating answer.")


class CourseSession(Body):
    number: int
    booking_id: str
    start: str
    end: str
    status: str
    room: str | None = None
    video_url: str | None = None
    sequence: int = Field(description="Grows with each change; the SEQUENCE of its VEVENT.")
    phase: Literal["assessment", "middle", "ending"] | None = None


class Course(Body):
    id: str
    status: Literal["active", "cancelled"]
    therapist_id: str
    session_type: str
    modality: Modality
    client: ClientOut
    sessions: list[CourseSession]
    first_start: str
    last_end: str
    completed: int
    remaining: int
    session_count: int
    skip_weeks: list[str]
    cancelled_at: str | None = None
    cancelled_by: str | None = None
    cancelled_by_id: str | None = None
    manage_token: str | None = Field(default=None, description="Only in the creating answer.")


class SignedOut(Body):
    id: str
    revoked: int = Field(description="How many links (manage tokens) stopped working.")


class CancelClientRequest(Body):
    client_address: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    since: Instant
    until: Instant


class CancelledBookings(Body):
    cancelled: list[str]


class AuditQuery(Query):
    booking_id: str | None = Field(default=None, max_length=36)
    course_id: str | None = Field(default=None, max_length=36)


class Actor(Body):
    kind: str
    id: str | None = None


class AuditEntry(Body):
    at: str
    actor: Actor
    action: str
    booking_id: str | None = None
    course_id: str | None = None


class ClientQuery(Query):
    email: str = Field(min_length=3, max_length=320)


class EraseRequest(Body):
    email: str = Field(min_length=3, max_length=320)


class ClientExport(Body):
    email: str
    booking: dict = Field(description="Bookings (holds included) and courses, as the admin "
                          "sees them.")
    progress: list[dict] = Field(description="Check-ins, focus and letter of each course.")
    notifications: list[dict] = Field(description="The messages sent to that address.")


class Erasing(Body):
    status: Literal["erasing"]
    progress: int = Field(description="How many courses progress erased.")
    booking: dict = Field(description="How many bookings and courses booking erased; other "
                          "services erase theirs on the client_erased event.")


class Pong(Body):
    status: str


def idempotency_key(request) -> str:
    """The client's Idempotency-Key, or one for this request alone.

    Either way the service can tell a repeat from a new request: if a booking process dies
    after its commit and before its answer, RabbitMQ hands the same call to another one, which
    must answer what was done (a replay) rather than 409 for the client's own booking.
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return f"request-{uuid.uuid4()}"
    key = key.strip()
    if not (MIN_IDEMPOTENCY_KEY <= len(key) <= MAX_IDEMPOTENCY_KEY) or not all(
            "!" <= ch <= "~" for ch in key):
        raise InvalidRequest.field("Idempotency-Key", "Use 16 to 255 visible ASCII characters.")
    return key


def client_address(request) -> str | None:
    """The client's address as the gateway's proxy-aware limiter sees it (TRUSTED_PROXIES)."""
    return request.environ.get("clinic.client_address") or request.remote_addr


def rpc_body(body: Body) -> dict:
    """The body as JSON for the service (instants as ISO strings); the same body always gives
    the same dict, which is what Idempotency-Key compares."""
    return body.model_dump(mode="json", exclude_none=True)


class BookingApi:
    @api("POST", "/api/v1/holds",
         summary="Withhold a slot for HOLD_MINUTES (optional Idempotency-Key).", tag="booking",
         body=HoldRequest, reply=Hold, status=201, errors=(400, 404, 409))
    def place_hold(self, request, body: HoldRequest):
        data = rpc_body(body)
        return self.booking.place_hold(data["therapist_id"], data["session_type"],
                                       data["modality"], data["start"], idempotency_key(request),
                                       client_address(request))

    @api("POST", "/api/v1/holds/{hold_id}/release", summary="Give a held slot back.",
         tag="booking", reply=Hold, access="owner", errors=(401, 404, 409))
    def release_hold(self, request, caller: Caller, hold_id):
        return self.booking.release_hold(caller.to_rpc(), hold_id)

    @api("POST", "/api/v1/holds/{hold_id}/extend",
         summary="Hold the slot for another HOLD_MINUTES from now, once (409 when the hold has "
         "expired, was already extended, or is no longer held).", tag="booking", reply=Hold,
         access="owner", errors=(401, 404, 409))
    def extend_hold(self, request, caller: Caller, hold_id):
        return self.booking.extend_hold(caller.to_rpc(), hold_id)

    @api("POST", "/api/v1/bookings", summary="Book a session (optional Idempotency-Key).",
         tag="booking", body=BookingRequest, reply=Booking, status=201,
         errors=(400, 404, 409))
    def create_booking(self, request, body: BookingRequest):
        # converting a hold needs the hold's manage token as the caller
        caller = identify(request, self.config, self.availability)
        return self.booking.create_booking(rpc_body(body), idempotency_key(request),
                                           caller.to_rpc(), client_address(request))

    @api("GET", "/api/v1/bookings/{booking_id}", summary="A booking.", tag="booking",
         reply=Booking, access="owner", errors=(401, 404))
    def get_booking(self, request, caller: Caller, booking_id):
        return self.booking.get_booking(caller.to_rpc(), booking_id)

    @api("POST", "/api/v1/bookings/{booking_id}/cancel",
         summary="Cancel a booking (optional Idempotency-Key).", tag="booking",
         body=CancelRequest, reply=Booking, access="owner", errors=(400, 401, 404, 409))
    def cancel_booking(self, request, caller: Caller, booking_id, body: CancelRequest):
        return self.booking.cancel_booking(caller.to_rpc(), booking_id, body.reason,
                                           idempotency_key(request))

    @api("POST", "/api/v1/bookings/{booking_id}/reschedule",
         summary="Move a booking; on 409 it stays as it was (optional Idempotency-Key).",
         tag="booking", body=RescheduleRequest, reply=Booking, access="owner",
         errors=(400, 401, 404, 409))
    def reschedule_booking(self, request, caller: Caller, booking_id, body: RescheduleRequest):
        return self.booking.reschedule_booking(caller.to_rpc(), booking_id,
                                               rpc_body(body)["start"], idempotency_key(request))

    @api("POST", "/api/v1/bookings/{booking_id}/attendance",
         summary="Mark attendance once the session has started.", tag="booking",
         body=AttendanceRequest, reply=Booking, access="therapist",
         errors=(400, 401, 403, 404, 409))
    def mark_attendance(self, request, caller: Caller, booking_id, body: AttendanceRequest):
        return self.booking.mark_attendance(caller.to_rpc(), booking_id, body.status)

    @api("GET", "/api/v1/therapists/{therapist_id}/bookings",
         summary="A therapist's bookings between two dates.", tag="booking",
         query=BookingsQuery, reply=list[Booking], access="therapist",
         errors=(400, 401, 403, 404))
    def list_therapist_bookings(self, request, caller: Caller, therapist_id, query: BookingsQuery):
        return self.booking.list_therapist_bookings(
            caller.to_rpc(), therapist_id, query.from_ and query.from_.isoformat(),
            query.to and query.to.isoformat(), query.tz)

    @api("POST", "/api/v1/courses", summary="Book a weekly course: all sessions or none.",
         tag="courses", body=CourseRequest, reply=Course, status=201, errors=(400, 404, 409))
    def create_course(self, request, body: CourseRequest):
        return self.booking.create_course(rpc_body(body), idempotency_key(request),
                                          client_address(request))

    @api("POST", "/api/v1/bookings/{booking_id}/sign-out",
         summary="Sign out all links of a booking: every manage token of it stops working.",
         tag="booking", reply=SignedOut, access="owner", errors=(401, 404))
    def sign_out_booking(self, request, caller: Caller, booking_id):
        return self.booking.sign_out(caller.to_rpc(), "booking", booking_id)

    @api("POST", "/api/v1/courses/{course_id}/sign-out",
         summary="Sign out all links of a course and its sessions.", tag="courses",
         reply=SignedOut, access="owner", errors=(401, 404))
    def sign_out_course(self, request, caller: Caller, course_id):
        return self.booking.sign_out(caller.to_rpc(), "course", course_id)

    @api("POST", "/api/v1/clients/cancel-bookings",
         summary="Cancel every session still to come booked in [since, until] from one client "
                 "address or for one email (abuse clean-up).", tag="booking",
         body=CancelClientRequest, reply=CancelledBookings, access="admin",
         errors=(400, 401, 403))
    def cancel_client_bookings(self, request, caller: Caller, body: CancelClientRequest):
        data = rpc_body(body)
        return self.booking.cancel_client_bookings(
            caller.to_rpc(), data["since"], data["until"], data.get("client_address"),
            data.get("email"))

    @api("GET", "/api/v1/courses/{course_id}", summary="A course with its sessions.",
         tag="courses", reply=Course, access="owner", errors=(401, 404))
    def get_course(self, request, caller: Caller, course_id):
        return self.booking.get_course(caller.to_rpc(), course_id)

    @api("POST", "/api/v1/courses/{course_id}/cancel",
         summary="Cancel every session of a course not yet started (optional Idempotency-Key).",
         tag="courses", body=CancelRequest, reply=Course, access="owner",
         errors=(400, 401, 404, 409))
    def cancel_course(self, request, caller: Caller, course_id, body: CancelRequest):
        return self.booking.cancel_course(caller.to_rpc(), course_id, body.reason,
                                          idempotency_key(request))

    @api("GET", "/api/v1/audit", summary="Who read or changed a booking or a course.",
         tag="booking", query=AuditQuery, reply=list[AuditEntry], access="admin",
         errors=(400, 401, 403))
    def audit_trail(self, request, caller: Caller, query: AuditQuery):
        return self.booking.audit_trail(caller.to_rpc(), query.booking_id, query.course_id)

    @api("GET", "/api/v1/clients/export", summary="Everything held about one client.",
         tag="booking", query=ClientQuery, reply=ClientExport, access="admin",
         errors=(400, 401, 403))
    def export_client(self, request, caller: Caller, query: ClientQuery):
        booked = self.booking.export_client(caller.to_rpc(), query.email)
        # progress keeps no name or address: booking names the client's courses
        course_ids = [course["id"] for course in booked["courses"]]
        return {"email": query.email, "booking": booked,
                "progress": self.progress.export_courses(caller.to_rpc(), course_ids),
                "notifications": self.notifications.export_client(caller.to_rpc(), query.email)}

    @api("POST", "/api/v1/clients/erase", summary="Erase a client from every service.",
         tag="booking", body=EraseRequest, reply=Erasing, status=202, access="admin",
         errors=(400, 401, 403))
    def erase_client(self, request, caller: Caller, body: EraseRequest):
        # progress first, while booking can still say which courses are the client's; then
        # booking, whose client_erased event carries the erasure to notifications
        booked = self.booking.export_client(caller.to_rpc(), body.email)
        course_ids = [course["id"] for course in booked["courses"]]
        progress = self.progress.erase_courses(caller.to_rpc(), course_ids) if course_ids else 0
        return {"status": "erasing", "progress": progress,
                "booking": self.booking.erase_client(caller.to_rpc(), body.email)}

    @api("GET", "/internal/booking-ping", summary="One no-op RPC to booking (benchmarks).",
         tag="operations", reply=Pong, extra={"hidden": True})
    def booking_ping(self, request):
        return {"status": self.booking.ping()}
