"""The clinic itself: name, place, zone, course and hold length, contact (clinic_info.py)."""

from __future__ import annotations

from pydantic import Field

from gateway.entrypoints import api
from gateway.schemas import Body


class Clinic(Body):
    name: str = Field(examples=["The Clinic"])
    city: str = Field(examples=["London"])
    address: str = Field(description="Street address; empty when not configured.")
    timezone: str = Field(examples=["Europe/London"])
    phone: str = Field(description="Where a client can ask for help, e.g. to book by phone.")
    email: str
    course_sessions: int = Field(description="Sessions in a course unless the client asks for "
                                 "another number.", examples=[16])
    hold_minutes: int = Field(description="How long a hold withholds a slot (HOLD_MINUTES); "
                              "POST /api/v1/holds/{hold_id}/extend adds as much once.")


class ClinicApi:
    @api("GET", "/api/v1/clinic", summary="The clinic: name, city, zone, course and hold "
         "length, and how to ask for help.", tag="catalogue", reply=Clinic)
    def clinic_info(self, request):
        return self.clinic.public()
