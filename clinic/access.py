"""Who is calling, and the secrets that say so.

Tokens are at least 128 random bits (we use 192), carry a prefix naming their kind so the gateway
knows where to check them, and are stored only as SHA-256 hashes: a high-entropy token needs no
slow hash, and a database leak reveals no usable token. Services authorise a ``Caller`` against
their own data (a booking knows its therapist and its manage-token hash).
"""

from __future__ import annotations

import hashlib
import hmac
import re
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


# --- the admin token ---------------------------------------------------------------------------

MIN_ADMIN_TOKEN = 32
# Values that appear in examples, tutorials and our own old compose file: never a secret.
PLACEHOLDERS = frozenset({
    "change-me", "changeme", "change_me", "changeit", "secret", "password", "admin", "token",
    "admin-token", "test", "default", "example", "xxx", "todo", "replace-me", "set-me",
})
_PLACEHOLDER_WORDS = re.compile(r"change[-_ ]?me|replace[-_ ]?me|example|placeholder|your[-_ ]",
                                re.IGNORECASE)


def admin_token_problem(token: str) -> str | None:
    """Why ``token`` must not be the admin's, or None when it may. No token means no admin."""
    if not token:
        return None
    if token.lower() in PLACEHOLDERS or _PLACEHOLDER_WORDS.search(token):
        return "CLINIC_ADMIN_TOKEN is a well-known placeholder; set a random secret " \
               "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
    if len(token) < MIN_ADMIN_TOKEN:
        return (f"CLINIC_ADMIN_TOKEN has {len(token)} characters; it needs at least "
                f"{MIN_ADMIN_TOKEN} (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`).")
    if len(set(token)) < 8:
        return "CLINIC_ADMIN_TOKEN repeats a few characters; set a random secret."
    return None
