"""Outside calendars (docs/http-contract.md): a therapist links an iCalendar address whose busy
times block their clinic times; its status, and (an extension for the therapist page) the busy
times found.

The address is checked by the availability service, which fetches it: a refused address
(not http/https, or on a private or loopback network) is a 400 naming the field ``url``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from werkzeug.wrappers import Response

from clinic.access import Caller
from gateway.entrypoints import api
from gateway.schemas import Body, Day, Instant, Query, TimeZone

PATH = "/api/v1/therapists/{therapist_id}/external-calendar"


class OutsideCalendarIn(Body):
    url: str = Field(min_length=1, max_length=2000,
                     examples=["https://calendar.example/private/abc123/basic.ics"],
                     description="An http or https iCalendar address (a secret: shown only to "
                                 "the therapist and the admin).")


class OutsideCalendarLinked(Body):
    url: str
    status: Literal["pending"]


class OutsideConflict(Body):
    booking_id: str
    start: Instant
    end: Instant
    busy_start: Instant
    busy_end: Instant


class OutsideCalendar(Body):
    url: str
    status: Literal["pending", "ok", "failing"]
    last_synced_at: Instant | None = None
    last_error: str | None = None
    busy_count: int
    conflicts: list[OutsideConflict] = Field(
        default_factory=list, description="Clinic bookings the outside calendar came to "
                                          "overlap after they were booked (they stand).")


class BusyQuery(Query):
    from_: Day = Field(alias="from", description="First date, inclusive, read in tz.")
    to: Day = Field(description="Last date, inclusive; at most 92 days after from.")
    tz: TimeZone | None = Field(None, description="IANA zone; default the therapist's.")


class BusySpan(Body):
    start: Instant
    end: Instant


class BusyTimes(Body):
    timezone: str
    linked: bool = Field(description="Whether an outside calendar is linked at all.")
    busy: list[BusySpan] = Field(description="Times only: titles are never read or kept.")


class OutsideCalendarsApi:
    @api("PUT", PATH, summary="Link the therapist's outside calendar (an iCalendar address); "
         "its busy times block clinic times from the first fetch on.", tag="outside calendars",
         body=OutsideCalendarIn, reply=OutsideCalendarLinked, access="therapist",
         errors=(400, 401, 403, 404))
    def link_outside_calendar(self, request, caller: Caller, therapist_id: str,
                              body: OutsideCalendarIn):
        return self.availability.link_outside_calendar(caller.to_rpc(), therapist_id,
                                                       body.model_dump())

    @api("GET", PATH, summary="The linked outside calendar and how its last fetch went.",
         tag="outside calendars", reply=OutsideCalendar, access="therapist",
         errors=(401, 403, 404))
    def outside_calendar(self, request, caller: Caller, therapist_id: str):
        return self.availability.outside_calendar(caller.to_rpc(), therapist_id)

    @api("DELETE", PATH, summary="Unlink the outside calendar; its busy times stop blocking "
         "(nothing linked: already done, 204).",
         tag="outside calendars", status=204, access="therapist", errors=(401, 403, 404))
    def unlink_outside_calendar(self, request, caller: Caller, therapist_id: str):
        self.availability.unlink_outside_calendar(caller.to_rpc(), therapist_id)
        return Response(status=204)

    @api("GET", PATH + "/busy", summary="The busy times found in the outside calendar in a "
         "date range (no titles), for the therapist's week grid.", tag="outside calendars",
         query=BusyQuery, reply=BusyTimes, access="therapist", errors=(400, 401, 403, 404))
    def outside_busy_times(self, request, caller: Caller, therapist_id: str, query: BusyQuery):
        return self.availability.outside_busy_times(
            caller.to_rpc(), therapist_id, query.from_.isoformat(), query.to.isoformat(),
            query.tz.value if query.tz else None)
