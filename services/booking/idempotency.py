"""The Idempotency-Key protocol, behind one helper: ``Keys.once`` runs a command's transaction
so that a repeated request gets the first answer and a different body under the same key a 409.

The key is claimed by a unique row in the command's own transaction (so a booking and its key
commit together) and the answer stored beside it. A repeat is answered before any work
(``Keys.replay``, the fast path, also before availability is asked); a repeat that raced the
first request is noticed in the transaction (the key row is there) or at the commit (the
unique constraint) and replayed. Answers are stored without manage tokens (tokens are only ever
stored hashed), so a replayed creation carries a freshly issued one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic.db import UnitOfWork
from clinic.errors import IdempotencyConflict, SlotUnavailable
from services.booking import policy, repository
from services.booking.claims import TAKEN, is_exclusion_violation

# Scopes whose answer carries a new manage token when replayed, and the kind of that token.
CREATING_SCOPES = {"holds": "booking", "bookings": "booking", "courses": "course"}
REUSED = "This Idempotency-Key was used with a different request."
FOREIGN = "This Idempotency-Key was used by another caller; use a key of your own."

Answer = dict[str, Any]


class _Replay(Exception):
    """Internal: the key was committed by a concurrent identical request."""


@dataclass(frozen=True)
class Request:
    """A command's request as its Idempotency-Key stands for it (``key`` None: no key)."""

    scope: str
    key: str | None
    body: Mapping[str, Any]
    owner: str | None = None  # guards.key_owner of the caller; a key answers only its owner


def is_key_race(error: IntegrityError) -> bool:
    """Another transaction claimed the same key first (PostgreSQL blocks, then fails us with a
    unique violation once it commits)."""
    return "uq_idempotency_keys_key_scope" in str(error.orig)


def slot_taken() -> Exception:
    return SlotUnavailable(TAKEN)


def _check_same(row: Mapping[str, Any], request: Request) -> None:
    """A stored key answers only the caller that used it first, for the same request: anyone
    else who learnt or guessed the key gets neither the answer nor a manage token."""
    if row["owner"] != request.owner:
        raise IdempotencyConflict(FOREIGN)
    if row["request_hash"] != policy.request_hash(request.body):
        raise IdempotencyConflict(REUSED)


@dataclass
class Keys:
    uow: UnitOfWork
    now: Callable[[], datetime]
    issue_token: Callable[[str, str], str]  # (kind, id) -> a new manage token

    def replay(self, request: Request) -> Answer | None:
        """The stored answer for a repeated key, or None if the key is new (or not given)."""
        if not request.key:
            return None
        with self.uow.reading() as session:
            row = repository.stored_key(session, request.scope, request.key,
                                        newer_than=self.now() - policy.IDEMPOTENCY_TTL)
        if row is None:
            return None
        _check_same(row, request)
        kind = CREATING_SCOPES.get(request.scope)
        if kind is None:
            return row["response"]
        return {**row["response"], "manage_token": self.issue_token(kind, row["response"]["id"])}

    def claim(self, session: Session, request: Request) -> None:
        """Claim the key in the command's transaction; a key already there is a conflict, or
        the same request committed since the fast path looked: replayed by ``once``. One
        INSERT in the common case (a new key); a key past its time to live is free again."""
        if not request.key:
            return
        now = self.now()
        request_hash = policy.request_hash(request.body)
        if repository.insert_key(session, request.scope, request.key, request_hash, now,
                                 request.owner):
            return
        repository.delete_keys(session, now - policy.IDEMPOTENCY_TTL, request.scope,
                               request.key)
        existing = repository.stored_key(session, request.scope, request.key)
        if existing is None:  # it had expired: the key is this request's now
            repository.insert_key(session, request.scope, request.key, request_hash, now,
                                  request.owner)
            return
        _check_same(existing, request)
        raise _Replay()

    def once(self, request: Request, command: Callable[[Session], Answer], *,
             manage_token: str | None = None,
             taken: Callable[[], Exception] = slot_taken) -> Answer:
        """Run ``command`` in one write transaction and store its answer under the key.

        ``command`` calls ``claim`` where the key is to be claimed (after authorising, so a
        repeat by a stranger is refused, not answered). A PostgreSQL exclusion violation (a
        race for the same time) becomes ``taken()``; ``manage_token`` joins a fresh answer.
        """
        try:
            with self.uow.transaction() as session:
                answer = command(session)
                if request.key:
                    repository.store_response(session, request.scope, request.key, answer)
        except _Replay:
            return self.replay(request)
        except IntegrityError as error:
            if is_exclusion_violation(error):
                raise taken() from None
            if request.key and is_key_race(error):
                return self.replay(request)
            raise
        return answer if manage_token is None else {**answer, "manage_token": manage_token}

    def clean(self) -> int:
        """Forget keys past their time to live (the hourly timer)."""
        with self.uow.transaction() as session:
            return repository.delete_keys(session, self.now() - policy.IDEMPOTENCY_TTL)
