"""A handler that keeps failing, on the real broker: bounded redeliveries, then its dead-letter
queue, counted for ``/ready`` and put back with ``python -m clinic.deadletters replay``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from kombu import Connection
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from clinic import deadletters, queues
from clinic.events import Event, handler_queue_name
from clinic.events import event_handler as retrying_event_handler
from tests.e2e.test_broker_users import RestrictedBroker

QUEUE = handler_queue_name("booking", "hold_placed", "availability", "on_hold_placed")
DEAD = queues.dead_letter_name(QUEUE)


class Broken:
    """Availability's handler of ``hold_placed`` (a queue ``clinic.deadletters`` knows), with
    a bug until ``fixed``."""

    name = "availability"
    attempts: list[str] = []
    fixed = False

    @retrying_event_handler("booking", "hold_placed")
    def on_hold_placed(self, payload: dict) -> None:
        Broken.attempts.append(payload["id"])
        if not Broken.fixed:
            raise ValueError("a bug in the handler")


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def parked(amqp_uri: str):
    """The one dead letter, read and put back (headers and body as parked)."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        message = channel.basic_get(DEAD, no_ack=False)
        channel.basic_reject(message.delivery_tag, requeue=True)
        return message


def test_a_failing_event_is_parked_after_its_redeliveries_and_replayed(
        container_factory, service_config, monkeypatch, capsys):
    monkeypatch.setattr("clinic.handlers.RETRY_PAUSE_SECONDS", 0.02)
    Broken.attempts, Broken.fixed = [], False
    amqp_uri = service_config["AMQP_URI"]
    container = container_factory(Broken, service_config)
    container.start()
    assert deadletters.summary(amqp_uri) == {"dead_letters": 0}

    event = Event("hold_placed", {"hold_id": "h-1"}, "booking").to_payload()
    event_dispatcher(service_config)("booking", "hold_placed", event)
    wait_for(lambda: deadletters.counts(amqp_uri)[DEAD] == 1)

    assert Broken.attempts == [event["id"]] * queues.MAX_DELIVERIES
    assert deadletters.summary(amqp_uri) == {"dead_letters": 1}
    message = parked(amqp_uri)
    assert message.headers["x-clinic-error"] == "ValueError"
    assert message.headers["x-clinic-deliveries"] == queues.MAX_DELIVERIES
    assert json.loads(message.body)["id"] == event["id"]

    Broken.fixed = True  # the fix is deployed: replay
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    with entrypoint_waiter(container, "on_hold_placed", timeout=10,
                           callback=lambda worker_ctx, result, exc_info: exc_info is None):
        assert deadletters.main(["replay", DEAD]) == 0
    assert "1 event(s) put back on " + QUEUE in capsys.readouterr().out
    assert Broken.attempts == [event["id"]] * (queues.MAX_DELIVERIES + 1)
    assert deadletters.counts(amqp_uri)[DEAD] == 0


def test_replay_refuses_a_queue_that_is_no_handlers(service_config, monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URI", service_config["AMQP_URI"])
    assert deadletters.main(["replay", "rpc-booking"]) == 2
    assert "not an event handler's queue" in capsys.readouterr().err


@pytest.fixture
def granted() -> Iterator[RestrictedBroker]:
    """A vhost with a broker user per service, as clinic.broker_users grants them."""
    made = RestrictedBroker()
    made.create()
    yield made
    made.delete()


def test_a_service_parks_events_with_its_own_broker_user(granted, container_factory,
                                                         service_config, monkeypatch):
    """Under docker-compose each service logs in as itself (clinic.broker_users): parking
    needs no permission beyond its own (its dead-letter exchange, not the default one)."""
    broker = granted
    monkeypatch.setattr("clinic.handlers.RETRY_PAUSE_SECONDS", 0.02)
    Broken.attempts, Broken.fixed = [], False
    as_availability = broker.uri("availability")
    container = container_factory(Broken, {**service_config, "AMQP_URI": as_availability})
    container.start()
    event = Event("hold_placed", {"hold_id": "h-2"}, "booking").to_payload()
    event_dispatcher({"AMQP_URI": broker.uri("booking")})("booking", "hold_placed", event)
    wait_for(lambda: deadletters.counts(as_availability)[DEAD] == 1)
    assert Broken.attempts == [event["id"]] * queues.MAX_DELIVERIES
