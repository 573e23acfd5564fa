"""Issue #16 over HTTP, on one running clinic behind a (pretended) proxy: abuse limits per client
address (POSTs, expensive GETs, failed authentications) shared through Redis by two gateway
processes, tokens only where the contract allows them and never in a log, security headers,
slow clients cut off, and the bad input that used to break things.

The clinic trusts one proxy hop (``TRUSTED_PROXIES=1``), so each test speaks as a client
address of its own through ``X-Forwarded-For`` and the tests' limits do not mix.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import requests

from clinic.settings import SERVICES
from tests.conftest import Databases, RunningClinic, Vhosts, free_port
from tests.e2e.test_booking import set_up_therapist

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REDIS_URL = os.environ.get("CLINIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LIMITS = {"RATE_LIMIT_PER_MINUTE": "6", "SEARCH_RATE_LIMIT_PER_MINUTE": "4",
          "AUTH_FAILURES_PER_MINUTE": "3"}
SECRETS: list[str] = []  # every token and secret the tests made; none may reach a log


class ProxiedClinic(RunningClinic):
    """The clinic, asked as if through one proxy: each caller names its address."""

    def ready_headers(self) -> dict[str, str]:
        return self.client()  # /ready is limited: each poll as a client of its own

    @staticmethod
    def client(address: str | None = None) -> dict[str, str]:
        """Headers of a request from ``address`` (a fresh one when None), through our proxy."""
        return {"X-Forwarded-For": address or f"client-{uuid.uuid4().hex[:12]}"}

    def admin_from(self, address: str | None = None) -> dict[str, str]:
        return {**self.admin, **self.client(address)}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Iterator[ProxiedClinic]:
    vhosts = Vhosts()
    folder = tmp_path_factory.mktemp("clinic-security")
    databases = Databases("sqlite", str(folder))
    env = {**os.environ, "AMQP_URI": vhosts.new(), "CLINIC_DATA_DIR": str(folder),
           "GATEWAY_PORT": str(free_port()), "CLINIC_DEMO": "0", "PYTHONUNBUFFERED": "1",
           "CLINIC_ADMIN_TOKEN": f"adm-{uuid.uuid4().hex}{uuid.uuid4().hex}",
           "TRUSTED_PROXIES": "1", "HTTP_IDLE_TIMEOUT_SECONDS": "2",
           "HTTP_BODY_TIMEOUT_SECONDS": "2", "REDIS_URL": REDIS_URL,
           "REDIS_PREFIX": f"clinic-test-{uuid.uuid4().hex[:10]}", **LIMITS}
    for service in SERVICES:
        env[f"{service.upper()}_DATABASE_URL"] = databases.new(service)
    SECRETS.append(env["CLINIC_ADMIN_TOKEN"])
    system = ProxiedClinic(env)
    system.start(str(folder / "clinic.log"))
    system.admin = system.admin_from("admin-desk")
    set_up_therapist(_AsAdmin(system), "dr-sec")
    try:
        yield system
    finally:
        system.stop()
        databases.drop_all()
        vhosts.delete_all()
        store = redis.Redis.from_url(REDIS_URL)
        for key in store.scan_iter(env["REDIS_PREFIX"] + ":*"):
            store.delete(key)


class _AsAdmin:
    """The clinic as set_up_therapist uses it: its POSTs each from an address of their own."""

    def __init__(self, system: ProxiedClinic):
        self.system = system

    def url(self, path: str) -> str:
        return self.system.url(path)

    @property
    def admin(self) -> dict[str, str]:
        return self.system.admin_from()


def start_at(days: int = 3, hour: int = 10) -> str:
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def book(clinic: ProxiedClinic, start: str, **client) -> dict:
    response = requests.post(clinic.url("/api/v1/bookings"), headers=clinic.client(), timeout=30,
                             json={"therapist_id": "dr-sec", "session_type": "dit-session",
                                   "modality": "video", "start": start,
                                   "client": {"name": "Ann Lee", "email": "ann@example.org",
                                              **client}})
    assert response.status_code == 201, response.text
    SECRETS.append(response.json()["manage_token"])
    return response.json()


def therapist_token(clinic: ProxiedClinic) -> str:
    token = requests.post(clinic.url("/api/v1/therapists/dr-sec/tokens"), timeout=10,
                          headers=clinic.admin_from()).json()["token"]
    SECRETS.append(token)
    return token


# --- finding 12: headers -----------------------------------------------------------------------


def test_every_answer_has_nosniff_and_a_csp_and_personal_ones_are_not_stored(clinic):
    for path in ("/health", "/api/v1/therapists", "/openapi.json", "/no/such/route", "/docs",
                 "/"):
        answer = requests.get(clinic.url(path), headers=clinic.client(), timeout=10)
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
    public = requests.get(clinic.url("/api/v1/therapists"), timeout=10)
    assert "no-store" not in public.headers.get("Cache-Control", "")

    docs = requests.get(clinic.url("/docs"), headers=clinic.client(), timeout=10)
    style = re.search(r"<style>(.*?)</style>", docs.text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in docs.headers["Content-Security-Policy"]
    assert "script-src" not in docs.headers["Content-Security-Policy"]  # default-src 'none'

    booking = book(clinic, start_at(hour=8))
    for answer in (
            requests.get(clinic.url(f"/api/v1/bookings/{booking['id']}"), timeout=10,
                         headers={"Authorization": f"Bearer {booking['manage_token']}"}),
            requests.post(clinic.url("/api/v1/holds"), json={}, headers=clinic.client(),
                          timeout=10)):
        assert answer.headers["Cache-Control"] == "no-store", answer.url
    feed = requests.get(clinic.url("/api/v1/therapists/dr-sec/calendar-feed"),
                        headers=clinic.admin, timeout=10).json()["url"]
    SECRETS.append(feed.rsplit("/", 1)[1].removesuffix(".ics"))
    assert requests.get(feed, timeout=10).headers["Cache-Control"] == "no-store"


# --- finding 2: tokens in query strings --------------------------------------------------------


def test_only_a_manage_token_is_taken_from_the_query_and_only_on_the_named_routes(clinic):
    token = therapist_token(clinic)
    booking = book(clinic, start_at(hour=9))
    manage = booking["manage_token"]
    own = f"/api/v1/bookings/{booking['id']}"
    assert requests.get(clinic.url(f"{own}?token={manage}"), timeout=10).status_code == 200
    ics = requests.get(clinic.url(f"{own}.ics?token={manage}"), timeout=10)
    assert ics.status_code == 200 and ics.text.startswith("BEGIN:VCALENDAR")

    week = "/api/v1/therapists/dr-sec/bookings"
    assert requests.get(clinic.url(week), timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for path in (f"{week}?token={token}", f"{own}?token={token}",
                 f"{own}?token={clinic.env['CLINIC_ADMIN_TOKEN']}", f"{week}?token={manage}"):
        refused = requests.get(clinic.url(path), headers=clinic.client(), timeout=10)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "unauthorized"


# --- finding 4: guessing tokens ----------------------------------------------------------------


def test_failed_authentications_are_limited_per_address(clinic):
    guesser, other = clinic.client(), clinic.client()
    path = clinic.url("/api/v1/therapists/dr-sec/bookings")

    def guess(headers: dict) -> requests.Response:
        bearer = f"Bearer thr_{uuid.uuid4().hex}{uuid.uuid4().hex}"
        return requests.get(path, headers={**headers, "Authorization": bearer}, timeout=10)

    assert [guess(guesser).status_code for _ in range(3)] == [401, 401, 401]
    stopped = guess(guesser)
    assert stopped.status_code == 429 and int(stopped.headers["Retry-After"]) >= 1
    assert stopped.json()["error"]["code"] == "rate_limited"
    admin = requests.get(path, headers={**guesser, **{"Authorization": clinic.admin[
        "Authorization"]}}, timeout=10)
    assert admin.status_code == 429  # while it guesses, that address gets no answer at all
    assert guess(other).status_code == 401  # another address is not affected
    assert requests.get(clinic.url("/api/v1/therapists"), headers=guesser,
                        timeout=10).status_code == 200  # public reads need no credentials


# --- finding 5: the proxy's address, expensive GETs, several gateways --------------------------


def test_behind_a_proxy_each_client_address_has_its_own_limit(clinic):
    attacker, neighbour = f"203.0.113.{uuid.uuid4().int % 250}", clinic.client()

    def post(headers: dict) -> int:
        return requests.post(clinic.url("/api/v1/holds"), json={}, headers=headers,
                             timeout=10).status_code

    assert [post({"X-Forwarded-For": attacker}) for _ in range(6)] == [400] * 6
    assert post({"X-Forwarded-For": attacker}) == 429
    # Writing another address first into X-Forwarded-For does not help: our proxy appends.
    assert post({"X-Forwarded-For": f"198.51.100.1, {attacker}"}) == 429
    assert post(neighbour) == 400  # the proxy's other clients still get through


def test_expensive_gets_are_limited_and_cheap_ones_are_not(clinic):
    searcher = clinic.client()
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    slots = clinic.url(f"/api/v1/therapists/dr-sec/slots?session_type=dit-session&modality=video"
                       f"&from={day}&to={day + timedelta(days=91)}")
    options = clinic.url("/api/v1/therapists/dr-sec/course-options?session_type=dit-session"
                         "&modality=video")
    statuses = [requests.get(url, headers=searcher, timeout=30).status_code
                for url in (slots, options, clinic.url("/ready"), slots, options)]
    assert statuses == [200, 200, 200, 200, 429]
    pinged = requests.get(clinic.url("/internal/booking-ping"), headers=searcher, timeout=10)
    assert pinged.status_code == 429
    assert all(requests.get(clinic.url("/health"), headers=searcher, timeout=10).status_code
               == 200 for _ in range(10))


def test_two_gateway_processes_share_one_limit_through_redis(clinic, tmp_path):
    port = free_port()
    log_path = tmp_path / "gateway2.log"
    with open(log_path, "ab") as log:
        second = subprocess.Popen(
            [sys.executable, "-m", "clinic.cli", "run", "--config", "gateway/config.yml",
             "gateway.service:GatewayService"], cwd=ROOT, env={**clinic.env,
                                                               "GATEWAY_PORT": str(port)},
            stdout=log, stderr=subprocess.STDOUT)
    try:
        other = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(other + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert second.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        client = clinic.client()
        answers = [requests.post(base + "/api/v1/holds", json={}, headers=client,
                                 timeout=10).status_code
                   for base in [clinic.base_url, other] * 4]
        # Six POSTs a minute for this address, wherever they land; alone, each would allow six.
        assert answers == [400] * 6 + [429, 429]
    finally:
        second.terminate()
        second.wait(20)


# --- finding 12: slow and idle connections -----------------------------------------------------


def test_slow_and_idle_connections_are_closed_while_others_are_answered(clinic):
    host, port = "127.0.0.1", int(clinic.env["GATEWAY_PORT"])
    slow = []
    for _ in range(200):
        sock = socket.create_connection((host, port), timeout=10)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        slow.append(sock)
    idle = socket.create_connection((host, port), timeout=10)  # says nothing at all
    try:
        for _ in range(5):
            for sock in slow[:50]:  # a header line now and then: each keeps the socket busy
                # (one the gateway closed already: on a loaded machine the setup is slow)
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")
            answer = requests.get(clinic.url("/health"), headers=clinic.client(), timeout=5)
            assert answer.status_code == 200
            time.sleep(0.3)
        # The 2-second deadline for a request head ends every one of them, trickling or not.
        deadline = time.monotonic() + 20
        for sock in [*slow, idle]:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""
    finally:
        for sock in [*slow, idle]:
            sock.close()


# --- finding 9: bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Eve\nBcc: x@example.org", "Eve\vE", "Eve\u2028E",
                                  "Eve\u0085E"])
def test_a_name_that_breaks_lines_is_a_400(clinic, name):
    body = {"therapist_id": "dr-sec", "session_type": "dit-session", "modality": "video",
            "start": start_at(hour=11), "client": {"name": name, "email": "eve@example.org"}}
    for path, extra in (("/api/v1/bookings", {}),
                        ("/api/v1/courses", {"first_start": body["start"], "sessions": 2})):
        data = {**{k: v for k, v in body.items() if not extra or k != "start"}, **extra}
        answer = requests.post(clinic.url(path), json=data, headers=clinic.client(), timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"]["fields"][0]["field"] == "client.name"


def test_an_email_that_is_more_than_one_address_is_a_400(clinic):
    answer = requests.post(clinic.url("/api/v1/bookings"), headers=clinic.client(), timeout=10,
                           json={"therapist_id": "dr-sec", "session_type": "dit-session",
                                 "modality": "video", "start": start_at(hour=11),
                                 "client": {"name": "Eve", "email": "eve@x.y,postmaster"}})
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["fields"][0]["field"] == "client.email"


def test_dates_in_the_year_9999_are_a_400_never_a_500(clinic):
    base = "/api/v1/therapists/dr-sec"
    for path in (f"{base}/slots?session_type=dit-session&modality=video&from=9999-10-01"
                 "&to=9999-12-31",
                 f"{base}/course-options?session_type=dit-session&modality=video"
                 "&from=9999-12-31"):
        answer = requests.get(clinic.url(path), headers=clinic.client(), timeout=10)
        assert answer.status_code == 400, answer.text
    course = requests.post(clinic.url("/api/v1/courses"), headers=clinic.client(), timeout=10,
                           json={"therapist_id": "dr-sec", "session_type": "dit-session",
                                 "modality": "video", "first_start": "9999-12-31T10:00:00Z",
                                 "client": {"name": "Eve", "email": "eve@example.org"}})
    assert course.status_code == 400, course.text
    time_off = requests.post(clinic.url(f"{base}/time-off"), headers=clinic.admin_from(),
                             timeout=10, json={"start": "9999-12-31T00:00:00Z",
                                               "end": "9999-12-31T23:00:00-05:00"})
    assert time_off.status_code == 400, time_off.text
    assert requests.get(clinic.url("/ready"), headers=clinic.client(), timeout=10).ok


def test_deep_json_is_a_400_and_a_long_chunked_body_a_413(clinic):
    deep = requests.post(clinic.url("/api/v1/bookings"), data=b"[" * 65_000,
                         headers={**clinic.client(), "Content-Type": "application/json"},
                         timeout=10)
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "invalid_request"

    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"reason": "'
        for _ in range(total // 1024):
            yield b"x" * 1024
        yield b'"}'

    headers = {**clinic.client(), "Content-Type": "application/json"}
    big = requests.post(clinic.url("/api/v1/holds"), data=chunks(80 * 1024), headers=headers,
                        timeout=10)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    # A small chunked body is read whole, as if it had a Content-Length.
    small = requests.post(clinic.url("/api/v1/holds"), headers=headers, timeout=10,
                          data=iter([b'{"therapist_id": "dr-sec", ', b'"session_type": "x"}']))
    assert small.status_code == 400
    fields = {f["field"] for f in small.json()["error"]["details"]["fields"]}
    assert "modality" in fields and "therapist_id" not in fields


# --- finding 2: the logs of the whole run ------------------------------------------------------


def test_no_token_or_feed_secret_reaches_a_log(clinic):
    token = therapist_token(clinic)
    booking = book(clinic, start_at(days=4, hour=10), phone="+447700900123")
    manage, booking_id = booking["manage_token"], booking["id"]
    feed = requests.get(clinic.url("/api/v1/therapists/dr-sec/calendar-feed"), timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).json()["url"]
    SECRETS.append(feed.rsplit("/", 1)[1].removesuffix(".ics"))
    for url in (feed, clinic.url(f"/manage?token={manage}&booking={booking_id}"),
                clinic.url(f"/api/v1/bookings/{booking_id}?token={manage}"),
                clinic.url(f"/api/v1/bookings/{booking_id}.ics?token={manage}")):
        assert requests.get(url, headers=clinic.client(), timeout=10).status_code == 200, url
    assert requests.get(clinic.url("/api/v1/bookings/nope?token=mng_wrongwrongwrongwrong"),
                        timeout=10, headers=clinic.client()).status_code in (401, 404)
    cancelled = requests.post(clinic.url(f"/api/v1/bookings/{booking_id}/cancel"), json={},
                              headers={**clinic.client(), "Authorization": f"Bearer {manage}"},
                              timeout=10)
    assert cancelled.status_code == 200
    # Wait for the emails (whose manage links carry tokens) to be composed and sent.
    deadline = time.monotonic() + 60
    while True:
        sent = requests.get(clinic.url(f"/api/v1/notifications?booking_id={booking_id}"),
                            headers=clinic.admin, timeout=10).json()
        to_client = {n["kind"] for n in sent
                     if n["status"] == "sent" and n["recipient"] == "ann@example.org"}
        if {"confirmation", "cancellation"} <= to_client:
            break
        assert time.monotonic() < deadline, sent
        time.sleep(0.5)

    with open(clinic.log.name, encoding="utf-8", errors="replace") as file:
        log = file.read()
    assert '"GET /manage HTTP/1.1" 200' in log  # the access log is on, without its query
    assert "/ical/…" in log
    leaked = [secret for secret in SECRETS if secret in log]
    assert leaked == [], f"{len(leaked)} secrets in {clinic.log.name}"
    assert len(SECRETS) >= 4


# --- finding 4: the admin token, and compose's secrets -----------------------------------------


@pytest.mark.parametrize("token", ["change-me", "e2e-admin-token"])
def test_the_gateway_refuses_a_weak_admin_token_in_one_line(token, tmp_path):
    env = {**os.environ, "CLINIC_ADMIN_TOKEN": token, "GATEWAY_PORT": str(free_port()),
           "CLINIC_DATA_DIR": str(tmp_path)}
    for command in (["clinic.cli", "run", "--config", "gateway/config.yml",
                     "gateway.service:GatewayService"], ["clinic.supervisor"]):
        ran = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, env=env, timeout=60,
                             capture_output=True, text=True)
        assert ran.returncode == 2, ran.stderr
        lines = (ran.stdout + ran.stderr).strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("refusing to start: CLINIC_ADMIN_TOKEN")
        assert token not in lines[0]  # a refusal does not repeat the secret


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed "
                    "(.ci/run installs it)")
def test_compose_will_not_start_without_its_secrets(tmp_path):
    secrets = ("CLINIC_ADMIN_TOKEN", "AVAILABILITY_AMQP_PASSWORD", "BOOKING_AMQP_PASSWORD",
               "NOTIFICATIONS_AMQP_PASSWORD", "PROGRESS_AMQP_PASSWORD", "GATEWAY_AMQP_PASSWORD",
               "RABBITMQ_ADMIN_PASSWORD")
    given = {name: f"{name.lower()}-{uuid.uuid4().hex}" for name in secrets}
    clean = {k: v for k, v in os.environ.items() if k not in secrets}
    (tmp_path / "empty.env").write_text("")  # not a developer's own .env
    check = ["docker-compose", "--env-file", str(tmp_path / "empty.env"), "--project-directory",
             ROOT, "-f",
             os.path.join(ROOT, "docker-compose.yml"), "config"]
    ok = subprocess.run(check, env={**clean, **given}, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "change-me" not in ok.stdout and "guest" not in ok.stdout
    assert f"amqp://notifications:{given['NOTIFICATIONS_AMQP_PASSWORD']}@" in ok.stdout
    for missing in secrets:
        refused = subprocess.run(check, capture_output=True, text=True, timeout=60,
                                 env={**clean, **{k: v for k, v in given.items()
                                                  if k != missing}})
        assert refused.returncode != 0 and missing in refused.stderr, missing
