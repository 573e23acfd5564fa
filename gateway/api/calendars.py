"""Calendars: the therapist's secret iCal feed, and a client's own .ics of a booking or course.

The feed is what a calendar app polls every 15 minutes, so its hot path makes no RPC: the
secret's owner and the serialized feed are cached in this process (``gateway.feeds``) until an
event changes them. Booking events reach every gateway process (BROADCAST handlers) and drop the
feeds they name; a rotation is broadcast to the other gateways the same way; each gateway's tick
shows the broadcasts still reach it (``FeedCache.trusted``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import eventlet
from eventlet import tpool
from nameko.events import BROADCAST
from nameko.timer import timer
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from clinic.access import Caller, token_hash
from clinic.broker import BestEffortDispatcher
from clinic.broker import reconnecting_event_handler as event_handler
from clinic.errors import NotFound
from clinic.rpc import BROKER_ERRORS
from gateway.dependencies import Feeds
from gateway.entrypoints import api
from gateway.feeds import (
    TICK_SECONDS,
    accepts_gzip,
    build_feed,
    client_calendar,
    compress,
    not_modified,
    therapist_named,
    validator_headers,
)

ICS = "text/calendar; charset=utf-8"

# Booking events that change what a therapist's feed shows (holds never appear in it).
# booking's ids-only event after every change to a feed (the booking events themselves carry
# the client's contact details, which the gateway has no need to receive)
FEED_CHANGES = ("calendar_changed",)


class FeedUrl(BaseModel):
    url: str = Field(description="Secret: whoever has it can read the feed. Rotate if it leaks.",
                     examples=["https://clinic.example/ical/cal_Xk3….ics"])


def _feed_changed(handler):
    """One BROADCAST entrypoint per booking event that changes a feed. A gateway that was not
    listening has nothing cached from before, so nothing needs keeping for it (no durable
    queue)."""
    for event_type in FEED_CHANGES:
        handler = event_handler("booking", event_type, handler_type=BROADCAST,
                                reliable_delivery=False)(handler)
    return handler


class CalendarsApi:
    feeds = Feeds()
    dispatch = BestEffortDispatcher()

    # --- the therapist's feed ---

    @api("GET", "/api/v1/therapists/{therapist_id}/calendar-feed",
         summary="The therapist's secret feed URL, for a calendar app to subscribe to.",
         tag="calendars", access="therapist", errors=(404,), reply=FeedUrl)
    def calendar_feed(self, request, caller: Caller, therapist_id):
        secret = self.availability.calendar_feed(caller.to_rpc(), therapist_id)
        return {"url": self._feed_url(secret)}

    @api("POST", "/api/v1/therapists/{therapist_id}/calendar-feed/rotate",
         summary="A new secret feed URL; the old one answers 404 from now on.",
         tag="calendars", access="therapist", errors=(404,), reply=FeedUrl)
    def rotate_calendar_feed(self, request, caller: Caller, therapist_id):
        secret = self.availability.rotate_calendar_feed(caller.to_rpc(), therapist_id)
        self.feeds.forget_owner(therapist_id)
        self.dispatch("calendar_feed_rotated", {"therapist_id": therapist_id})
        return {"url": self._feed_url(secret)}

    @api("GET", "/ical/{secret}.ics", summary="A therapist's sessions as an iCalendar feed "
         "(RFC 5545): session type, course position, modality, room and client initials only.",
         tag="calendars", errors=(404,), content_type="text/calendar", reply=str,
         conditional=True)
    def therapist_feed(self, request, secret):
        therapist = self._feed_owner(secret)
        feed = self.feeds.get(therapist["id"])
        if feed is None:
            with self.feeds.building(therapist["id"]):
                feed = self.feeds.get(therapist["id"]) or self._build_feed(therapist)
        gzipped = bool(feed.gzipped) and accepts_gzip(request.headers)
        headers = validator_headers(feed, gzipped)
        if not_modified(request.headers, feed):
            return Response(status=304, headers=headers)
        if gzipped:
            return Response(feed.gzipped, content_type=ICS,
                            headers={**headers, "Content-Encoding": "gzip"})
        return Response(feed.body, content_type=ICS, headers=headers)

    @_feed_changed
    def drop_changed_feed(self, payload: dict[str, Any]) -> None:
        therapist_id = therapist_named(payload)
        if therapist_id:
            self.feeds.invalidate(therapist_id)

    @timer(interval=TICK_SECONDS, eager=True)
    def tick_feed_caches(self) -> None:
        """Broadcast a tick; hearing it back shows this gateway still hears broadcasts."""
        try:
            with eventlet.Timeout(TICK_SECONDS):
                self.dispatch("feed_cache_tick", {})
        except (eventlet.Timeout, *BROKER_ERRORS):
            pass  # unheard ticks make the caches untrusted: that is the point

    @event_handler("gateway", "feed_cache_tick", handler_type=BROADCAST, reliable_delivery=False)
    def feed_cache_ticked(self, payload: dict[str, Any]) -> None:
        self.feeds.heard_from_broker()

    @event_handler("gateway", "calendar_feed_rotated", handler_type=BROADCAST,
                   reliable_delivery=False)
    def forget_rotated_feed(self, payload: dict[str, Any]) -> None:
        self.feeds.forget_owner(payload["therapist_id"])

    def _feed_url(self, secret: str) -> str:
        return f"{self.config.public_base_url}/ical/{secret}.ics"

    def _feed_owner(self, secret: str) -> dict[str, Any]:
        digest = token_hash(secret)
        therapist = self.feeds.owner(digest)
        if therapist is None:
            therapist = self.availability.feed_owner(secret)
            if therapist is None:
                raise NotFound("No such calendar feed.")
            self.feeds.remember_owner(digest, therapist)
        return therapist

    def _build_feed(self, therapist: dict[str, Any]):
        generation = self.feeds.generation(therapist["id"])
        pool = eventlet.GreenPool(3)
        sessions = pool.spawn(self.booking.feed_sessions, therapist["id"])
        types = pool.spawn(self.availability.list_session_types)
        rooms = pool.spawn(self.availability.list_rooms)
        # ~0.2 ms an event: built in a thread so this gateway keeps serving while it runs.
        body = tpool.execute(build_feed, therapist, sessions.wait(),
                             {t["id"]: t["name"] for t in types.wait()},
                             {r["id"]: r["name"] for r in rooms.wait()})
        return self.feeds.put(therapist["id"], body, datetime.now(UTC), generation,
                              gzipped=tpool.execute(compress, body))

    # --- a client's own calendar files ---

    @api("GET", "/api/v1/bookings/{booking_id}.ics", summary="A booking as a calendar file.",
         tag="calendars", access="owner", errors=(404,), content_type="text/calendar",
         reply=str)
    def booking_calendar(self, request, caller: Caller, booking_id):
        booking = self.booking.get_booking(caller.to_rpc(), booking_id)
        return self._calendar_file(booking["therapist_id"], [booking], f"session-{booking_id}")

    @api("GET", "/api/v1/courses/{course_id}.ics", summary="Every session of a course as a "
         "calendar file.", tag="calendars", access="owner", errors=(404,),
         content_type="text/calendar", reply=str)
    def course_calendar(self, request, caller: Caller, course_id):
        course = self.booking.get_course(caller.to_rpc(), course_id)
        total = len(course["sessions"])
        sessions = [{**session, "id": session["booking_id"], "session_number": session["number"],
                     "course_sessions": total, "session_type": course["session_type"],
                     "modality": course["modality"]} for session in course["sessions"]]
        return self._calendar_file(course["therapist_id"], sessions, f"course-{course_id}",
                                   client=course.get("client"))

    def _calendar_file(self, therapist_id: str, sessions: list[dict[str, Any]], name: str,
                       client: dict[str, Any] | None = None) -> Response:
        therapist = self.availability.get_therapist(therapist_id)
        client = client or sessions[0].get("client") or {}
        body = client_calendar(
            sessions, therapist_name=therapist["name"],
            timezone=client.get("timezone") or self.config.clinic_timezone,
            session_type_names={t["id"]: t["name"] for t in self.availability.list_session_types()},
            room_names={r["id"]: r["name"] for r in self.availability.list_rooms()},
            now=datetime.now(UTC))
        return Response(body, content_type=ICS, headers={
            "Content-Disposition": f'attachment; filename="{name}.ics"',
            "Cache-Control": "private, no-store"})
