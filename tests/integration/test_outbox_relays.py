"""Two booking processes on one outbox never publish a row twice, counted at the broker.

A raw kombu consumer on a test queue bound to the booking events exchange counts every message
the broker routed, with no de-duplication (consumers drop redeliveries by event id, so counting
what a service handled would hide a double publish)."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import eventlet
import sqlalchemy as sa
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy

from clinic.errors import SlotUnavailable
from services.availability.service import AvailabilityService
from services.booking.models import outbox
from services.booking.service import BookingService
from tests.integration.test_booking_service import (  # noqa: F401 (start_container: a fixture)
    booking_request,
    next_slot,
    set_up_therapist,
    start_container,
)

BOOKINGS = 40


def outbox_rows(url: str) -> tuple[list[str], int]:
    """Every event id in the outbox, and how many are not published yet."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(outbox.c.event_id, outbox.c.published_at)).all()
    engine.dispose()
    return [event_id for event_id, _ in rows], sum(1 for _, at in rows if at is None)


def test_two_relays_on_one_outbox_publish_each_row_once(start_container, service_config,  # noqa: F811
                                                        database_urls):
    exchange = get_event_exchange("booking", service_config)
    witness = Queue(f"test-witness-{uuid.uuid4().hex[:8]}", exchange=exchange, routing_key="#",
                    auto_delete=True)
    counted: Counter[str] = Counter()
    with Connection(service_config["AMQP_URI"]) as connection:
        witness(connection.default_channel).declare()  # bound before anything is published
        # one client books them all: lift the per-email limit, which is not what this tests
        config = {**service_config, "MAX_BOOKINGS_PER_EMAIL": str(BOOKINGS)}
        start_container(AvailabilityService, config)
        start_container(BookingService, config)
        start_container(BookingService, config)  # a second relay on the same outbox
        with ClusterRpcProxy(config) as cluster:
            therapist = set_up_therapist(cluster)
            # all sent at once: both processes take calls, commit and wake their relays together
            replies = [cluster.booking.create_booking.call_async(booking_request(
                therapist, next_slot(days=3 + n // 12, hour=8 + n % 12)))
                for n in range(BOOKINGS)]
            booked = 0
            for reply in replies:
                try:
                    reply.result()
                    booked += 1
                except SlotUnavailable:
                    pass
        assert booked == BOOKINGS
        with eventlet.Timeout(30):
            while outbox_rows(database_urls["booking"])[1]:
                eventlet.sleep(0.1)

        def count(body, message) -> None:
            counted[body["id"]] += 1
            message.ack()

        with connection.Consumer(witness, callbacks=[count]):
            quiet_until = time.monotonic() + 2  # until 2 s pass with nothing more arriving
            while time.monotonic() < quiet_until:
                try:
                    connection.drain_events(timeout=0.2)
                    quiet_until = time.monotonic() + 2
                except TimeoutError:
                    pass
    event_ids, _ = outbox_rows(database_urls["booking"])
    assert len(event_ids) >= BOOKINGS  # a booking_confirmed each, at least
    assert sorted(counted) == sorted(event_ids)  # every row reached the broker...
    assert {event_id: n for event_id, n in counted.items() if n > 1} == {}  # ...once
