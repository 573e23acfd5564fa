"""Who is calling, and the secrets that say so.

Tokens are at least 128 random bits (we use 192), carry a prefix naming their kind so the gateway
knows where to check them, and are stored only as SHA-256 hashes: a high-entropy token needs no
slow hash, and a database leak reveals no usable token. Services authorise a ``Caller`` against
their own data (a booking knows its therapist and its manage-token hash).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

from clinic.errors import Forbidden, Unauthorized

THERAPIST_PREFIX = "thr_"
MANAGE_PREFIX = "mng_"
FEED_PREFIX = "cal_"

Kind = Literal["public", "admin", "therapist", "manage"]


def new_token(prefix: str) -> tuple[str, str]:
    """A fresh token and the hash to store for it."""
    token = prefix + secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so response time says nothing about how much matched."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Caller:
    kind: Kind = "public"
    therapist_id: str | None = None
    token: str | None = None  # a manage token, checked by the service that issued it

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def acts_for_therapist(self, therapist_id: str) -> bool:
        return self.is_admin or (self.kind == "therapist" and self.therapist_id == therapist_id)

    def holds_token(self, stored_hashes: list[str | None]) -> bool:
        if self.kind != "manage" or not self.token:
            return False
        given = token_hash(self.token)
        return any(stored and same_secret(given, stored) for stored in stored_hashes)

    def require_admin(self) -> None:
        if self.kind == "public":
            raise Unauthorized("This needs the admin's token.")
        if not self.is_admin:
            raise Forbidden("Only the clinic's admin may do this.")

    def require_therapist(self, therapist_id: str) -> None:
        """Admin, or that therapist."""
        if self.kind == "public":
            raise Unauthorized("This needs a therapist's or the admin's token.")
        if not self.acts_for_therapist(therapist_id):
            raise Forbidden("Only this therapist or the admin may do this.")

    def to_rpc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_rpc(cls, data: dict[str, Any] | None) -> Caller:
        return cls(**(data or {}))
