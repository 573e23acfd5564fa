"""The gateway's protections as pure functions, the input rules of the API's models, and the
services' own guards that issue #16 found missing (each test fails on the code before it)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from clinic.errors import InvalidRequest, Unauthorized
from gateway import security
from gateway.api.booking import BookingRequest, ClientIn, CourseRequest
from gateway.api.catalogue import CourseQuery, SlotQuery, TimeOffIn
from gateway.auth import presented_token
from gateway.entrypoints import AccessLog, parse_json_body
from gateway.limits import RateLimiter, make_limiter
from services.availability import inputs
from services.notifications import composer
from services.notifications.invitations import summary
from tests.unit.test_notifications import HEAD, booking_dict

# --- the admin token -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["change-me", "CHANGE-ME", "changeme-please-changeme-please-x",
                                   "e2e-admin-token", "x" * 31, "a" * 64, "secret"])
def test_a_short_repetitive_or_placeholder_admin_token_is_refused(token):
    problem = security.admin_token_problem(token)
    assert problem and problem.startswith("CLINIC_ADMIN_TOKEN") and "\n" not in problem


def test_a_random_admin_token_or_none_at_all_is_accepted():
    assert security.admin_token_problem("kV3q9Zt7xW2pL8mN4rB6yH1cJ5dF0gS-") is None
    assert security.admin_token_problem("") is None  # no admin at all


# --- addresses and which requests are limited --------------------------------------------------


def test_the_client_address_trusts_only_the_configured_proxy_hops():
    # Without trusted proxies a forged header changes nothing.
    assert security.client_address("10.0.0.5", "1.2.3.4", 0) == "10.0.0.5"
    # One proxy (10.0.0.5) appended what it saw; whatever the client wrote before it is ignored.
    assert security.client_address("10.0.0.5", "6.6.6.6, 203.0.113.7", 1) == "203.0.113.7"
    assert security.client_address("10.0.0.6", "6.6.6.6, 203.0.113.7, 10.0.0.5", 2) \
        == "203.0.113.7"
    # Fewer hops than configured: the first address there is (never an index error).
    assert security.client_address("10.0.0.5", None, 1) == "10.0.0.5"
    assert security.client_address("10.0.0.5", "203.0.113.7", 3) == "203.0.113.7"


@pytest.mark.parametrize(("path", "limited"), [
    ("/api/v1/therapists/ann/slots", True), ("/api/v1/therapists/{id}/slots", True),
    ("/api/v1/therapists/ann/course-options", True), ("/ready", True),
    ("/internal/booking-ping", True), ("/internal/availability-ping", True),
    ("/health", False), ("/api/v1/therapists", False), ("/api/v1/therapists/ann", False),
    ("/ical/cal_x.ics", False), ("/api/v1/therapists/ann/slots/x", False)])
def test_expensive_gets_are_named(path, limited):
    assert security.expensive(path) is limited


def test_a_bucket_can_be_looked_at_without_spending_it():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.check("a", cost=0) == 0 and limiter.check("a", cost=0) == 0
    assert limiter.check("a") == 0 and limiter.check("a") == 0
    assert limiter.check("a", cost=0) == pytest.approx(30)  # empty: 2 a minute
    now[0] += 30
    assert limiter.check("a", cost=0) == 0


def test_without_redis_each_process_keeps_its_own_limiter():
    assert isinstance(make_limiter("posts", 5, ""), RateLimiter)


# --- tokens in URLs and in logs ----------------------------------------------------------------

MANAGE = "mng_" + "A" * 32
THERAPIST = "thr_" + "B" * 32


def _request(path: str, method: str = "GET", headers: dict | None = None) -> Request:
    return Request(EnvironBuilder(path=path, method=method, headers=headers).get_environ())


@pytest.mark.parametrize("path", [f"/api/v1/bookings/b1?token={MANAGE}",
                                  f"/api/v1/bookings/b1.ics?token={MANAGE}",
                                  f"/api/v1/courses/c1?token={MANAGE}",
                                  f"/api/v1/courses/c1.ics?token={MANAGE}",
                                  f"/api/v1/courses/c1/progress?token={MANAGE}"])
def test_a_manage_token_in_the_query_is_taken_where_the_contract_says(path):
    assert presented_token(_request(path)) == MANAGE


@pytest.mark.parametrize("path", [f"/api/v1/therapists/t1/bookings?token={THERAPIST}",
                                  f"/api/v1/bookings/b1?token={THERAPIST}",
                                  "/api/v1/bookings/b1?token=the-admin-token-0123456789abcdef",
                                  f"/api/v1/therapists/t1/calendar-feed?token={MANAGE}",
                                  f"/api/v1/courses/c1/check-ins?token={MANAGE}"])
def test_any_other_token_in_the_query_is_refused(path):
    with pytest.raises(Unauthorized):
        presented_token(_request(path))


def test_the_header_still_carries_any_kind_of_token():
    headers = {"Authorization": f"Bearer {THERAPIST}"}
    assert presented_token(_request("/api/v1/therapists/t1/bookings", headers=headers)) \
        == THERAPIST


def test_the_access_log_keeps_no_query_string_feed_secret_or_token(caplog):
    log = AccessLog(logging.getLogger("test.access"))
    with caplog.at_level(logging.INFO, logger="test.access"):
        log.info(f'127.0.0.1 - - [x] "GET /manage?token={MANAGE}&booking=b1 HTTP/1.1" 200 9 0.1')
        log.info('127.0.0.1 - - [x] "GET /ical/cal_S3cr3tS3cr3tS3cr3t.ics HTTP/1.1" 200 9 0.1')
        log.error(f'chunked encoding error. request="GET /api/v1/x/{THERAPIST} HTTP/1.1"')
        log.write(f'code 400, message Bad request version ("/x?token={MANAGE}")\n')
    text = caplog.text
    assert MANAGE not in text and THERAPIST not in text and "S3cr3t" not in text
    assert '"GET /manage HTTP/1.1" 200' in text and '"GET /ical/….ics HTTP/1.1"' in text


# --- headers -----------------------------------------------------------------------------------


def test_every_answer_gets_nosniff_and_a_csp_and_personal_ones_no_store():
    added = security.security_headers({}, personal=False)
    assert added == {"X-Content-Type-Options": "nosniff",
                     "Content-Security-Policy": security.API_CSP}
    own = security.security_headers({"Content-Security-Policy": "x",
                                     "Cache-Control": "private, no-store"}, personal=True)
    assert own == {"X-Content-Type-Options": "nosniff"}
    assert security.security_headers({"Cache-Control": "private, max-age=0"},
                                     personal=True)["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "path", "authenticated", "personal"), [
    ("GET", "/api/v1/bookings/b1", True, True), ("POST", "/api/v1/bookings", False, True),
    ("POST", "/api/v1/holds", False, True), ("GET", "/ical/cal_x.ics", False, True),
    ("GET", "/api/v1/therapists", False, False), ("GET", "/api/v1/therapists/t/slots", False,
                                                  False), ("GET", "/health", False, False)])
def test_answers_with_personal_data_are_named(method, path, authenticated, personal):
    assert security.carries_personal_data(method, path, authenticated) is personal


# --- bad input ---------------------------------------------------------------------------------

CLIENT = {"name": "Ann Lee", "email": "ann@example.org"}


@pytest.mark.parametrize("name", ["Ann\nLee", "Ann\rLee", "Ann\vLee", "Ann\x0cLee", "Ann\u2028Lee",
                                  "Ann\u2029Lee", "Ann\u0085Lee", "Ann\x00", "Ann\x1b[31m", "   "])
def test_a_name_with_control_or_line_separator_characters_is_refused(name):
    with pytest.raises(ValidationError, match="line breaks"):
        ClientIn(name=name, email="ann@example.org")


@pytest.mark.parametrize("email", ["eve@x.y,postmaster", "eve@x.y;bob@x.y", "Eve <eve@x.y>",
                                   "eve@x.y\nBcc: z@z.z", "eve@x", "eve@@x.y", "eve@x..y",
                                   "eve @x.y", '"eve"@x.y'])
def test_an_email_is_exactly_one_address(email):
    with pytest.raises(ValidationError):
        ClientIn(name="Eve", email=email)


@pytest.mark.parametrize("email", ["ann@example.org", "o'brien+tag@mail.example.co.uk",
                                   "zoë@münchen.de"])
def test_ordinary_addresses_and_names_still_pass(email):
    assert ClientIn(name="Zoë O'Brien-Ng", email=email).email == email


def test_dates_and_instants_a_thousand_years_away_are_a_400_not_an_overflow():
    start = {"therapist_id": "t", "session_type": "s", "modality": "video", "client": CLIENT}
    with pytest.raises(ValidationError, match="years 1900 and 2999"):
        CourseRequest(**start, first_start="9999-12-31T10:00:00Z")
    with pytest.raises(ValidationError, match="years 1900 and 2999"):
        BookingRequest(**start, start="0001-01-01T00:30:00+01:00")
    with pytest.raises(ValidationError, match="years 1900 and 2999"):
        SlotQuery.model_validate({"session_type": "s", "modality": "video",
                                  "from": "9999-10-01", "to": "9999-12-31"})
    with pytest.raises(ValidationError, match="years 1900 and 2999"):
        CourseQuery.model_validate({"session_type": "s", "modality": "video",
                                    "from": "9999-12-31"})
    with pytest.raises(ValidationError, match="years 1900 and 2999"):
        TimeOffIn(start="9999-12-31T00:00:00Z", end="9999-12-31T23:00:00-05:00")


def test_the_availability_service_refuses_them_itself():
    with pytest.raises(InvalidRequest):
        inputs.date_window("9999-12-01", "9999-12-31", ZoneInfo("Europe/London"))
    with pytest.raises(InvalidRequest):
        inputs.instant("9999-12-31T23:00:00-05:00", "end")
    with pytest.raises(InvalidRequest):
        inputs.skip_dates("2027-01-05,9999-12-31")
    assert inputs.date_window("2999-12-01", "2999-12-31", ZoneInfo("Pacific/Kiritimati"))


def test_deeply_nested_json_is_a_400():
    request = _request("/api/v1/bookings", "POST")
    request.get_data = lambda cache=True: b"[" * 65_000  # what the reader put back
    with pytest.raises(InvalidRequest) as refused:
        parse_json_body(request, BookingRequest)
    assert refused.value.details["fields"][0]["field"] == "body"


# --- the therapist's invitations and subjects ----------------------------------------------------


@pytest.mark.parametrize("kind", ["confirmation", "reschedule", "cancellation", "reminder",
                                  "course_ending"])
def test_the_therapists_subject_and_invitation_name_the_client_by_initials(kind):
    booking = booking_dict(3)
    payload = {"bookings": [booking], "client": booking["client"], "remaining": 3,
               "previous": {"start": (datetime(2027, 3, 1, tzinfo=UTC)
                                      + timedelta(hours=9)).isoformat()}}
    letter = composer.compose(kind, "therapist", payload, HEAD, therapist_name="Dr Jo")
    assert "Ann Lee" not in letter.subject and "A.L." in letter.subject
    assert "Ann Lee" in letter.text  # the letter itself, to the therapist, may name the client
    client_letter = composer.compose(kind, "client", payload, HEAD, therapist_name="Dr Jo")
    assert "A.L." not in client_letter.subject
    assert summary(booking, "therapist", "Dr Jo") == "DIT session 3/16 – A.L."


# --- broker users: the grants cover what the services do -----------------------------------------


def _broker_use(service_class) -> tuple[set[str], set[str], bool, bool]:
    """(services it calls, event sources it handles, serves RPC, publishes events), read from
    the nameko declarations of the class."""
    from nameko.events import EventDispatcher, EventHandler
    from nameko.rpc import Rpc, RpcProxy

    from clinic.outbox import OutboxRelay

    calls, sources, serves, publishes = set(), set(), False, False
    for name in dir(service_class):
        value = getattr(service_class, name)
        if isinstance(value, RpcProxy):
            calls.add(value.target_service)
        publishes |= isinstance(value, EventDispatcher | OutboxRelay)
        for entrypoint in getattr(value, "nameko_entrypoints", ()):
            if isinstance(entrypoint, EventHandler):
                sources.add(entrypoint.source_service)
            serves |= isinstance(entrypoint, Rpc)
    return calls, sources, serves, publishes


def test_every_service_has_a_broker_grant_covering_what_it_declares():
    import importlib

    from clinic.broker_users import GRANTS
    from clinic.supervisor import PROCESSES

    for name, (_, target) in PROCESSES.items():
        module, _, attribute = target.partition(":")
        calls, sources, serves, publishes = _broker_use(
            getattr(importlib.import_module(module), attribute))
        grant = GRANTS.get(name)
        assert grant is not None, f"add a Grant for {name} in clinic/broker_users.py"
        assert calls <= set(grant.calls), (name, calls)
        assert sources <= set(grant.listens_to), (name, sources)
        assert (serves, publishes) == (grant.serves_rpc, grant.publishes_events), name


def test_the_notifications_login_may_ask_booking_for_a_token_and_nothing_else():
    import re

    from clinic.broker_users import GRANTS

    (topic,) = GRANTS["notifications"].topic_permissions()
    allowed = re.compile(topic["write"])
    assert allowed.match("booking.issue_manage_token")
    assert allowed.match("availability.get_therapist_contact")
    assert allowed.match("0b0c1f4e-8f7e-4a58-9d0e-0c5a1f1b2c3d")  # a reply
    assert not allowed.match("booking.cancel_booking")
    assert not allowed.match("booking.issue_manage_token.x")
    permissions = GRANTS["notifications"].permissions()
    assert not re.match(permissions["write"], "booking.events")  # no forged booking events
    assert not re.match(permissions["read"], "rpc-booking")
