"""Fetching a therapist's outside calendar: an address a person typed, fetched by the server.

So every fetch is bounded and guarded:
- only ``http`` and ``https``, no user:password in the address, no proxy from the environment;
- the host must resolve to public addresses only: loopback, private, link-local (where cloud
  metadata lives), shared, reserved and multicast addresses are refused, checked after DNS
  resolution, on every redirect (followed by hand, at most ``MAX_REDIRECTS``) and once more on
  the socket actually connected, so a name that re-resolves between check and connect cannot
  slip through; ``EXTERNAL_CALENDAR_ALLOW_PRIVATE=1`` lifts this (tests, a clinic's own server);
- a timeout on connecting and on each read, and a deadline on the whole fetch;
- at most ``MAX_BYTES`` (5 MiB) of body, counted after decompression.
Each refusal is a ``FetchRefused`` whose message is the therapist's ``last_error``; it never
names the address (a private calendar address is itself a secret).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2000
CHUNK = 64 * 1024
USER_AGENT = "clinic-availability/1 (outside calendar)"


class FetchRefused(Exception):
    """The address was refused or the fetch failed; the message says why, without the address."""


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 15.0
    max_bytes: int = MAX_BYTES
    allow_private: bool = False
    trusted: frozenset[str] = frozenset()  # private addresses allowed all the same


@dataclass(frozen=True)
class Fetched:
    """A fetch's outcome: ``body`` None means 304 Not Modified (the stored copy stands)."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


# --- the address ---------------------------------------------------------------------------


def check_address(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an address we may fetch at all; the network is not asked."""
    if not isinstance(url, str) or not url.strip() or len(url) > MAX_URL_LENGTH:
        raise FetchRefused(f"Give an http or https address of at most {MAX_URL_LENGTH} "
                           f"characters.")
    if any(ord(c) < 33 for c in url.strip()):
        raise FetchRefused("The address holds spaces or control characters.")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() == "webcal":
        raise FetchRefused("Use the address with https:// instead of webcal://.")
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchRefused("Only http and https addresses can be linked.")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("An address with a user name or password in it is not accepted.")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise FetchRefused("The address has an invalid port.") from None
    if not parts.hostname:
        raise FetchRefused("The address names no host.")
    return parts.scheme.lower(), parts.hostname, port


def refused_reason(address: str, trusted: frozenset[str] = frozenset()) -> str | None:
    """Why a fetch may not go to this IP address, or None when it is public (or trusted)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if str(ip) in trusted:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified or not ip.is_global:
        return "a private or reserved network address"
    return None


def resolve_public(host: str, port: int, trusted: frozenset[str] = frozenset()) -> list[str]:
    """The host's addresses, all of them public; else ``FetchRefused``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise FetchRefused("The address's host name could not be found.") from None
    addresses = sorted({info[4][0] for info in infos})
    for address in addresses:
        reason = refused_reason(address, trusted)
        if reason:
            raise FetchRefused(f"The address's host resolves to {reason}; such addresses are "
                               f"not fetched.")
    return addresses


def check_link(url: str, *, allow_private: bool, trusted: frozenset[str] = frozenset()) -> str:
    """The address as it will be stored, if it may be linked (the host resolved when guarded)."""
    _, host, port = check_address(url)
    if not allow_private:
        resolve_public(host, port, trusted)
    return url.strip()


# --- the socket actually connected ---------------------------------------------------------


def _guard_peer(sock: socket.socket, trusted: frozenset[str]) -> None:
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return
    reason = refused_reason(peer, trusted)
    if reason:
        sock.close()
        raise FetchRefused(f"The address connected to {reason}; such addresses are not fetched.")


def _guarded_adapter(trusted: frozenset[str]) -> HTTPAdapter:
    """An adapter whose connections check the peer they actually connected to."""

    class Guarded(HTTPConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            _guard_peer(sock, trusted)
            return sock

    class GuardedTls(HTTPSConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            _guard_peer(sock, trusted)
            return sock

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": Guarded}),
                "https": type("GuardedTlsPool", (HTTPSConnectionPool,),
                              {"ConnectionCls": GuardedTls})}

    return Adapter(max_retries=0)


def _session(limits: FetchLimits) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc from the environment
    session.max_redirects = MAX_REDIRECTS
    if not limits.allow_private:
        adapter = _guarded_adapter(limits.trusted)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session


# --- the fetch -----------------------------------------------------------------------------


def fetch(url: str, limits: FetchLimits, *, etag: str | None = None,
          last_modified: str | None = None) -> Fetched:
    """GET the calendar, conditionally when we hold a copy; redirects followed by hand."""
    deadline = time.monotonic() + limits.timeout_seconds * 2
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    with _session(limits) as session:
        for _ in range(MAX_REDIRECTS + 1):
            check_link(url, allow_private=limits.allow_private, trusted=limits.trusted)
            response = _get(session, url, headers, limits)
            with response:
                if response.is_redirect:
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchRefused("The server answered a redirect without a Location.")
                    url = urljoin(url, location)
                    continue
                if response.status_code == 304:
                    return Fetched(None, etag, last_modified)
                if response.status_code != 200:
                    raise FetchRefused(f"The calendar server answered HTTP "
                                       f"{response.status_code}.")
                body = _read_bounded(response, limits, deadline)
                return Fetched(body, _validator(response.headers.get("ETag"), 512),
                               _validator(response.headers.get("Last-Modified"), 128))
    raise FetchRefused(f"The address redirected more than {MAX_REDIRECTS} times.")


def _validator(value: str | None, limit: int) -> str | None:
    """A server's ETag or Last-Modified, kept only when it is short, printable ASCII."""
    if value is None or len(value) > limit or not all(32 <= ord(c) < 127 for c in value):
        return None
    return value


def _get(session: requests.Session, url: str, headers: dict[str, str],
         limits: FetchLimits) -> requests.Response:
    try:
        return session.get(url, headers=headers, stream=True, allow_redirects=False,
                           timeout=(limits.timeout_seconds, limits.timeout_seconds))
    except FetchRefused:
        raise
    except requests.exceptions.Timeout:
        raise FetchRefused(f"The calendar server did not answer within "
                           f"{limits.timeout_seconds:g} seconds.") from None
    except requests.exceptions.SSLError:
        raise FetchRefused("The calendar server's TLS certificate was not accepted.") from None
    except requests.exceptions.ConnectionError as error:
        refused = _refusal_inside(error)
        if refused is not None:
            raise refused from None
        raise FetchRefused("The calendar server could not be reached.") from None
    except requests.exceptions.RequestException as error:
        raise FetchRefused(f"The calendar could not be fetched ({type(error).__name__}).") \
            from None


def _refusal_inside(error: BaseException) -> FetchRefused | None:
    """urllib3 wraps what our connection raised; find our own refusal in the chain."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, FetchRefused):
            return seen
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, BaseException):
                found = _refusal_inside(arg)
                if found is not None:
                    return found
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "reason", None)
    return None


def _read_bounded(response: requests.Response, limits: FetchLimits, deadline: float) -> bytes:
    too_big = FetchRefused(f"The calendar is larger than {limits.max_bytes // (1024 * 1024)} "
                           f"MiB; such calendars are not read.")
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise too_big
    parts, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > limits.max_bytes:
                raise too_big
            if time.monotonic() > deadline:
                raise FetchRefused(f"The calendar took longer than "
                                   f"{limits.timeout_seconds * 2:g} seconds to download.")
            parts.append(chunk)
    except requests.exceptions.RequestException:
        raise FetchRefused("The calendar's download broke off or timed out.") from None
    return b"".join(parts)
