"""Waitlist (docs/http-contract.md): join, see and leave an entry; accept or decline the time
it was offered; a therapist's list. The booking service owns entries and offers."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from werkzeug.wrappers import Response

from clinic.access import Caller
from gateway.api.booking import Booking, ClientIn, Course, Modality, rpc_body
from gateway.entrypoints import api
from gateway.schemas import Body, Day, Query

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WallClock = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["09:00"])


class WindowIn(Body):
    weekday: Weekday
    start: str = WallClock
    end: str = WallClock


class JoinRequest(Body):
    therapist_id: str | None = Field(default=None, min_length=1, max_length=64,
                                     description="Absent: any therapist offering it.")
    session_type: str = Field(min_length=1, max_length=64)
    modality: Modality
    kind: Literal["session", "course"] = "session"
    sessions: int | None = Field(default=None, ge=1, le=52,
                                 description="A course's weekly sessions (default 16).")
    windows: list[WindowIn] = Field(min_length=1, max_length=21)
    tz: str | None = Field(default=None, max_length=64, examples=["Europe/London"])
    until: Day | None = None
    client: ClientIn


class OfferChoice(Body):
    offer_id: str = Field(min_length=1, max_length=36)


class Offer(Body):
    id: str
    therapist_id: str
    session_type: str
    modality: Modality
    start: str
    sessions: list[str]
    expires_at: str
    status: str


class ClientName(Body):
    name: str | None = None
    email: str | None = None


class Entry(Body):
    id: str
    status: Literal["waiting", "offered", "booked", "left", "expired"]
    therapist_id: str | None = None
    session_type: str
    modality: Modality
    kind: Literal["session", "course"]
    sessions: int
    windows: list[WindowIn]
    tz: str
    until: str | None = None
    joined_at: str
    client: ClientName
    offer: Offer | None = None
    booking_id: str | None = None
    course_id: str | None = None
    manage_token: str | None = Field(default=None, description="Only in the creating answer.")


class WaitlistQuery(Query):
    model_config = ConfigDict(extra="ignore")

    therapist_id: str = Field(min_length=1, max_length=64)


class WaitlistApi:
    @api("POST", "/api/v1/waitlist", summary="Wait for a time like this to come free.",
         tag="waitlist", body=JoinRequest, reply=Entry, status=201, errors=(400, 404))
    def join_waitlist(self, request, body: JoinRequest):
        return self.booking.join_waitlist(rpc_body(body))

    @api("GET", "/api/v1/waitlist", summary="A therapist's waitlist, first joined first.",
         tag="waitlist", query=WaitlistQuery, reply=list[Entry], access="owner",
         errors=(400, 401, 403))
    def list_waitlist(self, request, caller: Caller, query: WaitlistQuery):
        return self.booking.list_waitlist(caller.to_rpc(), query.therapist_id)

    @api("GET", "/api/v1/waitlist/{entry_id}", summary="A waitlist entry and its live offer.",
         tag="waitlist", reply=Entry, access="owner", errors=(401, 404))
    def get_waitlist_entry(self, request, caller: Caller, entry_id):
        return self.booking.get_waitlist_entry(caller.to_rpc(), entry_id)

    @api("DELETE", "/api/v1/waitlist/{entry_id}", summary="Leave the waitlist.", tag="waitlist",
         status=204, access="owner", errors=(401, 404, 409))
    def leave_waitlist(self, request, caller: Caller, entry_id):
        self.booking.leave_waitlist(caller.to_rpc(), entry_id)
        return Response(status=204)

    @api("POST", "/api/v1/waitlist/{entry_id}/accept",
         summary="Take the offered time: the booking (or course) it becomes.", tag="waitlist",
         body=OfferChoice, reply=Booking | Course, status=201, access="owner",
         errors=(400, 401, 404, 409))
    def accept_waitlist_offer(self, request, caller: Caller, entry_id, body: OfferChoice):
        return self.booking.accept_waitlist_offer(caller.to_rpc(), entry_id, body.offer_id)

    @api("POST", "/api/v1/waitlist/{entry_id}/decline",
         summary="Pass the offered time to the next person waiting.", tag="waitlist",
         body=OfferChoice, reply=Entry, access="owner", errors=(400, 401, 404, 409))
    def decline_waitlist_offer(self, request, caller: Caller, entry_id, body: OfferChoice):
        return self.booking.decline_waitlist_offer(caller.to_rpc(), entry_id, body.offer_id)


class WaitlistPageApi:
    @api("GET", "/waitlist", summary="The waitlist page (the offer letter's link).",
         tag="pages", extra={"hidden": True})
    def waitlist_page(self, request):
        return self._page("waitlist.html")
