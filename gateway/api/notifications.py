"""Notifications (docs/http-contract.md): the delivery log of a booking or a course."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from clinic.access import Caller
from gateway.entrypoints import api
from gateway.schemas import Instant, Query, Text


class NotificationQuery(Query):
    # Text: no NUL, which PostgreSQL refuses (a 500 found by fuzzing on PostgreSQL)
    booking_id: Text | None = Field(default=None, max_length=64)
    course_id: Text | None = Field(default=None, max_length=64)


class Notification(BaseModel):
    id: str
    kind: Literal["confirmation", "cancellation", "reschedule", "reminder", "course_ending",
                  "checkin_invite", "risk_alert", "letter_shared", "outside_conflict"]
    channel: Literal["email", "sms"]
    recipient: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    created_at: Instant
    sent_at: Instant | None = None
    booking_id: str | None = None
    course_id: str | None = None
    last_error: str | None = None


class NotificationsApi:
    @api("GET", "/api/v1/notifications",
         summary="Messages sent (or due) for a booking or course, with their delivery state.",
         tag="notifications", query=NotificationQuery, reply=list[Notification],
         access="therapist", errors=(401, 403, 404, 503))
    def list_notifications(self, request, caller: Caller, query: NotificationQuery):
        return self.notifications.list_notifications(
            caller.to_rpc(), booking_id=query.booking_id, course_id=query.course_id)
