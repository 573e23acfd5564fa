"""The therapist's feed, built and cached without a broker."""

import gzip
from datetime import UTC, datetime

from icalendar import Calendar

from clinic.ical import client_initials, event_uid
from gateway.feeds import (
    FeedCache,
    accepts_gzip,
    build_feed,
    compress,
    not_modified,
    therapist_named,
    validator_headers,
)
from services.booking.policy import feed_view

THERAPIST = {"id": "zoe", "name": "Zoë Łukasiewicz-Ørsted", "timezone": "Europe/London"}
TYPES = {"dit-session": "DIT session", "dit-assessment": "DIT assessment"}
ROOMS = {"garden": "Garden room — ground floor, Éloïse wing, past the café on the left"}


def session(**changes):
    base = {
        "id": "b1", "status": "confirmed", "session_type": "dit-session", "modality": "in_person",
        "room": "garden", "start": "2026-12-01T10:00:00+00:00", "end": "2026-12-01T10:50:00+00:00",
        "course_id": "c1", "session_number": 5, "course_sessions": 16, "sequence": 2,
        "client_initials": client_initials("Ana-Sofía Núñez"),
        "updated_at": "2026-11-20T09:00:00+00:00",
    }
    return {**base, **changes}


def booking_row(**changes):
    """A booking as the booking service stores it, private fields and all."""
    start = datetime(2026, 12, 1, 10, tzinfo=UTC)
    row = {
        "id": "b1", "therapist_id": "zoe", "status": "confirmed", "session_type": "dit-session",
        "modality": "in_person", "room": "garden", "start": start,
        "end": start.replace(minute=50), "blocked_end": start.replace(hour=11),
        "course_id": "c1", "session_number": 5, "course_sessions": 16, "sequence": 2,
        "client_name": "Ana-Sofía Núñez", "client_email": "ana@example.org",
        "client_phone": "+44 20 7946 0018", "client_timezone": "Europe/Madrid",
        "notes": "Grief after a bereavement", "cancel_reason": None, "cancelled_by": None,
        "late_cancellation": False, "expires_at": None, "hold_id": None,
        "created_at": datetime(2026, 11, 20, 9, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 20, 9, tzinfo=UTC),
    }
    return {**row, **changes}


def test_feed_shows_what_a_therapist_needs_and_nothing_private():
    # Through the booking service's own privacy filter, from rows holding every private field.
    sessions = [feed_view(row) for row in (
        booking_row(),
        booking_row(id="b2", status="cancelled", course_id=None, session_number=None,
                    course_sessions=None, modality="video", room=None,
                    start=datetime(2026, 7, 7, 9, tzinfo=UTC),
                    end=datetime(2026, 7, 7, 9, 50, tzinfo=UTC), sequence=3,
                    cancelled_by="client", cancel_reason="Panic attacks on the bus"),
    )]
    body = build_feed(THERAPIST, sessions, TYPES, ROOMS)
    calendar = Calendar.from_ical(body)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    course_session = events[event_uid("b1")]
    assert str(course_session["SUMMARY"]) == "DIT session 5/16 · A.S.N."
    assert int(course_session["SEQUENCE"]) == 2
    assert course_session["DTSTART"].params["TZID"] == "Europe/London"
    assert course_session.decoded("DTSTART") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert str(course_session["LOCATION"]).startswith("Garden room")
    cancelled = events[event_uid("b2")]
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["SUMMARY"]) == "DIT session · A.S.N."
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/London"]
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT15M" in body.decode()
    assert "X-PUBLISHED-TTL:PT15M" in body.decode()
    text = Calendar.from_ical(body).to_ical().decode()  # unfolded, so no word hides in a fold
    for private in ("Ana-Sofía", "Núñez", "ana@example.org", "7946", "Madrid", "Grief",
                    "bereavement", "Panic", "client"):
        assert private not in text and private not in body.decode()


def test_lines_fold_at_75_octets_without_splitting_a_character():
    body = build_feed(THERAPIST, [session()], TYPES, ROOMS)
    lines = body.split(b"\r\n")
    assert any(line.startswith(b" ") for line in lines)  # something was long enough to fold
    for line in lines:
        assert len(line) <= 75
        line.decode("utf-8")  # a folded line never ends inside a multi-byte character


def test_the_same_sessions_give_the_same_bytes():
    assert build_feed(THERAPIST, [session()], TYPES, ROOMS) == \
        build_feed(THERAPIST, [session()], TYPES, ROOMS)


def test_cache_drops_a_feed_on_invalidation_or_after_its_ttl():
    now = [0.0]
    cache = FeedCache(ttl_seconds=300, trust_seconds=1000, clock=lambda: now[0])
    cache.heard_from_broker()
    first = cache.put("zoe", b"BEGIN:VCALENDAR", datetime(2026, 11, 26, 12, tzinfo=UTC))
    assert cache.get("zoe") == first
    cache.invalidate("zoe")
    assert cache.get("zoe") is None
    again = cache.put("zoe", b"BEGIN:VCALENDAR", datetime(2026, 11, 26, 13, tzinfo=UTC))
    assert again.etag == first.etag
    assert again.last_modified == first.last_modified  # unchanged body, unchanged date
    now[0] = 301
    assert cache.get("zoe") is None
    changed = cache.put("zoe", b"BEGIN:VCALENDAR\r\nX", datetime(2026, 11, 26, 14, tzinfo=UTC))
    assert changed.etag != first.etag and changed.last_modified > first.last_modified


def test_a_build_overtaken_by_a_change_is_served_once_but_not_kept():
    cache = FeedCache()
    cache.heard_from_broker()
    generation = cache.generation("zoe")
    cache.invalidate("zoe")  # a booking event arrives while the feed is being built
    stale = cache.put("zoe", b"before the change", datetime(2026, 11, 26, 12, tzinfo=UTC),
                      generation)
    assert stale.body == b"before the change"
    assert cache.get("zoe") is None  # the next poll builds again, with the change
    fresh = cache.put("zoe", b"after", datetime(2026, 11, 26, 12, 1, tzinfo=UTC),
                      cache.generation("zoe"))
    assert cache.get("zoe") == fresh


def test_a_secrets_owner_is_forgotten_on_rotation_or_after_its_ttl():
    now = [0.0]
    cache = FeedCache(owner_ttl_seconds=60, trust_seconds=1000, clock=lambda: now[0])
    cache.heard_from_broker()
    cache.remember_owner("hash-1", THERAPIST)
    cache.remember_owner("hash-2", {"id": "ann", "name": "Ann", "timezone": "Europe/London"})
    assert cache.owner("hash-1") == THERAPIST
    cache.forget_owner("zoe")
    assert cache.owner("hash-1") is None and cache.owner("hash-2")["id"] == "ann"
    now[0] = 61
    assert cache.owner("hash-2") is None


def test_a_15_minute_poll_is_answered_from_memory_while_broadcasts_are_heard():
    now = [0.0]
    cache = FeedCache(trust_seconds=25, clock=lambda: now[0])
    cache.remember_owner("hash-1", THERAPIST)
    feed = cache.put("zoe", b"feed", datetime(2026, 11, 26, 12, tzinfo=UTC))
    assert cache.get("zoe") is None  # no tick heard yet: nothing is trusted
    for minute in range(0, 16):  # ticks every 10 s for 15 minutes
        for second in range(0, 60, 10):
            now[0] = minute * 60 + second
            cache.heard_from_broker()
    assert cache.get("zoe") == feed and cache.owner("hash-1") == THERAPIST
    now[0] += 26  # ticks stopped coming back: broadcasts may be missed
    assert cache.get("zoe") is None and cache.owner("hash-1") is None


def test_a_reconnection_forgets_everything_and_drops_builds_begun_before_it():
    cache = FeedCache()
    cache.heard_from_broker()
    cache.remember_owner("hash-1", THERAPIST)
    cache.put("zoe", b"feed", datetime(2026, 11, 26, 12, tzinfo=UTC))
    generation = cache.generation("zoe")
    cache.reconnected()  # events and rotations broadcast while it was away are lost
    assert cache.get("zoe") is None and cache.owner("hash-1") is None
    cache.put("zoe", b"built before", datetime(2026, 11, 26, 12, tzinfo=UTC), generation)
    assert cache.get("zoe") is None


def test_gzip_is_served_to_whoever_accepts_it_under_its_own_etag():
    assert accepts_gzip({"Accept-Encoding": "gzip, deflate, br"})
    assert accepts_gzip({"Accept-Encoding": "br;q=1.0, gzip;q=0.5"})
    assert not accepts_gzip({"Accept-Encoding": "gzip;q=0"})
    assert not accepts_gzip({"Accept-Encoding": "identity"}) and not accepts_gzip({})
    body = build_feed(THERAPIST, [session()] * 50, TYPES, ROOMS)
    feed = FeedCache().put("zoe", body, datetime(2026, 11, 26, 12, tzinfo=UTC),
                           gzipped=compress(body))
    assert gzip.decompress(feed.gzipped) == body and len(feed.gzipped) < len(body) / 5
    assert compress(body) == feed.gzipped  # the same feed, the same bytes
    assert validator_headers(feed, gzipped=True)["ETag"] != feed.etag
    assert not_modified({"If-None-Match": feed.gzip_etag}, feed)


def test_booking_and_course_events_name_their_therapist():
    assert therapist_named({"data": {"booking": {"therapist_id": "zoe"}}}) == "zoe"
    assert therapist_named({"data": {"course": {"therapist_id": "ann"}, "cancelled": []}}) == \
        "ann"
    assert therapist_named({"data": {}}) is None


def test_conditional_requests():
    cache = FeedCache()
    feed = cache.put("zoe", b"feed", datetime(2026, 11, 26, 12, tzinfo=UTC))
    headers = validator_headers(feed)
    assert not_modified({"If-None-Match": feed.etag}, feed)
    assert not_modified({"If-None-Match": f'"other", W/{feed.etag}'}, feed)
    assert not not_modified({"If-None-Match": '"other"'}, feed)
    assert not_modified({"If-Modified-Since": headers["Last-Modified"]}, feed)
    assert not not_modified({"If-Modified-Since": "Wed, 25 Nov 2026 12:00:00 GMT"}, feed)
    # If-None-Match wins over If-Modified-Since
    assert not not_modified({"If-None-Match": '"other"',
                             "If-Modified-Since": headers["Last-Modified"]}, feed)
    assert not not_modified({"If-Modified-Since": "not a date"}, feed)


def test_client_initials():
    assert client_initials("Jane van Dijk-Ng") == "J.v.D.N."
    assert client_initials("  ") == "?"
