"""Metrics with the whole system running: a real Prometheus (Debian's package) scrapes the
gateway and every service process, loads the shipped alert rules, and answers queries for an
HTTP latency histogram and the outbox gauge; the rules pass ``promtool check rules``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from clinic.supervisor import PROCESSES
from tests.conftest import free_port
from tests.e2e.test_booking import CLIENT, next_slot, set_up_therapist
from tests.e2e.test_tracing import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# METRICS_PORT, +1, +2, ... in this order (clinic.supervisor.metrics_port_of)
SERVICES = tuple(name for name in PROCESSES if name != "gateway")


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports."""
    for _ in range(50):
        base = free_port()
        socks = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", base + offset))
                socks.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")


class Prometheus:
    def __init__(self, folder: Path, targets: dict[str, list[str]]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        shutil.copy(ALERTS, folder / "alerts.yml")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": hosts}]}
                               for job, hosts in targets.items()],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = open(folder / "prometheus.log", "ab")  # noqa: SIM115 (open while it runs)
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            cwd=folder, stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, expression: str) -> list[dict]:
        try:
            answer = requests.get(self.url + "/api/v1/query", params={"query": expression},
                                  timeout=5)
        except requests.ConnectionError:
            return []
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def prometheus_for(tmp_path):
    started = []

    def start(targets: dict[str, list[str]]) -> Prometheus:
        server = Prometheus(tmp_path, targets)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_prometheus_scrapes_the_clinic_and_answers_for_a_histogram_and_the_outbox(
        backend, clinic_factory, prometheus_for):
    base = free_port_run(len(SERVICES))
    clinic = clinic_factory(backend, METRICS_PORT=str(base))
    gateway = f"127.0.0.1:{clinic.env['GATEWAY_PORT']}"
    services = [f"127.0.0.1:{base + i}" for i in range(len(SERVICES))]
    prometheus = prometheus_for({"clinic-gateway": [gateway], "clinic-services": services})

    therapist = set_up_therapist(clinic)
    booked = requests.post(clinic.url("/api/v1/bookings"), timeout=30, json={
        "therapist_id": therapist, "session_type": "dit-session", "modality": "video",
        "start": next_slot().isoformat(), "client": CLIENT})
    assert booked.status_code == 201, booked.text
    token = booked.json()["manage_token"]
    requests.get(clinic.url(f"/api/v1/bookings/{booked.json()['id']}?token={token}"),
                 timeout=10)

    def all_up():
        found = prometheus.query('up{job=~"clinic-.*"}')
        return (found if len(found) == len(SERVICES) + 1
                and all(s["value"][1] == "1" for s in found) else None)

    up = wait_for(all_up, what="every target up")
    assert {s["metric"]["instance"] for s in up} == {gateway, *services}

    # the booking's POST, by its route template, in the latency histogram
    posted = wait_for(lambda: prometheus.query(
        'sum by (le) (clinic_http_request_duration_seconds_bucket'
        '{route="/api/v1/bookings"})'), what="the histogram's buckets")
    assert float(next(s for s in posted if s["metric"]["le"] == "+Inf")["value"][1]) >= 1
    # the median of booking's RPCs since it started (cumulative buckets, no rate needed)
    quantile = wait_for(lambda: prometheus.query(
        'histogram_quantile(0.5, sum by (le) '
        '(clinic_rpc_duration_seconds_bucket{service="booking"}))'),
        what="an RPC latency quantile")
    assert 0 < float(quantile[0]["value"][1]) < 10

    # the outbox gauge, read from booking's database at scrape time: the event went out
    outbox = wait_for(lambda: prometheus.query("clinic_outbox_pending"), what="the outbox gauge")
    assert [s["metric"]["instance"] for s in outbox] == [services[SERVICES.index("booking")]]
    wait_for(lambda: prometheus.query("clinic_outbox_pending == 0"), what="an empty outbox")
    assert prometheus.query('clinic_bookings_total{kind="session"}')[0]["value"][1] == "1"
    assert prometheus.query("clinic_notifications_pending")
    # the dead-letter alert's series: one per handler queue, read from the broker by the gateway
    parked = wait_for(lambda: prometheus.query("clinic_dead_letters"), what="the dead letters")
    assert parked and all(s["value"][1] == "0" for s in parked)

    # no token, no raw path in any label
    labels = prometheus.query("clinic_http_requests_total")
    assert labels and all(token not in str(s["metric"]) for s in labels)
    assert any(s["metric"]["route"] == "/api/v1/bookings/{booking_id}" for s in labels)

    rules = requests.get(prometheus.url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    names = {rule["name"] for group in rules for rule in group["rules"]}
    assert {"ClinicOutboxStuck", "ClinicDeadLetters", "ClinicNotificationsFailing",
            "ClinicServiceNotReady"} <= names


def test_gateway_metrics_only_to_allowed_addresses(backend, clinic_factory):
    clinic = clinic_factory(backend, METRICS_ALLOW="192.0.2.0/24")
    refused = requests.get(clinic.url("/metrics"), timeout=10)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    assert "clinic_http_requests_total" not in refused.text


def test_gateway_metrics_answer_loopback_by_default(backend, clinic_factory):
    clinic = clinic_factory(backend)
    requests.get(clinic.url("/api/v1/therapists"), timeout=10)
    answer = requests.get(clinic.url("/metrics"), timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert ('clinic_http_requests_total{method="GET",route="/api/v1/therapists",status="200"}'
            in answer.text)
    # through a proxy, for a public client: as if there were no such path
    proxied = requests.get(clinic.url("/metrics"), headers={"X-Forwarded-For": "203.0.113.7"},
                           timeout=10)
    assert proxied.status_code == 404


def test_the_alert_rules_pass_promtool():
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                             text=True, env={**os.environ, "NO_COLOR": "1"})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
