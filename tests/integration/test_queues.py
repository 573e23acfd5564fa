"""Work queues are quorum queues; ``python -m clinic.queues migrate`` moves classic ones over,
messages and bindings kept (on the real broker, in a vhost of the test's own)."""

from __future__ import annotations

import json
import urllib.parse

import requests
from kombu import Connection, Exchange, Queue

from clinic.queues import migrate_to_quorum, work_queues
from tests.conftest import BROKER_ADMIN


def queue_types(amqp_uri: str) -> dict[str, str]:
    vhost = urllib.parse.quote(amqp_uri.rsplit("/", 1)[1], safe="")
    parts = urllib.parse.urlsplit(BROKER_ADMIN)
    answer = requests.get(f"{parts.scheme}://{parts.hostname}:{parts.port}/api/queues/{vhost}",
                          auth=(parts.username, parts.password), timeout=10)
    answer.raise_for_status()
    return {q["name"]: q["type"] for q in answer.json()}


def test_classic_work_queues_become_quorum_queues_with_their_messages(amqp_uri):
    config = {"AMQP_URI": amqp_uri}
    rpc = next(q for q in work_queues(config) if q.name == "rpc-booking")
    event = next(q for q in work_queues(config)
                 if q.name == "evt-booking-booking_confirmed--notifications.on_booking_confirmed")
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        for queue in (rpc, event):  # as the clinic declared them before quorum queues
            Queue(queue.name, exchange=queue.exchange, routing_key=queue.routing_key,
                  durable=True)(channel).declare()
        producer = connection.Producer(channel)
        producer.publish({"waiting": "rpc"}, exchange=rpc.exchange, routing_key="booking.ping",
                         headers={"nameko.request_id": "kept-header-1"})
        producer.publish({"waiting": "event"}, exchange=event.exchange,
                         routing_key="booking_confirmed")
    assert queue_types(amqp_uri)["rpc-booking"] == "classic"

    done = migrate_to_quorum(amqp_uri)
    assert len(done) == 2 and all("1 messages kept" in line for line in done), done

    types = queue_types(amqp_uri)
    assert types["rpc-booking"] == types[event.name] == "quorum"
    assert not [name for name in types if name.endswith(".to-quorum")]
    assert migrate_to_quorum(amqp_uri) == []  # nothing left to move
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        kept = channel.basic_get("rpc-booking", no_ack=True)
        assert json.loads(kept.body) == {"waiting": "rpc"}
        assert kept.headers["nameko.request_id"] == "kept-header-1"
        # the binding came back: a new event reaches the quorum queue
        connection.Producer(channel).publish({"new": 1}, exchange=Exchange(
            event.exchange.name, type="topic", durable=True), routing_key="booking_confirmed")
        bodies = []
        while (message := channel.basic_get(event.name, no_ack=True)) is not None:
            bodies.append(json.loads(message.body))
        assert bodies == [{"waiting": "event"}, {"new": 1}]
