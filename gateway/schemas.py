"""Request and reply models of the public API; they validate and they document."""

from __future__ import annotations

import re
from datetime import date
from enum import Enum
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from clinic.wire import FIRST_YEAR, ISO_DATE, LAST_YEAR  # the services' own (clinic/wire.py)


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
    if not isinstance(value, str) or not ISO_DATE.match(value):
        raise ValueError("a date as YYYY-MM-DD is required")
    return value


# No clinic books a thousand years ahead, and no day lies after 9999-12-31 (or before
# 0001-01-01): every date and instant the API takes lies between FIRST_YEAR and LAST_YEAR (the
# services' own bounds, clinic/wire.py), so no range arithmetic behind it overflows.
def _not_too_far(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"give a date between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


# Characters that end a line or control a terminal: in a name they break email headers and
# calendar lines (a name is a header's display name and a SUMMARY), so none is accepted.
_LINE_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
ONE_LINE_PATTERN = rf"^{_LINE_CHAR}*[^\s\x00-\x1f\x7f-\x9f\u2028\u2029]{_LINE_CHAR}*$"
_ONE_LINE = re.compile(ONE_LINE_PATTERN)


def _one_line(value: str) -> str:
    if not _ONE_LINE.match(value):
        raise ValueError("a name needs a visible character, and no control characters or "
                         "line breaks")
    return value


# One address, as a client types it: no list (`,` `;`), no display name (`<` `>` `"`), no
# spaces or controls; a dotted domain.
_ADDRESS_CHAR = r"[^@\s,;<>()\[\]\\:\"\x00-\x1f\x7f]"
_LABEL = r"[^@\s,;<>()\[\]\\:\"\x00-\x1f\x7f.]+"
EMAIL_PATTERN = rf"^{_ADDRESS_CHAR}+@{_LABEL}(\.{_LABEL})+$"


# What the services accept, said in the schema itself: text with something visible and no NUL
# (PostgreSQL refuses it), whole numbers that are not booleans, instants with an offset as text
# (a naive timestamp is a 400: docs/http-contract.md, "Conventions"), dates as YYYY-MM-DD, IANA
# zones.
Text = Annotated[str, Field(pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")]
Whole = Annotated[int, BeforeValidator(_not_bool)]
Instant = Annotated[AwareDatetime, BeforeValidator(_text_instant), AfterValidator(_not_too_far)]
Day = Annotated[date, BeforeValidator(_text_day), AfterValidator(_not_too_far),
                Field(json_schema_extra={"format": "date"})]
PersonName = Annotated[str, Field(min_length=1, max_length=200,
                                  json_schema_extra={"pattern": ONE_LINE_PATTERN}),
                       AfterValidator(_one_line)]
EmailAddress = Annotated[str, Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)]
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
