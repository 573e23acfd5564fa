"""Turning a request's credentials into a ``Caller``, and checking it against a route's
declared ``access``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Request

from clinic.access import MANAGE_PREFIX, THERAPIST_PREFIX, Caller, same_secret
from clinic.errors import Unauthorized
from clinic.settings import Settings
from gateway.security import query_token_allowed


def presented_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token>'.")
        return token.strip()
    query_token = request.args.get("token") if request.method == "GET" else None
    if not query_token:
        return None
    # Manage links carry a manage token in the query, on the few routes docs/http-contract.md
    # names; any other secret there would end up in browser histories and proxies' logs.
    if not query_token_allowed(request.method, request.path, query_token):
        raise Unauthorized("Send this token as 'Authorization: Bearer <token>'; only a manage "
                           "token may stand in ?token=, and only for a booking or a course.")
    return query_token


def identify(request: Request, settings: Settings, availability) -> Caller:
    """Who is calling. A token that is presented but wrong is a 401, never silently public."""
    token = presented_token(request)
    if token is None:
        return Caller()
    if settings.admin_token and same_secret(token, settings.admin_token):
        return Caller(kind="admin")
    if token.startswith(THERAPIST_PREFIX):
        therapist_id = availability.authenticate_therapist(token)
        if therapist_id:
            return Caller(kind="therapist", therapist_id=therapist_id)
    elif token.startswith(MANAGE_PREFIX):
        return Caller(kind="manage", token=token)
    raise Unauthorized("The token is not valid.")


def authorise(access: str, caller: Caller, path_values: Mapping[str, Any]) -> None:
    """What a route's ``access`` declares (public | admin | therapist | owner): the admin only;
    that therapist (or the admin) when the path names one; otherwise any valid token, the
    service deciding whose booking or course it is."""
    if access == "admin":
        caller.require_admin()
    elif access == "therapist" and "therapist_id" in path_values:
        caller.require_therapist(path_values["therapist_id"])
    elif access != "public" and caller.kind == "public":
        raise Unauthorized("This needs a token: the manage token, a therapist's or the admin's.")
