"""The broker-outage rules, no broker needed: restart policy, what a failed event becomes, a reply
that cannot be sent, a message whose channel died."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from kombu import Exchange
from nameko.messaging import QueueConsumer
from nameko.rpc import Responder, RpcConsumer

from clinic import deadletters, queues
from clinic.broker import BestEffortDispatcher, ReconnectingQueueConsumer, ReliableRpcConsumer
from clinic.broker_users import GRANTS
from clinic.errors import ServiceUnavailable
from clinic.handlers import Decision, dead_letter_headers, decide, retry_pause
from clinic.processes import CRASH_LIMIT, Run, Supervisor, restart_delay

# --- the supervisor's restart policy --------------------------------------------------------


def crashes(*lifetimes: float, gap: float = 0.0, start: float = 1000.0) -> list[Run]:
    """Runs of the given lengths, each started ``gap`` seconds after the previous ended."""
    runs, now = [], start
    for lifetime in lifetimes:
        runs.append(Run(now, now + lifetime))
        now += lifetime + gap
    return runs


def test_a_first_crash_is_restarted_after_a_second():
    assert restart_delay(crashes(3600)) == 1


def test_crashes_in_a_row_double_the_pause_up_to_30_seconds():
    # quick crashes, spread out enough that the "5 within a minute" rule does not apply
    delays = [restart_delay(crashes(*[1] * n, gap=20)) for n in range(1, 8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_a_long_run_starts_the_count_again():
    assert restart_delay(crashes(1, 1, 1, 600, gap=20)) == 1
    assert restart_delay(crashes(1, 1, 1, 600, 1, gap=20)) == 2


def test_five_crashes_within_a_minute_give_up():
    assert restart_delay(crashes(*[1] * (CRASH_LIMIT - 1), gap=2)) is not None
    assert restart_delay(crashes(*[1] * CRASH_LIMIT, gap=2)) is None
    assert restart_delay(crashes(*[1] * CRASH_LIMIT, gap=15)) is not None  # over 60 s


# --- a failed event --------------------------------------------------------------------------

def test_a_handled_event_is_acked():
    assert decide(None, 1) is Decision.ACK


def test_a_database_outage_never_counts_as_a_failure():
    unavailable = ServiceUnavailable("The database is not available.")
    assert decide(unavailable, 1) is Decision.WAIT
    assert decide(unavailable, queues.MAX_DELIVERIES * 10) is Decision.WAIT


def test_a_failing_handler_gets_bounded_redeliveries_then_a_dead_letter():
    error = ValueError("a bug")
    assert [decide(error, n) for n in range(1, queues.MAX_DELIVERIES + 1)] == (
        [Decision.RETRY] * (queues.MAX_DELIVERIES - 1) + [Decision.DEAD_LETTER])


def test_redeliveries_pause_longer_each_time_up_to_a_bound():
    assert [retry_pause(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_a_dead_letter_says_where_and_why_but_not_the_error_text():
    headers = dead_letter_headers({"nameko.call_id_stack": ["x"]}, "evt-q", ValueError(
        "client jo@example.com"), 5)
    assert headers["x-clinic-queue"] == "evt-q"
    assert headers["x-clinic-error"] == "ValueError"
    assert headers["x-clinic-deliveries"] == 5
    assert headers["nameko.call_id_stack"] == ["x"]
    assert "jo@example.com" not in repr(headers)


def test_queue_names_and_arguments_come_from_one_place():
    queue = queues.work_queue("evt-a-b--c.d", Exchange("a.events", type="topic"), "b")
    assert (queue.durable, queue.auto_delete, queue.exclusive) == (True, False, False)
    assert (queue.queue_arguments or {}) == queues.WORK_QUEUE_ARGUMENTS
    dead = queues.dead_letter_queue("evt-a-b--c.d", "c")
    assert dead.name == "evt-a-b--c.d.dead" and dead.routing_key == dead.name
    assert dead.exchange.name == "c.dead-letters"
    assert queues.work_queue_of(dead.name) == queues.work_queue_of("evt-a-b--c.d") == \
        "evt-a-b--c.d"


@pytest.mark.parametrize("service", ["availability", "notifications"])
def test_each_listening_service_may_park_its_events_and_no_more(service):
    """Its broker user (clinic.broker_users) may declare, bind and publish to its own
    dead-letter exchange and queues, not another's, and not the default exchange."""
    allowed = {kind: re.compile(pattern) for kind, pattern in GRANTS[service].permissions().items()}
    queue = next(queue for queue in deadletters.handler_queues() if f"--{service}." in queue)
    dead = queues.dead_letter_queue(queue, service)
    for kind in ("configure", "write", "read"):
        assert allowed[kind].match(dead.exchange.name), kind
    assert allowed["configure"].match(dead.name) and allowed["write"].match(dead.name)
    assert not allowed["write"].match("amq.default")
    assert not allowed["write"].match("booking.dead-letters")


# --- a reply the broker cannot take ----------------------------------------------------------

class BrokerAway:
    """A publisher whose broker refuses every connection."""

    def __init__(self, *args, **kwargs):
        pass

    def publish(self, *args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")


class Container:
    config = {"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"}


class Settled:
    """The queue consumer's side: which messages were acked or requeued."""

    def __init__(self):
        self.acked, self.requeued = [], []

    def ack_message(self, message):
        self.acked.append(message)

    def requeue_message(self, message):
        self.requeued.append(message)


class Request:
    properties = {"content_type": "application/json", "reply_to": "reply-1",
                  "correlation_id": "c-1"}
    delivery_info = {"routing_key": "booking.create_booking"}


def answering(consumer_class, monkeypatch):
    monkeypatch.setattr(Responder, "publisher_cls", BrokerAway)
    consumer = consumer_class()
    consumer.container = Container()
    consumer.queue_consumer = Settled()
    return consumer


def test_a_reply_the_broker_cannot_take_is_dropped_and_the_request_requeued(monkeypatch):
    consumer = answering(ReliableRpcConsumer, monkeypatch)
    message = Request()
    assert consumer.handle_result(message, {"id": "b-1"}, None) == ({"id": "b-1"}, None)
    assert consumer.queue_consumer.requeued == [message]
    assert consumer.queue_consumer.acked == []


def test_nameko_alone_lets_the_failed_reply_kill_the_worker(monkeypatch):
    consumer = answering(RpcConsumer, monkeypatch)
    with pytest.raises(ConnectionRefusedError):  # what _handle_thread_exited turns into a kill
        consumer.handle_result(Request(), {"id": "b-1"}, None)


# --- a message whose channel died ------------------------------------------------------------

class DeadChannelMessage:
    class channel:  # noqa: N801 (kombu's attribute)
        connection = object()  # still set: the loss was not noticed yet

    def ack(self):
        raise ConnectionResetError(104, "Connection reset by peer")

    requeue = ack


def test_acking_on_a_dead_channel_leaves_the_message_to_the_broker():
    consumer = ReconnectingQueueConsumer()
    consumer.ack_message(DeadChannelMessage())
    consumer.requeue_message(DeadChannelMessage())


class NamedContainer:
    service_name = "booking"
    config = Container.config


def test_an_unexpected_consumer_error_reconnects_instead_of_ending_the_thread(monkeypatch):
    attempts = []

    def consume_once(self, _tokens=1, **kwargs):  # kombu's loop: fails once, then stops
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise KeyError("not in kombu's list of connection errors")
        self.should_stop = True

    monkeypatch.setattr(QueueConsumer, "run", consume_once)
    monkeypatch.setattr("clinic.broker.RECONNECT_MAX_SECONDS", 0)
    consumer = ReconnectingQueueConsumer()
    consumer.container = NamedContainer()
    consumer.run()  # nameko's would raise, and the container be killed
    assert attempts == [0, 1]


def test_reconnecting_retries_every_second_at_most_and_forever():
    asked = {}

    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def ensure_connection(self, errback, max_retries, **intervals):
            asked.update(intervals, max_retries=max_retries)

    consumer = ReconnectingQueueConsumer()
    consumer.create_connection = Connection
    with consumer.establish_connection():
        pass
    assert asked["max_retries"] is None and asked["interval_max"] <= 1


def test_a_reply_failure_keeps_the_original_outcome(monkeypatch):
    consumer = answering(ReliableRpcConsumer, monkeypatch)
    try:
        raise ServiceUnavailable("The booking database is not available.")
    except ServiceUnavailable:
        exc_info = sys.exc_info()
    result, kept = consumer.handle_result(Request(), None, exc_info)
    assert result is None and kept is exc_info


# --- the supervisor itself, with stand-in processes ------------------------------------------

def test_a_process_that_cannot_start_stops_the_clinic_naming_it(monkeypatch, tmp_path):
    monkeypatch.setattr("clinic.processes.FIRST_DELAY_SECONDS", 0.01)
    lines: list[str] = []
    steady = tmp_path / "steady-stopped"
    supervisor = Supervisor(
        {"broken": [sys.executable, "-c", "raise SystemExit(3)"],
         "steady": [sys.executable, "-c", "import pathlib, signal, sys, time\n"
                    "def stop(*_):\n"
                    f"    pathlib.Path({str(steady)!r}).touch(); sys.exit(0)\n"
                    "signal.signal(signal.SIGTERM, stop)\n"
                    "time.sleep(60)"]},
        cwd=str(tmp_path), env=os.environ, stop_seconds=10, log=lines.append)
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        assert supervisor.run() == 1
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    restarts = [f"broken exited (code 3); restarting it in {0.01 * 2 ** n:g}s"
                for n in range(CRASH_LIMIT - 1)]
    assert lines == [*restarts,
                     f"broken exited (code 3) {CRASH_LIMIT} times within 60s; stopping the clinic"]
    assert steady.exists()  # the others got their graceful stop


class WorkerContext:
    context_data: dict = {}


def test_a_broadcast_without_a_broker_is_logged_and_dropped_and_setup_needs_none():
    class DispatchingContainer(NamedContainer):
        service_name = "gateway"
        serializer = "json"

    dispatcher = BestEffortDispatcher()
    dispatcher.container = DispatchingContainer()
    dispatcher.setup()  # nameko's EventDispatcher connects here, and fails with no broker
    began = time.monotonic()
    assert dispatcher.get_dependency(WorkerContext())("calendar_feed_rotated", {}) is False
    assert time.monotonic() - began < 5


def test_the_services_command_line_patches_sleep_before_kombu_binds_it():
    """kombu's retry loops pause with the ``time.sleep`` they imported; unpatched, each pause
    froze a whole service (every request, every consumer) while the broker was away."""
    code = ("import clinic.cli, eventlet; eventlet.monkey_patch(); "  # as `nameko run` does
            "import time, kombu.utils.functional as kombu_retry; "
            "raise SystemExit(kombu_retry.sleep is not time.sleep)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert subprocess.run([sys.executable, "-c", code], cwd=root,
                          env={**os.environ, "PYTHONPATH": root}).returncode == 0
