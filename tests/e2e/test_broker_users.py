"""The clinic runs with a RabbitMQ user per service, each allowed only what it publishes and
consumes (clinic.broker_users, as docker-compose ships it), and those permissions stop what
they should: notifications cannot call booking's cancel, nor forge booking's events.

The test makes a vhost and four users through the management API (:15672), runs the services as
those users, books, reschedules, cancels and rotates a feed through the gateway, and deletes the
users and the vhost afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import amqp
import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from clinic.broker_users import GRANTS
from clinic.settings import SERVICES
from clinic.supervisor import PROCESSES
from tests.conftest import BROKER_ADMIN, Databases, free_port
from tests.e2e.test_booking import set_up_therapist

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN = urllib.parse.urlsplit(BROKER_ADMIN)
API = f"{ADMIN.scheme}://{ADMIN.hostname}:{ADMIN.port}/api"
AUTH = (ADMIN.username, ADMIN.password)


def management(method: str, path: str, body: dict | None = None) -> None:
    response = requests.request(method, f"{API}/{path}", auth=AUTH, json=body, timeout=10)
    assert response.status_code in (200, 201, 204), (path, response.text)


class RestrictedBroker:
    """A vhost with one user per service, as clinic.broker_users grants them."""

    def __init__(self) -> None:
        self.vhost = f"clinic_acl_{uuid.uuid4().hex[:10]}"
        self.suffix = uuid.uuid4().hex[:6]
        self.passwords = {name: secrets.token_urlsafe(18) for name in GRANTS}

    def user(self, service: str) -> str:
        return f"{service}-{self.suffix}"  # unique: other runs share this broker

    def uri(self, service: str) -> str:
        return (f"amqp://{self.user(service)}:{self.passwords[service]}@{ADMIN.hostname}:5672/"
                f"{self.vhost}")

    def create(self) -> None:
        vhost = urllib.parse.quote(self.vhost, safe="")
        management("PUT", f"vhosts/{vhost}")
        for name, grant in GRANTS.items():
            user = self.user(name)
            management("PUT", f"users/{user}", {"password": self.passwords[name], "tags": ""})
            management("PUT", f"permissions/{vhost}/{user}", grant.permissions())
            for topic in grant.topic_permissions():
                management("PUT", f"topic-permissions/{vhost}/{user}", topic)

    def delete(self) -> None:
        for name in GRANTS:
            requests.delete(f"{API}/users/{self.user(name)}", auth=AUTH, timeout=10)
        requests.delete(f"{API}/vhosts/{urllib.parse.quote(self.vhost, safe='')}", auth=AUTH,
                        timeout=10)


@pytest.fixture
def broker() -> Iterator[RestrictedBroker]:
    made = RestrictedBroker()
    made.create()
    yield made
    made.delete()


class Clinic:
    """The four processes, each logged in to the broker as itself."""

    def __init__(self, broker: RestrictedBroker, folder) -> None:
        self.databases = Databases("sqlite", str(folder))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        token = secrets.token_urlsafe(32)
        self.admin = {"Authorization": f"Bearer {token}"}
        self.env = {**os.environ, "CLINIC_DATA_DIR": str(folder), "GATEWAY_PORT": str(self.port),
                    "CLINIC_DEMO": "0", "CLINIC_ADMIN_TOKEN": token, "PYTHONUNBUFFERED": "1",
                    "NOTIFICATIONS_POLL_SECONDS": "1", "PYTHONPATH": ROOT,
                    **{f"{s.upper()}_DATABASE_URL": self.databases.new(s) for s in SERVICES}}
        self.log = open(folder / "clinic.log", "ab")  # noqa: SIM115 (open while they run)
        self.processes = [
            subprocess.Popen([sys.executable, "-m", "clinic.cli", "run", "--config", config,
                              service], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                             env={**self.env, "AMQP_URI": broker.uri(name)})
            for name, (config, service) in PROCESSES.items()]

    def url(self, path: str) -> str:
        return self.base_url + path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url("/ready"), timeout=3).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert all(p.poll() is None for p in self.processes), self.tail()
            time.sleep(0.3)
        raise AssertionError(self.tail())

    def tail(self) -> str:
        return Path(self.log.name).read_text()[-5000:]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()
        self.databases.drop_all()


def test_the_clinic_runs_with_a_broker_user_per_service_and_no_more(broker, tmp_path):
    clinic = Clinic(broker, tmp_path)
    try:
        clinic.wait_ready()
        set_up_therapist(clinic, "dr-acl")
        day = (datetime.now(UTC) + timedelta(days=3)).date()
        start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
        booked = requests.post(clinic.url("/api/v1/bookings"), timeout=30, json={
            "therapist_id": "dr-acl", "session_type": "dit-session", "modality": "video",
            "start": start.isoformat(), "client": {"name": "Ann Lee",
                                                   "email": "ann@example.org"}})
        assert booked.status_code == 201, booked.text
        booking = booked.json()
        owner = {"Authorization": f"Bearer {booking['manage_token']}"}
        moved = requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/reschedule"),
                              json={"start": (start + timedelta(hours=2)).isoformat()},
                              headers=owner, timeout=30)
        assert moved.status_code == 200, moved.text
        feed = requests.get(clinic.url("/api/v1/therapists/dr-acl/calendar-feed"),
                            headers=clinic.admin, timeout=10).json()["url"]
        assert requests.get(feed, timeout=10).status_code == 200
        rotated = requests.post(clinic.url("/api/v1/therapists/dr-acl/calendar-feed/rotate"),
                                headers=clinic.admin, timeout=10)
        assert rotated.status_code == 200  # the gateway publishes its own event
        assert requests.get(feed, timeout=10).status_code == 404
        cancelled = requests.post(clinic.url(f"/api/v1/bookings/{booking['id']}/cancel"),
                                  json={}, headers=owner, timeout=30)
        assert cancelled.status_code == 200, cancelled.text

        # Events reached availability (the time is free again) and notifications, which asked
        # booking for the manage link over RPC: every email went out at the first attempt.
        deadline = time.monotonic() + 60
        while True:
            sent = requests.get(clinic.url(f"/api/v1/notifications?booking_id={booking['id']}"),
                                headers=clinic.admin, timeout=10).json()
            kinds = {n["kind"] for n in sent if n["recipient"] == "ann@example.org"
                     and n["status"] == "sent" and n["attempts"] == 1}
            if kinds >= {"confirmation", "reschedule", "cancellation"}:
                break
            assert time.monotonic() < deadline, sent
            time.sleep(0.5)
        slots = requests.get(clinic.url(
            f"/api/v1/therapists/dr-acl/slots?session_type=dit-session&modality=video"
            f"&from={day}&to={day}&tz=UTC"), timeout=10).json()["slots"]
        assert start.isoformat().replace("+00:00", "Z") in {s["start"].replace("+00:00", "Z")
                                                             for s in slots}
    finally:
        clinic.stop()

    # What the notifications login may do: ask booking for a manage token ...
    config = {"AMQP_URI": broker.uri("notifications")}
    with ClusterRpcProxy(config, timeout=10) as rpc:
        with pytest.raises(Exception) as no_one_answers:  # booking is stopped: a timeout
            rpc.booking.issue_manage_token("booking", "nope")
        assert "ACCESS_REFUSED" not in str(no_one_answers.value)
    # ... and what it may not: call booking's cancel, or forge one of booking's events.
    for exchange, routing_key in (("nameko-rpc", "booking.cancel_booking"),
                                  ("booking.events", "booking_cancelled")):
        connection = amqp.Connection(f"{ADMIN.hostname}:5672",
                                     userid=broker.user("notifications"),
                                     password=broker.passwords["notifications"],
                                     virtual_host=broker.vhost, confirm_publish=True)
        connection.connect()
        try:
            with pytest.raises(amqp.exceptions.AccessRefused):
                connection.channel().basic_publish(amqp.Message(b"{}"), exchange=exchange,
                                                   routing_key=routing_key)
        finally:
            connection.collect()
    # Nor may the gateway take booking's RPC queue and read its calls.
    connection = amqp.Connection(f"{ADMIN.hostname}:5672", userid=broker.user("gateway"),
                                 password=broker.passwords["gateway"],
                                 virtual_host=broker.vhost)
    connection.connect()
    try:
        with pytest.raises(amqp.exceptions.AccessRefused):
            connection.channel().basic_consume("rpc-booking", callback=lambda message: None)
    finally:
        connection.collect()
