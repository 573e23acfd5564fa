"""Load driver: mixed clinic traffic at a steady rate through the gateway from many clients.

Each client has its own keep-alive ``requests.Session`` and owns one therapist and
one room (made through the admin API by ``Load.prepare``), so clients never compete for time.
Requests are fired on the clock: a dispatcher releases one every ``1 / rate`` seconds, round
robin over the clients, to a pool of threads, whatever became of the earlier ones (open loop).
A client sends one request at a time (its state is what it was told), so a request whose client
is still waiting for its previous answer, or that finds no free thread, starts late: the
report counts those (``late``, more than ``LATE_SECONDS`` after its time). The mix: slot search
30, course options 10, book one session 18, book a 16-session course 4, reschedule a session 10,
cancel one 8, poll the therapist's iCal feed with ``If-None-Match`` 12, read a booking with its
manage token 8. It stops after ``duration`` seconds or ``max_requests`` requests, and prints per
endpoint the count, req/s, p50/p95/p99 latency of answered requests and the status counts.

Under normal operation there must be no 409 and no 5xx: a client only asks for times that the
API offered and that do not overlap anything it has claimed itself (a create whose answer it
never got counts as claimed). Resilience tests run it in the background while they break
things, then call ``settle()`` to re-send every unanswered POST with its Idempotency-Key and
compare ``bookings``/``courses`` (what clients were told) with the databases:

    from load import Load, Outcome, report
    load = Load(base, admin_token, clients=8, rate=20, duration=60)
    load.prepare(); load.start(); ...; load.wait(); load.settle()

Rooms are one clinic-wide pool (docs/http-contract.md: an in-person session takes any free
room), so each client's therapist offers in-person sessions only in weekly hours no other
client's therapist offers them: two clients' in-person bookings never overlap and never race for
a room. That holds within one ``Load``; two Loads on one clinic should not both book in person
(``in_person=0``).

It prints the goals of issue 18 beside its figures (80 req/s sustained at 16 clients, fewer
than 1% of requests late, p95 under 250 ms; no 409, 5xx or unsettled POST) and exits 1 on a miss.

Run: `python bench/load.py [--clients 16] [--rate 80] [--duration 30] [--requests N]
[--base-url URL --admin-token T]` (without --base-url it starts the clinic on PostgreSQL and its
own RabbitMQ vhost with bench/_system.py; needs RabbitMQ and PostgreSQL as `make test`).
"""

from __future__ import annotations

import argparse
import queue
import random
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from _system import Goals, System, percentile  # also puts the project on sys.path

SLOTS = "GET /api/v1/therapists/{id}/slots"
OPTIONS = "GET /api/v1/therapists/{id}/course-options"
BOOK = "POST /api/v1/bookings"
COURSE = "POST /api/v1/courses"
RESCHEDULE = "POST /api/v1/bookings/{id}/reschedule"
CANCEL = "POST /api/v1/bookings/{id}/cancel"
FEED = "GET /ical/{secret}.ics"
GET_BOOKING = "GET /api/v1/bookings/{id}"
ENDPOINTS = (SLOTS, OPTIONS, BOOK, COURSE, RESCHEDULE, CANCEL, FEED, GET_BOOKING)

# The operation mix (relative weights).
WEIGHTS = {"slots": 30, "options": 10, "book": 18, "course": 4, "reschedule": 10, "cancel": 8,
           "feed": 12, "get": 8}
COURSE_SESSIONS = 16
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_HOURS = range(7, 21)  # schedules run 07:00-21:00 UTC every day, one slot an hour
BUFFER_MINUTES = 10
# At least 3 days ahead, so no reminder falls due and no cancellation is late during a run (the
# hour is a margin for the run itself); within 120 days, so a course's 16th week fits the horizon.
LEAD = timedelta(days=3, hours=1)
REACH = timedelta(days=120)
SLOT_WINDOW_DAYS = 14
LATE_SECONDS = 0.05  # a request that starts later than this after its time is late
POOL_THREADS = 64
# Issue 18: the mixed load at 16 clients sustains 2x the rate measured before (40 req/s), p95
# under 250 ms.
GOAL_RATE, GOAL_P95_MS = 80.0, 250.0


@dataclass(frozen=True)
class Outcome:
    endpoint: str  # method + path template, e.g. "POST /api/v1/bookings"
    started: float  # time.time() when sent
    finished: float  # time.time() when answered or failed
    status: int | None  # HTTP status; None when there was no HTTP answer
    code: str | None  # error.code from the JSON error body for 4xx/5xx, else None
    error: str | None  # for status None: what happened (exception class and message)
    created: str | None  # id of the booking/course a 201 created
    retry: bool = False  # a repeat of an earlier unanswered/5xx POST (same Idempotency-Key)


Interval = tuple[datetime, datetime]  # [start, end + buffer): the time a session blocks


@dataclass
class Session:
    """A booking (a single session or one of a course's) as its client knows it."""

    id: str
    modality: str
    start: datetime
    end: datetime
    token: str  # its manage token (a course's sessions share the course's)
    status: str = "confirmed"
    course_id: str | None = None


@dataclass
class Post:
    """A POST whose answer changes what the client knows; kept for settle() if unanswered."""

    kind: str  # "book" | "course" | "reschedule" | "cancel"
    endpoint: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    claim: str | None = None  # key in Client.claims of the time it would take
    booking_id: str | None = None  # for reschedule and cancel


def unanswered(status: int | None) -> bool:
    """No answer, or a server error: the change may or may not have happened.

    docs/http-contract.md names only 503 for a backend that did not answer; any other 5xx is
    treated the same way, as it gives no more certainty (and under normal operation there must
    be none)."""
    return status is None or status >= 500


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def weekly_rules(index: int, clients: int) -> list[dict[str, Any]]:
    """07:00-21:00 video every day; in person only in the week's hours k with k % clients ==
    index (k counts the 98 hours of the week), so no two clients ever want a room at once."""
    rules: list[dict[str, Any]] = []
    for day, weekday in enumerate(WEEKDAYS):
        for hour in DAY_HOURS:
            k = day * len(DAY_HOURS) + hour - DAY_HOURS.start
            offered = ["in_person", "video"] if k % clients == index else ["video"]
            if rules and rules[-1]["weekday"] == weekday and rules[-1]["modalities"] == offered:
                rules[-1]["end"] = f"{hour + 1:02d}:00"  # extend the run of equal hours
            else:
                rules.append({"weekday": weekday, "start": f"{hour:02d}:00",
                              "end": f"{hour + 1:02d}:00", "modalities": offered})
    return rules


class Client:
    """One simulated client: its therapist, connection, and what it has been told."""

    def __init__(self, load: Load, index: int, therapist: str, feed_url: str) -> None:
        self.load = load
        self.index = index
        self.therapist = therapist
        self.feed_url = feed_url
        self.rng = random.Random(load.seed * 1_000_003 + index)
        self.http = requests.Session()
        self.busy = threading.Lock()  # one request at a time: the state below is its answers
        self.etag: str | None = None
        # Free times the API offered, per modality (start -> end), and course options.
        self.slots: dict[str, dict[datetime, datetime]] = {"video": {}, "in_person": {}}
        self.options: dict[str, list[list[datetime]]] = {"video": [], "in_person": []}
        # Time this client holds or may hold: booking id or "pending:<key>" -> intervals.
        self.claims: dict[str, list[Interval]] = {}
        self.sessions: dict[str, Session] = {}
        self.doubt: set[str] = set()  # bookings with an unanswered cancel/reschedule
        self.made = 0  # bookings and courses asked for (client names)

    # --- choosing ---------------------------------------------------------------------------

    def step(self) -> None:
        """Send exactly one request, of an operation drawn by weight."""
        operation = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        getattr(self, "op_" + operation)()

    def modality(self) -> str:
        return "in_person" if self.rng.random() < self.load.in_person else "video"

    def free(self, start: datetime, end: datetime) -> bool:
        blocked = end + timedelta(minutes=BUFFER_MINUTES)
        return not any(start < taken_end and taken_start < blocked
                       for intervals in self.claims.values()
                       for taken_start, taken_end in intervals)

    def bookable(self, start: datetime) -> bool:
        now = datetime.now(UTC)
        return now + LEAD <= start <= now + REACH

    def free_slot(self, modality: str) -> tuple[datetime, datetime] | None:
        offered = list(self.slots[modality].items())
        self.rng.shuffle(offered)
        return next(((start, end) for start, end in offered
                     if self.bookable(start) and self.free(start, end)), None)

    def movable(self) -> list[Session]:
        """Confirmed sessions far enough ahead to cancel or move, with nothing in doubt."""
        return [s for s in self.sessions.values() if s.status == "confirmed"
                and s.id not in self.doubt and self.bookable(s.start)]

    def claim(self, intervals: list[tuple[datetime, datetime]]) -> str:
        key = f"pending:{uuid.uuid4()}"
        self.claims[key] = [(s, e + timedelta(minutes=BUFFER_MINUTES)) for s, e in intervals]
        return key

    def client_body(self) -> dict[str, str]:
        self.made += 1
        name = f"{self.load.prefix}{self.index}x{self.made}"
        return {"name": f"Client {name}", "email": f"{name}@example.org"}

    # --- operations (each sends one request) ------------------------------------------------

    def op_slots(self, modality: str | None = None) -> None:
        modality = modality or self.modality()
        today = datetime.now(UTC).date()
        first = today + timedelta(days=self.rng.randint(3, 120 - SLOT_WINDOW_DAYS + 1))
        last = first + timedelta(days=SLOT_WINDOW_DAYS - 1)
        answer = self.send("GET", SLOTS, f"/api/v1/therapists/{self.therapist}/slots", params={
            "session_type": self.load.session_type, "modality": modality, "tz": "UTC",
            "from": first.isoformat(), "to": last.isoformat()})
        if answer is not None and answer[0] == 200:
            cache = self.slots[modality]
            for start in [s for s in cache if first <= s.astimezone(UTC).date() <= last]:
                del cache[start]  # the window's answer replaces what was known of it
            for slot in answer[1]["slots"]:
                cache[instant(slot["start"])] = instant(slot["end"])

    def op_options(self, modality: str | None = None) -> None:
        modality = modality or self.modality()
        first = datetime.now(UTC).date() + timedelta(days=self.rng.randint(3, 100))
        answer = self.send("GET", OPTIONS,
                           f"/api/v1/therapists/{self.therapist}/course-options", params={
                               "session_type": self.load.session_type, "modality": modality,
                               "sessions": COURSE_SESSIONS, "tz": "UTC",
                               "from": first.isoformat()})
        if answer is not None and answer[0] == 200:
            self.options[modality] = [[instant(s) for s in option["sessions"]]
                                      for option in answer[1]["options"]]

    def op_book(self) -> None:
        modality = self.modality()
        slot = self.free_slot(modality)
        if slot is None:
            return self.op_slots(modality)
        body = {"therapist_id": self.therapist, "session_type": self.load.session_type,
                "modality": modality, "start": slot[0].isoformat(), "client": self.client_body()}
        self.post(Post("book", BOOK, "/api/v1/bookings", body, {}, claim=self.claim([slot])))

    def op_course(self) -> None:
        modality = self.modality()
        duration = self.load.duration_minutes
        options = list(self.options[modality])
        self.rng.shuffle(options)
        for starts in options:
            times = [(s, s + timedelta(minutes=duration)) for s in starts]
            if self.bookable(starts[0]) and all(self.free(s, e) for s, e in times):
                break
        else:  # nothing to book from: look for course times instead
            return self.op_options(modality)
        body = {"therapist_id": self.therapist, "session_type": self.load.session_type,
                "modality": modality, "first_start": starts[0].isoformat(),
                "sessions": COURSE_SESSIONS, "client": self.client_body()}
        self.post(Post("course", COURSE, "/api/v1/courses", body, {}, claim=self.claim(times)))

    def op_reschedule(self) -> None:
        candidates = self.movable()
        if not candidates:
            return self.op_slots()
        session = self.rng.choice(candidates)
        slot = self.free_slot(session.modality)
        if slot is None:
            return self.op_slots(session.modality)
        self.doubt.add(session.id)  # until the answer says where it is
        self.post(Post("reschedule", RESCHEDULE, f"/api/v1/bookings/{session.id}/reschedule",
                       {"start": slot[0].isoformat()}, self.auth(session),
                       claim=self.claim([slot]), booking_id=session.id))

    def op_cancel(self) -> None:
        candidates = self.movable()
        if not candidates:
            return self.op_slots()
        session = self.rng.choice(candidates)
        self.doubt.add(session.id)
        self.post(Post("cancel", CANCEL, f"/api/v1/bookings/{session.id}/cancel", {},
                       self.auth(session), booking_id=session.id))

    def op_feed(self) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        answer = self.send("GET", FEED, self.feed_url, headers=headers)
        if answer is not None and answer[0] == 200:
            self.etag = answer[2].get("ETag")

    def op_get(self) -> None:
        if not self.sessions:
            return self.op_slots()
        session = self.rng.choice(list(self.sessions.values()))
        self.send("GET", GET_BOOKING, f"/api/v1/bookings/{session.id}", headers=self.auth(session))

    @staticmethod
    def auth(session: Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {session.token}"}

    # --- sending and learning ---------------------------------------------------------------

    def send(self, method: str, endpoint: str, path: str, *, retry: bool = False,
             http: requests.Session | None = None, **kwargs: Any
             ) -> tuple[int, Any, requests.structures.CaseInsensitiveDict] | None:
        """One request, recorded as an Outcome; (status, JSON body or None, headers) or None."""
        started = time.time()
        try:
            response = (http or self.http).request(method, self.load.base_url + path,
                                                   timeout=self.load.timeout, **kwargs)
        except requests.RequestException as error:
            self.load.record(Outcome(endpoint, started, time.time(), None, None,
                                     f"{type(error).__name__}: {error}", None, retry))
            return None
        finished = time.time()
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None  # a feed, or a non-JSON error page (which the contract forbids)
        code = created = None
        if response.status_code >= 400 and isinstance(body, dict):
            error = body.get("error")
            code = error.get("code") if isinstance(error, dict) else None
        if response.status_code == 201 and isinstance(body, dict):
            created = body.get("id")
        self.load.record(Outcome(endpoint, started, finished, response.status_code, code, None,
                                 created, retry))
        return response.status_code, body, response.headers

    def post(self, post: Post, *, retry: bool = False,
             http: requests.Session | None = None) -> bool:
        """Send a POST with its Idempotency-Key; learn from a definitive answer (True), or
        keep the POST for settle() (False)."""
        headers = {**post.headers, "Idempotency-Key": post.headers.get("Idempotency-Key")
                   or str(uuid.uuid4())}
        post.headers = headers  # a re-send must carry the same key
        answer = self.send("POST", post.endpoint, post.url, json=post.body, headers=headers,
                           retry=retry, http=http)
        status = None if answer is None else answer[0]
        if unanswered(status):
            if not retry:
                self.load.keep(self, post)
            return False
        self.learn(post, status, answer[1] if isinstance(answer[1], dict) else {}, retry)
        return True

    def learn(self, post: Post, status: int, body: dict[str, Any], retry: bool) -> None:
        """Update claims and knowledge from a definitive answer to ``post``."""
        load = self.load
        if post.claim is not None:
            # The time asked for is now either one of the created bookings (claimed below
            # under their ids) or was refused: either way the pending claim goes.
            self.claims.pop(post.claim, None)
        if post.kind == "book" and status == 201:
            self.remember(body, body["manage_token"], None)
        elif post.kind == "course" and status == 201:
            with load.lock:
                load.courses[body["id"]] = body["status"]
                load.tokens[body["id"]] = body["manage_token"]
            for session in body["sessions"]:
                self.remember({"id": session["booking_id"], "modality": post.body["modality"],
                               "start": session["start"], "end": session["end"],
                               "status": session["status"]}, body["manage_token"], body["id"])
        elif post.kind == "reschedule":
            self.doubt.discard(post.booking_id)
            if status == 200:
                self.remember(body, self.sessions[post.booking_id].token,
                              self.sessions[post.booking_id].course_id)
        elif post.kind == "cancel":
            self.doubt.discard(post.booking_id)
            known = self.sessions[post.booking_id]
            if status == 200:
                self.remember(body, known.token, known.course_id)

    def remember(self, booking: dict[str, Any], token: str, course_id: str | None) -> None:
        known = self.sessions.get(booking["id"])
        start = instant(booking["start"]) if "start" in booking else known.start
        end = instant(booking["end"]) if "end" in booking else known.end
        session = Session(booking["id"], booking.get("modality") or known.modality, start, end,
                          token, booking["status"], course_id)
        self.sessions[session.id] = session
        if session.status == "confirmed":
            self.claims[session.id] = [(start, end + timedelta(minutes=BUFFER_MINUTES))]
        else:
            self.claims.pop(session.id, None)  # only a definitive cancel frees the time
        with self.load.lock:
            self.load.bookings[session.id] = session.status
            self.load.tokens[session.id] = token


class Load:
    """Mixed traffic from ``clients`` threads at ``rate`` requests/s in all (see the docstring)."""

    def __init__(self, base_url: str, admin_token: str, *, clients: int = 8, rate: float = 20.0,
                 duration: float = 30.0, max_requests: int | None = None, seed: int = 1,
                 timeout: float = 15.0, prefix: str = "load", in_person: float = 0.2) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.clients = clients
        self.rate = rate
        self.duration = duration
        self.max_requests = max_requests
        self.seed = seed
        self.timeout = timeout
        self.prefix = prefix
        self.in_person = in_person  # share of bookings, searches and courses in person
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.bookings: dict[str, str] = {}  # booking id -> "confirmed" | "cancelled"
        self.courses: dict[str, str] = {}  # course id -> "active" | "cancelled"
        self.tokens: dict[str, str] = {}  # booking or course id -> a manage token for it
        self.therapists: list[str] = []
        self.crashes: list[str] = []  # tracebacks of client threads that failed
        self.session_type = "dit-session"
        self.duration_minutes = 50
        self.began: float | None = None
        self.ended: float | None = None
        self._clients: list[Client] = []
        self._threads: list[threading.Thread] = []
        self._due: queue.Queue = queue.Queue()
        self.late = 0  # requests that started more than LATE_SECONDS after their time
        self.most_late = 0.0
        self._stop = threading.Event()
        self._sent = 0
        self._pending: list[tuple[Client, Post]] = []

    # --- set up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Per client one room, one therapist and its weekly schedule; its feed URL."""
        http = requests.Session()
        http.headers.update(self.admin)

        def call(method: str, path: str, expected: int, **kwargs: Any) -> Any:
            response = http.request(method, self.base_url + path, timeout=30, **kwargs)
            if response.status_code != expected:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json() if response.content else None

        types = call("GET", "/api/v1/session-types", 200)
        chosen = next((t for t in types if t["id"] == "dit-session"), types[0])
        self.session_type, self.duration_minutes = chosen["id"], chosen["duration_minutes"]
        for index in range(self.clients):
            therapist = f"{self.prefix}-{index}"
            call("POST", "/api/v1/rooms", 201,
                 json={"id": f"{therapist}-room", "name": f"Room {therapist}"})
            call("POST", "/api/v1/therapists", 201, json={
                "id": therapist, "name": f"Therapist {therapist}", "specialties": ["DIT"],
                "email": f"{therapist}@clinic.example",  # therapists are emailed too
                "modalities": ["in_person", "video"], "timezone": "UTC"})
            call("PUT", f"/api/v1/therapists/{therapist}/schedule", 200, json={
                "timezone": "UTC", "weekly": weekly_rules(index, self.clients),
                "buffer_minutes": BUFFER_MINUTES, "slot_interval_minutes": 60,
                "min_notice_hours": 0, "horizon_days": 365})
            feed = call("GET", f"/api/v1/therapists/{therapist}/calendar-feed", 200)["url"]
            # The path only: the load may reach the gateway through another address (a proxy).
            self._clients.append(Client(self, index, therapist,
                                        urllib.parse.urlsplit(feed).path))
            self.therapists.append(therapist)

    # --- running ----------------------------------------------------------------------------

    def start(self) -> None:
        if not self._clients:
            raise RuntimeError("call prepare() first")
        self.began = time.time()
        threads = [threading.Thread(target=self._fire, name="load-clock", daemon=True)]
        threads += [threading.Thread(target=self._work, name=f"load-{n}", daemon=True)
                    for n in range(POOL_THREADS)]
        self._threads = threads
        for thread in threads:
            thread.start()

    def _fire(self) -> None:
        """The clock: request n is due at began + n / rate, for client n mod clients."""
        deadline = self.began + self.duration
        count = 0
        while not self._stop.is_set():
            due = self.began + count / self.rate
            if due >= deadline or (due > time.time() and self._stop.wait(due - time.time())):
                break
            if not self._ticket():
                break
            self._due.put((self._clients[count % self.clients], due))
            count += 1
        for _ in range(POOL_THREADS):
            self._due.put(None)

    def _work(self) -> None:
        """A pool thread: sends each request as soon as its client is free."""
        while (item := self._due.get()) is not None:
            client, due = item
            if self._stop.is_set():  # stop(): what is still queued is not sent
                continue
            try:
                with client.busy:
                    late = time.time() - due
                    if late > LATE_SECONDS:
                        with self.lock:
                            self.late += 1
                            self.most_late = max(self.most_late, late)
                    client.step()
            except Exception:
                with self.lock:
                    self.crashes.append(traceback.format_exc())
                self._stop.set()

    def _ticket(self) -> bool:
        """One more request may go (max_requests counts across all clients)."""
        with self.lock:
            if self.max_requests is not None and self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def stop(self) -> None:
        """Ask the clients to finish early (each completes the request it is sending)."""
        self._stop.set()

    def wait(self) -> None:
        for thread in self._threads:
            thread.join()
        self.ended = time.time()
        if self.crashes:
            raise RuntimeError("a load client failed:\n" + self.crashes[0])

    def run(self) -> list[Outcome]:
        self.start()
        self.wait()
        return self.outcomes

    @property
    def elapsed(self) -> float:
        if self.began is None:
            return 0.0
        return (self.ended or time.time()) - self.began

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def keep(self, client: Client, post: Post) -> None:
        with self.lock:
            self._pending.append((client, post))

    @property
    def unsettled(self) -> list[Post]:
        """POSTs that still have no definitive answer."""
        with self.lock:
            return [post for _, post in self._pending]

    def course_sessions(self) -> set[str]:
        """Ids of the bookings that are sessions of a course."""
        return {session.id for client in self._clients for session in client.sessions.values()
                if session.course_id}

    def settle(self, seconds: float = 60) -> None:
        """Re-send every unanswered POST (same key and body) until each is answered."""
        deadline = time.time() + seconds
        http = requests.Session()
        while True:
            with self.lock:
                todo = list(self._pending)
            for client, post in todo:
                if client.post(post, retry=True, http=http):
                    with self.lock:
                        self._pending.remove((client, post))
            if not self.unsettled or time.time() >= deadline:
                return
            time.sleep(min(1.0, max(0.0, deadline - time.time())))


# --- reporting -------------------------------------------------------------------------------


def status_counts(outcomes: list[Outcome]) -> str:
    """E.g. "201:40 409:0 503:3 none:1" (409, 503 and none always shown)."""
    counts = Counter("none" if o.status is None else str(o.status) for o in outcomes)
    keys = sorted(set(counts) | {"409", "503", "none"}, key=lambda k: (k == "none", k))
    return " ".join(f"{key}:{counts[key]}" for key in keys)


def report(outcomes: list[Outcome], seconds: float) -> str:
    """Per endpoint: count, req/s, p50/p95/p99 of answered requests (ms), status counts."""
    seen = {o.endpoint for o in outcomes}
    order = [e for e in ENDPOINTS if e in seen] + sorted(seen - set(ENDPOINTS))
    lines = [f"{'endpoint':<42}{'count':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
             "  statuses"]
    for endpoint in [*order, "all"]:
        chosen = [o for o in outcomes if endpoint in ("all", o.endpoint)]
        ms = [(o.finished - o.started) * 1000 for o in chosen if o.status is not None]
        figures = (f"{percentile(ms, 0.50):9.1f}{percentile(ms, 0.95):9.1f}"
                   f"{percentile(ms, 0.99):9.1f}" if ms else f"{'-':>9}" * 3)
        lines.append(f"{endpoint:<42}{len(chosen):7d}{len(chosen) / max(seconds, 1e-9):8.2f}"
                     f"{figures}  {status_counts(chosen)}")
    return "\n".join(lines)


def failures(outcomes: list[Outcome]) -> Counter[str]:
    """Counts of every status that is not 2xx or 304 ("none" for no answer)."""
    return Counter("none" if o.status is None else str(o.status) for o in outcomes
                   if o.status is None or not (200 <= o.status < 300 or o.status == 304))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=GOAL_RATE,
                        help="requests/s from all clients")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--requests", type=int, default=None, help="stop after this many")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--base-url", help="a running gateway (else the clinic is started)")
    parser.add_argument("--admin-token", help="its CLINIC_ADMIN_TOKEN (with --base-url)")
    parser.add_argument("--prefix", default="load", help="therapist ids are <prefix>-<n>")
    args = parser.parse_args()
    if args.base_url:
        if not args.admin_token:
            parser.error("--base-url needs --admin-token")
        return drive(args, args.base_url, args.admin_token)
    with System() as system:
        return drive(args, system.base, system.admin_token)


def floor(base_url: str, requests_count: int = 200) -> list[float]:
    """The floor, measured in the same run on the idle clinic: ``GET /health`` from one
    keep-alive client (ms), what any request through the gateway costs at least; after a
    warm-up (the connection, the gateway's first requests)."""
    http = requests.Session()
    for _ in range(max(20, requests_count // 10)):
        http.get(base_url.rstrip("/") + "/health", timeout=10).raise_for_status()
    timings = []
    for _ in range(requests_count):
        began = time.perf_counter()
        http.get(base_url.rstrip("/") + "/health", timeout=10).raise_for_status()
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def drive(args: argparse.Namespace, base_url: str, admin_token: str) -> int:
    load = Load(base_url, admin_token, clients=args.clients, rate=args.rate,
                duration=args.duration, max_requests=args.requests, seed=args.seed,
                prefix=args.prefix)
    load.prepare()
    idle = floor(base_url)
    outcomes = list(load.run())
    answered = [o for o in outcomes if o.status is not None]
    print(f"{args.clients} clients, asked {args.rate:g} req/s for {args.duration:g} s"
          + (f" or {args.requests} requests" if args.requests else "")
          + f"; {len(load.therapists)} therapists, session type {load.session_type}")
    print(f"floor, GET /health idle: p50 {percentile(idle, 0.5):.2f} ms, "
          f"p95 {percentile(idle, 0.95):.2f} ms")
    print(report(outcomes, load.elapsed))
    served = [(o.finished - o.started) * 1000 for o in outcomes if o.status is not None]
    if served:
        print(f"all requests under load, p50: {percentile(served, 0.5) / percentile(idle, 0.5):.1f}"
              "x the floor")
    bad = failures(outcomes)
    pending = len(load.unsettled)
    if pending:
        load.settle()
        print(f"\nsettle(): {pending} unanswered POSTs re-sent")
        print(report(load.outcomes[len(outcomes):], load.elapsed))
    booked = Counter(load.bookings.values())
    print(f"\n{len(outcomes)} requests in {load.elapsed:.1f} s = "
          f"{len(outcomes) / load.elapsed:.1f} req/s ({len(answered)} answered); "
          f"non-2xx/304: {' '.join(f'{k}:{v}' for k, v in sorted(bad.items())) or 'none'}; "
          f"bookings confirmed {booked['confirmed']}, cancelled {booked['cancelled']}, "
          f"courses {len(load.courses)}; left unsettled {len(load.unsettled)}")
    print(f"requests that started over {LATE_SECONDS * 1000:.0f} ms after their time: "
          f"{load.late} of {len(outcomes)} (the latest {load.most_late * 1000:.0f} ms)")
    errors = [k for k in bad if k == "none" or k == "409" or k.startswith("5")]
    rate = len(outcomes) / load.elapsed
    p95 = percentile(served, 0.95) if served else float("inf")
    print("\ngoals (issue 18)")
    goals = Goals()
    goals.check(f"req/s sustained at {args.clients} clients", rate, f">= {GOAL_RATE:g}",
                rate >= GOAL_RATE * 0.97 and load.late <= len(outcomes) * 0.01)
    goals.check("p95 of all requests, ms", p95, f"< {GOAL_P95_MS:g}", p95 < GOAL_P95_MS)
    goals.check("409, 5xx, unanswered or left unsettled", len(errors) + len(load.unsettled),
                "0", not errors and not load.unsettled)
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
