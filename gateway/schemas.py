"""Request and reply models of the public API; they validate and they document."""

from __future__ import annotations

import re
from datetime import date
from enum import Enum
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _not_bool(value: Any) -> Any:
    # JSON true/false is not a number of minutes; pydantic's lax mode would take it as 1/0.
    if isinstance(value, bool):
        raise ValueError("a whole number is required, not true/false")
    return value


def _text_instant(value: Any) -> Any:
    # An instant is RFC 3339 text; a bare number would be read as seconds since 1970.
    if not isinstance(value, str):
        raise ValueError("an RFC 3339 instant with an offset is required")
    return value


def _text_day(value: Any) -> Any:
    # A date is YYYY-MM-DD; pydantic's lax mode would read "0" as 1970-01-01.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DAY.match(value):
        raise ValueError("a date as YYYY-MM-DD is required")
    return value


# What the services accept, said in the schema itself: text with something visible and no NUL
# (PostgreSQL refuses it), whole numbers that are not booleans, instants with an offset as text
# (a naive timestamp is a 400, as API.md says), dates as YYYY-MM-DD, IANA zones.
Text = Annotated[str, Field(pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")]
Whole = Annotated[int, BeforeValidator(_not_bool)]
Instant = Annotated[AwareDatetime, BeforeValidator(_text_instant)]
Day = Annotated[date, BeforeValidator(_text_day), Field(json_schema_extra={"format": "date"})]
TimeZone = Enum("TimeZone", {name: name for name in sorted(available_timezones())}, type=str)
TimeZone.__doc__ = "An IANA time zone name."


class Body(BaseModel):
    """A JSON request body: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query parameters: unknown ones are ignored (caches and tracking add their own)."""

    model_config = ConfigDict(extra="ignore")


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(examples=["slot_unavailable"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    services: dict[str, bool]
    dead_letters: int | None = Field(None, description="Events parked after their handler "
                                     "failed repeatedly (`python -m clinic.deadletters`).")
    dead_letter_queues: dict[str, int] | None = Field(None, description="The non-empty "
                                                      "dead-letter queues, with their counts.")
