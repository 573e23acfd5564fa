"""Outside calendars against real servers the tests start: Radicale (a CalDAV server, read through
its plain iCalendar export) and a small HTTP server that misbehaves on purpose (304, 500, slow,
10 MB, a redirect to a private address). The availability service runs on the real broker, on
SQLite and PostgreSQL; slots, course options and the booking check are asked over RPC.

The tests' servers listen on loopback, so the service is told EXTERNAL_CALENDAR_ALLOW_PRIVATE=1,
except where the refusal itself is tested.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import requests
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine, text

from clinic.access import Caller
from clinic.errors import InvalidRequest, NotFound, SlotUnavailable, Unauthorized
from clinic.events import Event
from services.availability.service import AvailabilityService
from tests.conftest import free_port

ADMIN = Caller(kind="admin").to_rpc()
LONDON = ZoneInfo("Europe/London")
WEEKDAYS = [{"weekday": day, "start": "09:00", "end": "13:00", "modalities": ["video"]}
            for day in ("monday", "tuesday", "wednesday", "thursday", "friday")]


def next_october_change() -> date:
    """The last Sunday of the next October (London's clocks go back), at least a month on."""
    year = date.today().year + (1 if date.today() >= date(date.today().year, 9, 15) else 0)
    day = date(year, 10, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)


CHANGE = next_october_change()
TUESDAY_BEFORE = CHANGE - timedelta(days=19)  # three Tuesdays before the change, then after


def ics(day: date, hour: int = 10) -> str:
    return f"{day:%Y%m%d}T{hour:02d}0000"


def vcalendar(*events: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//clinic tests//EN", *events,
                        "END:VCALENDAR", ""])


def vevent(uid: str, *lines: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z",
                        "SUMMARY:Supervision (private)", *lines, "END:VEVENT"])


def weekly_with_exceptions() -> list[str]:
    """Tuesdays 10:00-11:00 London, six weeks across the change; the second is EXDATE'd and the
    fourth (the first after the change) moved to Wednesday 11:00."""
    first, fourth = TUESDAY_BEFORE, TUESDAY_BEFORE + timedelta(days=21)
    series = vevent("weekly", f"DTSTART;TZID=Europe/London:{ics(first)}",
                    f"DTEND;TZID=Europe/London:{ics(first, 11)}", "RRULE:FREQ=WEEKLY;COUNT=6",
                    f"EXDATE;TZID=Europe/London:{ics(first + timedelta(days=7))}")
    moved = vevent("weekly", f"RECURRENCE-ID;TZID=Europe/London:{ics(fourth)}",
                   f"DTSTART;TZID=Europe/London:{ics(fourth + timedelta(days=1), 11)}",
                   f"DTEND;TZID=Europe/London:{ics(fourth + timedelta(days=1), 12)}")
    return [series, moved]


ALL_DAY = TUESDAY_BEFORE + timedelta(days=16)  # the Thursday before the change
TRANSPARENT = CHANGE + timedelta(days=1)  # the Monday after it


def other_events() -> dict[str, list[str]]:
    return {"all-day": [vevent("all-day", f"DTSTART;VALUE=DATE:{ALL_DAY:%Y%m%d}")],
            "free": [vevent("free", f"DTSTART;TZID=Europe/London:{ics(TRANSPARENT)}",
                   f"DTEND;TZID=Europe/London:{ics(TRANSPARENT, 11)}", "TRANSP:TRANSPARENT")]}


# --- the servers ------------------------------------------------------------------------------


class Radicale:
    """A real CalDAV server with anonymous read and write (a rights file allows anyone)."""

    def __init__(self, folder) -> None:
        rights = folder / "rights"
        rights.write_text("[anyone]\nuser: .*\ncollection: .*\npermissions: RrWw\n")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{self.port}",
             "--storage-filesystem-folder", str(folder / "store"), "--auth-type", "none",
             "--rights-type", "from_file", "--rights-file", str(rights)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(self.base + "/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("radicale did not start") from None
                time.sleep(0.1)

    def calendar(self, owner: str, name: str) -> str:
        """A new calendar (MKCALENDAR, as its owner); returns its plain iCalendar export URL."""
        name = f"{name}-{uuid.uuid4().hex[:8]}"  # one server serves every test of the module
        auth = (owner, "x")
        requests.request("PROPFIND", f"{self.base}/{owner}/", auth=auth, timeout=5)
        made = requests.request("MKCALENDAR", f"{self.base}/{owner}/{name}/", auth=auth,
                                timeout=5)
        assert made.status_code == 201, made.text
        return f"{self.base}/{owner}/{name}/"

    def put(self, calendar_url: str, uid: str, events: list[str]) -> None:
        """One calendar object: a UID's event and its exceptions."""
        answer = requests.put(f"{calendar_url}{uid}.ics", data=vcalendar(*events).encode(),
                              headers={"Content-Type": "text/calendar"}, timeout=5)
        assert answer.status_code in (201, 204), answer.text

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def radicale(tmp_path_factory) -> Iterator[Radicale]:
    server = Radicale(tmp_path_factory.mktemp("radicale"))
    yield server
    server.stop()


class Misbehaving(BaseHTTPRequestHandler):
    """/good.ics (with ETag; 304 to If-None-Match), /broken (500 once told), /slow, /huge,
    /to-private (a redirect to another loopback address), /to-metadata."""

    protocol_version = "HTTP/1.1"
    body = vcalendar(vevent("one", f"DTSTART;TZID=Europe/London:{ics(TUESDAY_BEFORE)}",
                            f"DTEND;TZID=Europe/London:{ics(TUESDAY_BEFORE, 11)}")).encode()
    seen: list[tuple[str, str | None]] = []
    failing = threading.Event()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        Misbehaving.seen.append((self.path, self.headers.get("If-None-Match")))
        port = self.server.server_address[1]
        if self.path == "/good.ics" or (self.path == "/broken" and not self.failing.is_set()):
            if self.headers.get("If-None-Match") == '"v1"':
                return self._answer(304, b"", {"ETag": '"v1"'})
            return self._answer(200, self.body, {"ETag": '"v1"'})
        if self.path == "/broken":
            return self._answer(500, b"oops")
        if self.path == "/slow":
            time.sleep(4)
            return self._answer(200, self.body)
        if self.path == "/huge":
            return self._answer(200, b"X" * (10 * 1024 * 1024))
        if self.path == "/to-private":
            return self._answer(302, b"", {"Location": f"http://127.0.0.2:{port}/good.ics"})
        if self.path == "/to-metadata":
            return self._answer(302, b"", {"Location": "http://169.254.169.254/latest/"})
        self._answer(404, b"")

    def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


@pytest.fixture(scope="module")
def misbehaving() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- the service ------------------------------------------------------------------------------


class Availability:
    def __init__(self, container, config: dict) -> None:
        self.container = container
        self.config = config

    def call(self, method: str, *args):
        with ClusterRpcProxy(self.config) as cluster:
            return getattr(cluster.availability, method)(*args)

    def link(self, url: str) -> dict:
        return self.call("link_outside_calendar", ADMIN, "ann", {"url": url})

    def status(self) -> dict:
        return self.call("outside_calendar", ADMIN, "ann")

    def wait_for(self, condition: Callable[[dict], bool], timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.status()
            if condition(found):
                return found
            assert time.monotonic() < deadline, f"status stayed {found}"
            time.sleep(0.1)

    def slot_hours(self, first: date, last: date) -> dict[date, list[int]]:
        found = self.call("find_slots", "ann", "dit-session", "video", first.isoformat(),
                          last.isoformat())
        hours: dict[date, list[int]] = {}
        for slot in found["slots"]:
            local = datetime.fromisoformat(slot["start"]).astimezone(LONDON)
            hours.setdefault(local.date(), []).append(local.hour)
        return hours

    def start_at(self, day: date, hour: int) -> str:
        return datetime(day.year, day.month, day.day, hour, tzinfo=LONDON).isoformat()


@pytest.fixture
def start_availability(container_factory, service_config):
    def start(**settings: str) -> Availability:
        config = {**service_config, "EXTERNAL_CALENDAR_POLL_SECONDS": "1",
                  "EXTERNAL_CALENDAR_TIMEOUT_SECONDS": "1",
                  "EXTERNAL_CALENDAR_ALLOW_PRIVATE": "1", **settings}
        container = container_factory(AvailabilityService, config)
        container.start()
        service = Availability(container, config)
        service.call("create_therapist", ADMIN, {"id": "ann", "name": "Ann",
                                                  "modalities": ["video"]})
        service.call("put_schedule", ADMIN, "ann", {"weekly": WEEKDAYS, "horizon_days": 1000})
        return service

    return start


def test_radicale_calendar_blocks_slots_courses_and_bookings(radicale, start_availability):
    calendar = radicale.calendar("ann", "work")
    radicale.put(calendar, "weekly", weekly_with_exceptions())
    for uid, events in other_events().items():
        radicale.put(calendar, uid, events)
    service = start_availability()

    assert service.link(calendar) == {"url": calendar, "status": "pending"}
    status = service.wait_for(lambda s: s["status"] != "pending")
    assert status["status"] == "ok" and status["last_error"] is None
    assert status["busy_count"] == 6  # 4 Tuesdays, the moved Wednesday, the all-day Thursday

    t = TUESDAY_BEFORE
    hours = service.slot_hours(t - timedelta(days=1), t + timedelta(days=36))
    assert hours[t] == [9, 11, 12]  # busy 10-11
    assert hours[t + timedelta(days=7)] == [9, 10, 11, 12]  # EXDATE
    assert hours[t + timedelta(days=14)] == [9, 11, 12]  # before the change
    assert ALL_DAY not in hours  # all day, in London
    assert hours[TRANSPARENT] == [9, 10, 11, 12]  # transparent: free
    assert hours[t + timedelta(days=21)] == [9, 10, 11, 12]  # moved away ...
    assert hours[t + timedelta(days=22)] == [9, 10, 12]  # ... to Wednesday 11:00
    assert hours[t + timedelta(days=28)] == [9, 11, 12]  # after the change: still 10:00 local
    assert hours[t + timedelta(days=35)] == [9, 11, 12]

    options = service.call("course_options", "ann", "dit-session", "video", 4,
                           t.isoformat(), None, None)["options"]
    offered = {(o["weekday"], o["local_time"]) for o in options
               if datetime.fromisoformat(o["sessions"][0]).astimezone(LONDON).date() == t}
    assert ("tuesday", "09:00") in offered and ("tuesday", "10:00") not in offered
    thursdays = [o for o in options if o["weekday"] == "thursday"
                 and datetime.fromisoformat(o["sessions"][0]).astimezone(LONDON).date()
                 <= ALL_DAY <= datetime.fromisoformat(o["sessions"][-1]).astimezone(LONDON).date()]
    assert thursdays == []

    with pytest.raises(SlotUnavailable):
        service.call("check_session", "ann", "dit-session", "video", service.start_at(t, 10))
    assert service.call("check_session", "ann", "dit-session", "video",
                        service.start_at(t + timedelta(days=7), 10))["start"]
    course = service.call("check_course", "ann", "dit-session", "video",
                          service.start_at(t + timedelta(days=7), 10), 4, None)
    assert course["conflicts"] == [
        datetime(d.year, d.month, d.day, 10, tzinfo=LONDON).astimezone(UTC).isoformat()
        for d in (t + timedelta(days=14), t + timedelta(days=28))]

    # No titles: the therapist's week grid gets times only.
    busy = service.call("outside_busy_times", ADMIN, "ann", t.isoformat(), t.isoformat(), None)
    assert busy["busy"] == [{"start": service.start_at(t, 10), "end": service.start_at(t, 11)}]

    service.call("unlink_outside_calendar", ADMIN, "ann")
    assert service.slot_hours(t, t)[t] == [9, 10, 11, 12]
    with pytest.raises(NotFound):
        service.status()


def test_a_new_outside_event_over_a_booking_flags_it_once(radicale, start_availability,
                                                          service_config, database_urls):
    calendar = radicale.calendar("ann", "flags")
    radicale.put(calendar, "all-day", other_events()["all-day"])
    service = start_availability()
    day = TUESDAY_BEFORE + timedelta(days=7)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=LONDON)
    booking = {"id": "b-1", "status": "confirmed", "therapist_id": "ann",
               "session_type": "dit-session", "modality": "video",
               "start": start.isoformat(), "end": (start + timedelta(minutes=50)).isoformat(),
               "blocked_end": (start + timedelta(minutes=60)).isoformat(), "room": None,
               "sequence": 0}
    with entrypoint_waiter(service.container, "on_booking_confirmed", timeout=10):
        event_dispatcher(service.config)("booking", "booking_confirmed", Event(
            "booking_confirmed", {"booking": booking}, "booking").to_payload())
    service.link(calendar)
    assert service.wait_for(lambda s: s["status"] == "ok")["conflicts"] == []

    radicale.put(calendar, "clash", [vevent("clash", f"DTSTART;TZID=Europe/London:{ics(day, 9)}",
                                            f"DTEND;TZID=Europe/London:{ics(day, 11)}")])
    status = service.wait_for(lambda s: s["conflicts"] != [])
    assert [c["booking_id"] for c in status["conflicts"]] == ["b-1"]
    for _ in range(2):  # two more polls: the flag stays, and is announced once
        synced = service.status()["last_synced_at"]
        service.wait_for(lambda s, synced=synced: s["last_synced_at"] != synced)
    assert [c["booking_id"] for c in service.status()["conflicts"]] == ["b-1"]
    engine = create_engine(database_urls["availability"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT payload FROM outbox WHERE type = "
                                           "'outside_conflict_found'")).scalars().all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    payload = rows[0] if isinstance(rows[0], dict) else json.loads(rows[0])
    assert set(payload["data"]) == {"therapist_id", "booking_id", "start", "end", "busy_start",
                                    "busy_end"}  # ids and times only
    assert "Supervision" not in str(payload)


def test_conditional_get_and_a_failing_feed_keeping_its_last_good_times(misbehaving,
                                                                        start_availability):
    service = start_availability()
    Misbehaving.failing.clear()
    Misbehaving.seen.clear()
    service.link(misbehaving + "/broken")
    service.wait_for(lambda s: s["status"] == "ok")
    # The next polls ask conditionally and get 304: the copy stands.
    deadline = time.monotonic() + 10
    while not any(path == "/broken" and tag == '"v1"' for path, tag in Misbehaving.seen):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert service.wait_for(lambda s: s["status"] == "ok")["busy_count"] == 1

    Misbehaving.failing.set()
    status = service.wait_for(lambda s: s["status"] == "failing")
    assert status["last_error"] == "The calendar server answered HTTP 500."
    assert status["busy_count"] == 1
    assert TUESDAY_BEFORE not in [d for d, h in service.slot_hours(
        TUESDAY_BEFORE, TUESDAY_BEFORE).items() if 10 in h]
    with pytest.raises(SlotUnavailable):
        service.call("check_session", "ann", "dit-session", "video",
                     service.start_at(TUESDAY_BEFORE, 10))


@pytest.mark.parametrize("path, error", [
    ("/slow", "did not answer within 1 seconds"),
    ("/huge", "larger than 5 MiB"),
])
def test_slow_and_huge_feeds_fail_without_stalling_the_service(misbehaving, start_availability,
                                                               path, error):
    service = start_availability()
    service.link(misbehaving + path)
    began = time.monotonic()
    assert service.call("ping") == "pong"  # the fetch runs beside the workers
    assert time.monotonic() - began < 1
    status = service.wait_for(lambda s: s["status"] == "failing")
    assert error in status["last_error"]
    assert misbehaving not in status["last_error"]
    assert service.slot_hours(TUESDAY_BEFORE, TUESDAY_BEFORE)[TUESDAY_BEFORE] == [9, 10, 11, 12]


def test_private_addresses_are_refused_at_link_and_on_redirect(misbehaving, start_availability):
    # The test server itself is trusted by address; everything else private stays refused.
    service = start_availability(EXTERNAL_CALENDAR_ALLOW_PRIVATE="0",
                                 EXTERNAL_CALENDAR_ALLOW_ADDRESSES="127.0.0.1")
    for url, reason in ((misbehaving.replace("127.0.0.1", "127.0.0.2") + "/good.ics",
                         "loopback"),
                        ("http://169.254.169.254/latest/meta-data/", "link-local"),
                        ("http://10.0.0.8/cal.ics", "private"),
                        ("file:///etc/passwd", "Only http and https"),
                        ("https://no-such-host.invalid/a.ics", "could not be found")):
        with pytest.raises(InvalidRequest) as refused:
            service.link(url)
        assert refused.value.details["fields"][0]["field"] == "url"
        assert reason in refused.value.details["fields"][0]["message"]

    with pytest.raises(Unauthorized):  # who asks comes before what they ask
        service.call("link_outside_calendar", Caller().to_rpc(), "ann", {"url": "ftp://x"})

    service.link(misbehaving + "/to-private")
    status = service.wait_for(lambda s: s["status"] == "failing")
    assert "loopback" in status["last_error"]
    service.link(misbehaving + "/to-metadata")
    status = service.wait_for(lambda s: s["status"] == "failing" and "link-local"
                              in (s["last_error"] or ""))
    service.link(misbehaving + "/good.ics")
    assert service.wait_for(lambda s: s["status"] != "pending")["status"] == "ok"
