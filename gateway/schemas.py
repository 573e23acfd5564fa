"""Request and reply models of the public API; they validate and they document."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# An instant must carry its offset: a naive timestamp is refused (400), as API.md says.
Instant = AwareDatetime


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
