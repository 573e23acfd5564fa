"""Errors that cross service boundaries.

Each is registered with nameko's ``deserialize_to_instance`` (nameko 3 calls it ``remote_error``)
so an RPC caller gets the same class back, with its message and details, and the gateway can map
it to an HTTP status in one table.
"""

from __future__ import annotations

from typing import Any

from nameko.exceptions import deserialize_to_instance


@deserialize_to_instance
class ClinicError(Exception):
    """A refusal a client can act on. ``code`` is the API's snake_case error code."""

    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None,
                 code: str | None = None):
        # args stay JSON-safe: nameko serialises them across RPC and rebuilds the class.
        super().__init__(message, details or {}, code or type(self).code)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code

    def __str__(self) -> str:
        return self.message


@deserialize_to_instance
class InvalidRequest(ClinicError):
    code = "invalid_request"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidRequest:
        return cls(message, {"fields": [{"field": field, "message": message}]})


@deserialize_to_instance
class Unauthorized(ClinicError):
    code = "unauthorized"


@deserialize_to_instance
class TokenExpired(Unauthorized):
    """A manage token past MANAGE_TOKEN_DAYS after the last session it covers."""

    code = "token_expired"


@deserialize_to_instance
class Forbidden(ClinicError):
    code = "forbidden"


@deserialize_to_instance
class NotFound(ClinicError):
    code = "not_found"


@deserialize_to_instance
class Conflict(ClinicError):
    """The request is valid but the world disagrees (slot taken, course conflict, ...)."""

    code = "conflict"


@deserialize_to_instance
class SlotUnavailable(Conflict):
    code = "slot_unavailable"


@deserialize_to_instance
class CourseConflict(Conflict):
    code = "course_conflict"


@deserialize_to_instance
class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


@deserialize_to_instance
class HoldExpired(Conflict):
    code = "hold_expired"


@deserialize_to_instance
class InvalidState(Conflict):
    code = "invalid_state"


@deserialize_to_instance
class RateLimited(ClinicError):
    """Too many live holds, bookings or courses for one client address or email (429);
    ``details.retry_after_seconds`` says when to try again."""

    code = "rate_limited"


@deserialize_to_instance
class ServiceUnavailable(ClinicError):
    code = "service_unavailable"


def _expecting_clinic_errors():
    from clinic.broker import ReliableRpc

    return ReliableRpc.decorator(expected_exceptions=(ClinicError,))


# ``@rpc`` for our services: a ClinicError is a refusal, logged as a warning without a traceback;
# a reply the broker cannot take is dropped, not fatal (``clinic.broker.ReliableRpc``).
rpc = _expecting_clinic_errors()


class StartupRefused(Exception):
    """A process must not start as configured; the message is the one line that says why
    (``python -m clinic.cli`` prints it alone, without a traceback)."""
