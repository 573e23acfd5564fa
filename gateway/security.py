"""What the gateway does to every request and answer so that no caller can abuse it or read
more than it should: which address a request comes from, which requests are limited, which
secrets may stand in a query string, what the access log may say, and the security headers.

Pure functions and small dataclasses; ``gateway.entrypoints`` applies them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clinic.access import MANAGE_PREFIX, admin_token_problem  # noqa: F401 (the gateway's too)

# --- settings ----------------------------------------------------------------------------------


def _number(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    return default if value is None or str(value).strip() == "" else float(value)


@dataclass(frozen=True)
class Protection:
    """The gateway's abuse limits, read from its config (itself filled from the environment)."""

    trusted_proxies: int = 0
    posts_per_minute: int = 120
    searches_per_minute: int = 60  # expensive GETs: slot search, course options, /ready, pings
    auth_failures_per_minute: int = 10
    idle_timeout_seconds: float = 30.0  # a connection that sends no complete request head
    body_timeout_seconds: float = 30.0  # a request body that does not arrive in time
    redis_url: str = ""
    redis_prefix: str = "clinic"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Protection:
        return cls(
            trusted_proxies=max(0, int(_number(config, "TRUSTED_PROXIES", 0))),
            posts_per_minute=int(_number(config, "RATE_LIMIT_PER_MINUTE", 120)),
            searches_per_minute=int(_number(config, "SEARCH_RATE_LIMIT_PER_MINUTE", 60)),
            auth_failures_per_minute=int(_number(config, "AUTH_FAILURES_PER_MINUTE", 10)),
            idle_timeout_seconds=_number(config, "HTTP_IDLE_TIMEOUT_SECONDS", 30),
            body_timeout_seconds=_number(config, "HTTP_BODY_TIMEOUT_SECONDS", 30),
            redis_url=str(config.get("REDIS_URL") or "").strip(),
            redis_prefix=str(config.get("REDIS_PREFIX") or "clinic").strip(),
        )


# --- who is asking -----------------------------------------------------------------------------


def client_address(remote_addr: str | None, forwarded_for: str | None,
                   trusted_proxies: int) -> str:
    """The address to limit: the peer itself, or, behind ``trusted_proxies`` proxies, the
    address the outermost trusted proxy saw. Only the hops we trust count: a client can write
    anything into ``X-Forwarded-For``, but each of our proxies appends the address it saw."""
    peer = remote_addr or "unknown"
    if trusted_proxies <= 0:
        return peer
    hops = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()]
    chain = [*hops, peer]
    return chain[max(0, len(chain) - 1 - trusted_proxies)]


# Costly to answer and public: each is limited per address like POSTs are.
_EXPENSIVE = re.compile(r"^(/api/v1/therapists/[^/]+/(slots|course-options)|/ready|/internal/.*)$")


def expensive(path: str) -> bool:
    """Whether a GET of ``path`` (a request path or a route's ``{template}``) is limited."""
    return bool(_EXPENSIVE.match(path))


# --- secrets in URLs ---------------------------------------------------------------------------

# docs/http-contract.md: a manage token is accepted as ``?token=`` on GET of a booking, a
# course, their .ics and a course's progress — only there, and only a manage token.
_QUERY_TOKEN_PATHS = re.compile(r"^/api/v1/(bookings/[^/]+|courses/[^/]+(/progress)?)$")


def query_token_allowed(method: str, path: str, token: str) -> bool:
    return (method == "GET" and token.startswith(MANAGE_PREFIX)
            and bool(_QUERY_TOKEN_PATHS.match(path)))


_SECRET_IN_PATH = re.compile(r"(/ical/)[^/\s?\".]+")
_TOKEN = re.compile(r"\b(mng|thr|cal)_[A-Za-z0-9_\-]{8,}")
_QUERY = re.compile(r"\?[^\s\"]*")


def loggable(text: str) -> str:
    """A log line with no secret: no query string, no feed secret, no token of ours."""
    text = _QUERY.sub("", text)
    text = _SECRET_IN_PATH.sub(r"\1…", text)
    return _TOKEN.sub(r"\1_…", text)


# --- headers -----------------------------------------------------------------------------------

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def style_csp(style: str) -> str:
    """A CSP for a page whose only resource is one inline ``<style>`` (the /docs page)."""
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'sha256-{digest}'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'")


def carries_personal_data(method: str, path: str, authenticated: bool) -> bool:
    """Answers a shared cache must not keep: anything answered to credentials (bookings,
    courses, progress, a therapist's lists), every write (it echoes the client and a manage
    token) and a therapist's feed."""
    if path.startswith("/ical/"):
        return True
    return path.startswith("/api/v1/") and (authenticated or method not in ("GET", "HEAD"))


def security_headers(headers: Mapping[str, str], *, personal: bool,
                     default_csp: str = API_CSP) -> dict[str, str]:
    """The headers to add to an answer that has ``headers`` already."""
    added = {"X-Content-Type-Options": "nosniff"}
    if "Content-Security-Policy" not in headers:
        added["Content-Security-Policy"] = default_csp
    if personal and "no-store" not in headers.get("Cache-Control", ""):
        added["Cache-Control"] = "no-store"
    return added
