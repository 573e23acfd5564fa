"""Request ids, log lines and the /metrics allow list, without a server."""

import json
import logging

from clinic import logs, tracing
from clinic.metrics import metrics_port
from gateway.observability import DeadLetters, allowed, metrics_allowed, parse_allow


def record(message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("clinic.test", logging.INFO, __file__, 1, message, args, None)


def test_a_sane_request_id_is_kept_and_anything_else_replaced():
    assert tracing.accept("edge-7f3a9c21") == "edge-7f3a9c21"
    for offered in (None, "", "short", "has space in it", "x" * 129, "a\nb-injected-line"):
        fresh = tracing.accept(offered)
        assert fresh != offered and len(fresh) == 32


def test_the_filter_adds_the_bound_request_id_and_removes_secrets():
    tracing.bind("req-12345678")
    try:
        line = record('"GET /manage?token=%s&booking=b1 HTTP/1.1" 200', "mt_secret-value")
        assert logs.RequestIdFilter().filter(line)
    finally:
        tracing.bind(None)
    assert line.request_id == "req-12345678"
    assert "mt_secret-value" not in line.getMessage() and "token=…" in line.getMessage()
    for leaky in ("GET /ical/cal_abcdefgh1234.ics", "Authorization: Bearer admin-token-1",
                  "feed cal_abcdefghijk rotated"):
        cleaned = record(leaky)
        logs.RequestIdFilter().filter(cleaned)
        assert "abcdefgh" not in cleaned.getMessage()
        assert "admin-token-1" not in cleaned.getMessage()
    assert logs.scrub('"GET /ical/….ics HTTP/1.1" 200') == '"GET /ical/….ics HTTP/1.1" 200'
    outside = record("no request here")
    logs.RequestIdFilter().filter(outside)
    assert outside.request_id == "-"


def test_json_format_is_one_object_per_line_with_the_fields_operators_need():
    line = record("booked %s", "b1")
    logs.RequestIdFilter().filter(line)
    out = json.loads(logs.formatter("booking", "json").format(line))
    assert out["message"] == "booked b1" and out["service"] == "booking"
    assert {"time", "level", "request_id"} <= out.keys() and out["level"] == "INFO"
    text = logs.formatter("booking", "text").format(line)
    assert " booking INFO clinic.test [-]: booked b1" in text


def test_metrics_are_answered_to_loopback_and_private_networks_by_default():
    default = parse_allow(None)
    assert allowed("127.0.0.1", default) and allowed("10.1.2.3", default)
    assert allowed("::1", default) and allowed("::ffff:192.168.1.9", default)
    assert not allowed("203.0.113.7", default) and not allowed("garbage", default)
    narrow = parse_allow("192.0.2.0/24, not-a-network")
    assert allowed("192.0.2.10", narrow) and not allowed("127.0.0.1", narrow)


def test_metrics_port_zero_or_unset_is_off():
    assert metrics_port({}) == 0 and metrics_port({"METRICS_PORT": ""}) == 0
    assert metrics_port({"METRICS_PORT": "9101"}) == 9101
    assert metrics_port({"METRICS_PORT": "nine"}) == 0


def test_metrics_are_refused_to_a_request_a_proxy_forwarded_for_a_public_address():
    default = parse_allow(None)
    assert metrics_allowed("10.0.0.5", None, default)
    assert metrics_allowed("10.0.0.5", "10.0.3.4", default)
    assert not metrics_allowed("10.0.0.5", "203.0.113.7", default)
    assert not metrics_allowed("10.0.0.5", "10.0.3.4, 203.0.113.7", default)


def test_make_run_gives_each_service_process_its_own_metrics_port(monkeypatch):
    from clinic import supervisor

    monkeypatch.setenv("METRICS_PORT", "9101")
    services = [name for name in supervisor.PROCESSES if name != "gateway"]
    ports = [supervisor.metrics_port_of(name)["METRICS_PORT"] for name in services]
    assert ports == [str(9101 + i) for i in range(len(services))]
    assert supervisor.metrics_port_of("gateway") == {"METRICS_PORT": "0"}
    monkeypatch.delenv("METRICS_PORT")
    assert supervisor.metrics_port_of("booking") == {"METRICS_PORT": "0"}


def test_dead_letters_are_a_gauge_per_queue_and_nothing_while_the_broker_is_away():
    parked = {"evt-booking-booking_confirmed--notifications.on_booking_confirmed.dead": 2,
              "evt-booking-hold_placed--availability.on_hold_placed.dead": 0}
    [family] = DeadLetters("amqp://x", counts=lambda uri: parked).collect()
    assert family.name == "clinic_dead_letters"
    assert {s.labels["queue"]: s.value for s in family.samples} == parked

    def away(uri):
        raise ConnectionRefusedError(111, "Connection refused")

    assert list(DeadLetters("amqp://x", counts=away).collect()) == []
