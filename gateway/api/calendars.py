"""Calendars: a client's own .ics of a booking or a course (manage token as ``?token=``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from gateway.auth import identify
from gateway.entrypoints import api
from gateway.feeds import client_calendar

ICS = "text/calendar; charset=utf-8"


class CalendarsApi:
    @api("GET", "/api/v1/bookings/{booking_id}.ics", summary="A booking as a calendar file.",
         tag="calendars", access="owner", errors=(404,), content_type="text/calendar",
         reply=str)
    def booking_calendar(self, request, booking_id):
        caller = identify(request, self.config, self.availability)
        booking = self.booking.get_booking(booking_id, caller.to_rpc())
        return self._calendar_file(booking["therapist_id"], [booking], f"session-{booking_id}")

    @api("GET", "/api/v1/courses/{course_id}.ics", summary="Every session of a course as a "
         "calendar file.", tag="calendars", access="owner", errors=(404,),
         content_type="text/calendar", reply=str)
    def course_calendar(self, request, course_id):
        caller = identify(request, self.config, self.availability)
        course = self.booking.get_course(course_id, caller.to_rpc())
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
