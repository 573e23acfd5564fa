"""The therapist's iCal feed: what it shows, and how it is cached and served conditionally.

Privacy: a feed URL ends up in calendar apps and their sync servers, so it shows only the
session type, the course position ("5/16"), modality and room, and the client's initials. The
booking service's feed RPC never returns contact details or notes, so they cannot leak here.

Calendar apps poll the feed every 15 minutes; building it with icalendar costs ~0.2 ms an event,
so the serialized feed (plain and gzipped) is cached per therapist until a booking event names
that therapist, and a poll is answered from memory: a 304 from the cached validators, a 200 from
the cached bytes. Events reach a gateway by broadcast, which a gateway cut off from RabbitMQ
misses; so the caches are trusted only while this gateway is demonstrably hearing broadcasts
(its own tick came back within ``TRUST_SECONDS``), and everything is dropped whenever its
consumer reconnects. That bounds how stale an answer can be to ``TRUST_SECONDS``.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from icalendar import vDuration

from clinic import ical

REFRESH_INTERVAL = timedelta(minutes=15)
# The feed's window (90 days back) moves on daily; events say everything else that changes it.
CACHE_TTL_SECONDS = 24 * 3600.0
# Each gateway broadcasts a tick this often; caches are trusted while a tick came back this
# recently, so a gateway that stopped hearing broadcasts stops answering from memory.
TICK_SECONDS = 10.0
TRUST_SECONDS = 25.0
MODALITY_LABEL = {"in_person": "In person", "video": "Video call", "phone": "Phone call"}


def session_summary(session: Mapping[str, Any], session_type_names: Mapping[str, str]) -> str:
    name = session_type_names.get(session["session_type"], session["session_type"])
    if session.get("course_id") and session.get("session_number"):
        name += f" {session['session_number']}/{session['course_sessions']}"
    return f"{name} · {session['client_initials']}"


def session_location(session: Mapping[str, Any], room_names: Mapping[str, str]) -> str:
    if session["modality"] == "in_person" and session.get("room"):
        return room_names.get(session["room"], session["room"])
    return MODALITY_LABEL[session["modality"]]


def build_feed(therapist: Mapping[str, Any], sessions: list[Mapping[str, Any]],
               session_type_names: Mapping[str, str], room_names: Mapping[str, str]) -> bytes:
    """The VCALENDAR of a therapist's sessions; the same input always gives the same bytes."""
    events = [
        ical.booking_event(
            session,
            summary=session_summary(session, session_type_names),
            timezone=therapist["timezone"],
            dtstamp=ical.instant(session["updated_at"]).astimezone(UTC),
            description=MODALITY_LABEL[session["modality"]],
            location=session_location(session, room_names),
        )
        for session in sessions
    ]
    calendar = ical.calendar(events, method="PUBLISH", name=f"{therapist['name']}: sessions")
    calendar.add("x-wr-timezone", therapist["timezone"])
    calendar.add("refresh-interval", vDuration(REFRESH_INTERVAL),
                 parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))
    return calendar.to_ical()


OWNER_TTL_SECONDS = 24 * 3600.0  # rotation broadcasts forget an owner; this is a backstop


@dataclass(frozen=True)
class CachedFeed:
    body: bytes
    etag: str
    last_modified: datetime
    stored_at: float
    gzipped: bytes = b""

    @property
    def gzip_etag(self) -> str:
        """The gzipped representation's own strong validator (RFC 9110 8.8.3)."""
        return self.etag[:-1] + '-gz"'


class FeedCache:
    """Serialized feeds per therapist, and which therapist each feed secret opens.

    A feed is dropped when a booking event names its therapist (and after ``ttl_seconds``, as
    its window moves on). A secret's owner is forgotten when the feed is rotated (through this
    gateway at once, through another one by its broadcast). Broadcasts reach only a connected
    gateway, so nothing cached is used unless a tick was heard within ``trust_seconds``
    (``heard_from_broker``), and everything is dropped when the consumer reconnects
    (``reconnected``): a missed event or rotation is served at most ``trust_seconds`` late.
    """

    def __init__(self, ttl_seconds: float = CACHE_TTL_SECONDS,
                 owner_ttl_seconds: float = OWNER_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 trust_seconds: float = TRUST_SECONDS):
        self.ttl = ttl_seconds
        self.owner_ttl = owner_ttl_seconds
        self.trust = trust_seconds
        self.clock = clock
        self._heard: float | None = None  # when a broadcast last reached this process
        self._epoch = 0  # moves on each reconnection: builds begun before it are not kept
        self._feeds: dict[str, CachedFeed] = {}
        self._last_seen: dict[str, tuple[str, datetime]] = {}  # etag, last_modified
        self._generations: dict[str, int] = {}
        self._owners: dict[str, tuple[dict[str, Any], float]] = {}  # secret hash -> therapist
        self._builders: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # --- feeds ---

    def get(self, therapist_id: str) -> CachedFeed | None:
        feed = self._feeds.get(therapist_id)
        if feed is None or not self.trusted() or self.clock() - feed.stored_at > self.ttl:
            return None
        return feed

    def generation(self, therapist_id: str) -> tuple[int, int]:
        """Read before building; ``put`` drops a build that an invalidation overtook."""
        return self._epoch, self._generations.get(therapist_id, 0)

    # --- staying in touch with the broadcasts ---

    def heard_from_broker(self) -> None:
        self._heard = self.clock()

    def trusted(self) -> bool:
        """Whether broadcasts demonstrably reach this process, so the caches are current."""
        return self._heard is not None and self.clock() - self._heard <= self.trust

    def reconnected(self) -> None:
        """The consumer (re)connected: whatever was broadcast meanwhile is lost, so forget all."""
        with self._lock:
            self._epoch += 1
            self._feeds.clear()
            self._owners.clear()

    def put(self, therapist_id: str, body: bytes, now: datetime,
            generation: tuple[int, int] | None = None, gzipped: bytes = b"") -> CachedFeed:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        with self._lock:
            seen = self._last_seen.get(therapist_id)
            # An unchanged feed keeps its Last-Modified, so If-Modified-Since keeps working.
            modified = seen[1] if seen and seen[0] == etag else now.replace(microsecond=0)
            feed = CachedFeed(body, etag, modified, self.clock(), gzipped)
            self._last_seen[therapist_id] = (etag, modified)
            if generation is None or generation == self.generation(therapist_id):
                self._feeds[therapist_id] = feed
        return feed

    def building(self, therapist_id: str) -> threading.Lock:
        """One build per therapist at a time: a burst of polls after a change builds once."""
        with self._lock:
            return self._builders.setdefault(therapist_id, threading.Lock())

    def invalidate(self, therapist_id: str) -> None:
        with self._lock:
            self._generations[therapist_id] = self._generations.get(therapist_id, 0) + 1
            self._feeds.pop(therapist_id, None)

    def clear(self) -> None:
        with self._lock:
            self._feeds.clear()
            self._owners.clear()

    # --- secrets ---

    def owner(self, secret_hash: str) -> dict[str, Any] | None:
        found = self._owners.get(secret_hash)
        if found is None or not self.trusted() or self.clock() - found[1] > self.owner_ttl:
            return None
        return found[0]

    def remember_owner(self, secret_hash: str, therapist: dict[str, Any]) -> None:
        self._owners[secret_hash] = (therapist, self.clock())

    def forget_owner(self, therapist_id: str) -> None:
        with self._lock:
            for secret_hash, (therapist, _) in list(self._owners.items()):
                if therapist["id"] == therapist_id:
                    del self._owners[secret_hash]


def therapist_named(payload: Mapping[str, Any]) -> str | None:
    """The therapist a booking event is about (a booking's or a course's)."""
    data = payload.get("data") or {}
    subject = data.get("booking") or data.get("course") or data
    return subject.get("therapist_id")


def compress(body: bytes) -> bytes:
    """The feed gzipped once per build (mtime 0: the same feed gives the same bytes)."""
    return gzip.compress(body, compresslevel=6, mtime=0)


def accepts_gzip(headers: Mapping[str, str]) -> bool:
    """``Accept-Encoding`` names gzip (or ``*``) without ``q=0``."""
    for coding in (headers.get("Accept-Encoding") or "").lower().split(","):
        name, _, params = coding.strip().partition(";")
        quality = params.replace(" ", "").removeprefix("q=") if params else "1"
        if name.strip() in ("gzip", "x-gzip", "*"):
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False


def not_modified(headers: Mapping[str, str], feed: CachedFeed) -> bool:
    """RFC 9110: If-None-Match decides when present; otherwise If-Modified-Since. Either
    representation's ETag matches: both decode to the same feed."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or feed.etag in tags or feed.gzip_etag in tags
    if_modified_since = headers.get("If-Modified-Since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return feed.last_modified <= since
    return False


def validator_headers(feed: CachedFeed, gzipped: bool = False) -> dict[str, str]:
    return {"ETag": feed.gzip_etag if gzipped else feed.etag,
            "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
            "Cache-Control": "private, max-age=0, must-revalidate", "Vary": "Accept-Encoding"}


def client_calendar(sessions: list[Mapping[str, Any]], *, therapist_name: str, timezone: str,
                    session_type_names: Mapping[str, str], room_names: Mapping[str, str],
                    now: datetime) -> bytes:
    """A client's own calendar file: their booking, or every session of their course.

    The same UIDs and SEQUENCEs as the emailed invitations, so a calendar app that has both
    sees one event per session; cancelled sessions stay, marked CANCELLED.
    """
    events = []
    for session in sessions:
        summary = session_type_names.get(session["session_type"], session["session_type"])
        if session.get("course_sessions") and session.get("session_number"):
            summary += f" {session['session_number']}/{session['course_sessions']}"
        events.append(ical.booking_event(
            session, summary=f"{summary} with {therapist_name}", timezone=timezone,
            dtstamp=now, description=MODALITY_LABEL[session["modality"]],
            location=session_location(session, room_names), url=session.get("video_url")))
    return ical.calendar(events, method="PUBLISH", name="My sessions").to_ical()
