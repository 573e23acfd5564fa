"""Dead-lettered events: how many wait, and putting them back on their handler's queue.

An event whose handler failed ``MAX_DELIVERIES`` times is parked in ``<queue>.dead`` beside the
handler's queue (``clinic.handlers``). Once the cause is fixed (a deploy, a repaired row),
replaying it hands it to that handler alone, again (handlers drop an event they already
applied, by its id)::

    python -m clinic.deadletters list           # every dead-letter queue with a count
    python -m clinic.deadletters replay evt-booking-hold_placed--availability.on_hold_placed

(``replay`` takes the handler's queue or its ``.dead`` queue; ``AMQP_URI`` names the broker.)
``counts()`` is what the gateway's ``/ready`` shows, and what a metrics exporter can call.
"""

from __future__ import annotations

import argparse
import sys

from amqp.exceptions import NotFound
from kombu import Connection, Producer

from clinic import queues
from clinic.events import SUBSCRIPTIONS, handler_queue_name

CONNECT_SECONDS = 2.0


def handler_queues() -> list[str]:
    """Every work queue of an event handler, from ``clinic.events.SUBSCRIPTIONS``."""
    return sorted(handler_queue_name(source, event_type, service, method)
                  for (source, event_type), handlers in SUBSCRIPTIONS.items()
                  for service, method in handlers)


def _connect(amqp_uri: str) -> Connection:
    connection = Connection(amqp_uri, connect_timeout=CONNECT_SECONDS,
                            transport_options={"confirm_publish": True})
    connection.ensure_connection(max_retries=1)
    return connection


def _waiting(connection: Connection, queue: str) -> int:
    """Messages ready in ``queue`` (0 if it was never made: nothing was ever parked)."""
    channel = connection.channel()
    try:
        return channel.queue_declare(queue, passive=True).message_count
    except NotFound:
        return 0
    finally:
        if channel.is_open:
            channel.close()


def counts(amqp_uri: str) -> dict[str, int]:
    """Dead letters waiting, by dead-letter queue. Raises kombu's/amqp's errors if the broker
    cannot be reached (callers decide what that means for them)."""
    with _connect(amqp_uri) as connection:
        return {queues.dead_letter_name(queue): _waiting(connection,
                                                         queues.dead_letter_name(queue))
                for queue in handler_queues()}


def summary(amqp_uri: str) -> dict[str, int]:
    """For ``/ready`` (public, so a total only; ``list`` names the queues): how many dead
    letters wait in all, or an empty dict if the broker cannot be asked."""
    try:
        waiting = counts(amqp_uri)
    except Exception:  # the broker away: readiness says so through the services' pings
        return {}
    return {"dead_letters": sum(waiting.values())}


def replay(amqp_uri: str, queue: str) -> int:
    """Move what waits in ``queue``'s dead-letter queue back onto ``queue`` (each publish
    confirmed before its dead letter is acked); returns how many. Events that fail again are
    parked again after their redeliveries, not replayed in a loop."""
    work = queues.work_queue_of(queue)
    dead = queues.dead_letter_name(work)
    with _connect(amqp_uri) as connection:
        channel = connection.channel()
        producer = Producer(channel)
        moved = 0
        for _ in range(_waiting(connection, dead)):
            message = channel.basic_get(dead, no_ack=False)
            if message is None:
                break
            headers = {key: value for key, value in (message.headers or {}).items()
                       if not key.startswith("x-clinic-")}
            producer.publish(message.body, exchange="", routing_key=work, headers=headers,
                             content_type=message.content_type,
                             content_encoding=message.content_encoding or "utf-8",
                             delivery_mode=2, mandatory=True)
            channel.basic_ack(message.delivery_tag)
            moved += 1
        return moved


def main(argv: list[str] | None = None) -> int:
    from clinic.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m clinic.deadletters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every dead-letter queue and how many events wait in it")
    again = commands.add_parser("replay", help="put a queue's dead letters back on it")
    again.add_argument("queue", help="the handler's queue (or its .dead queue)")
    args = parser.parse_args(argv)
    amqp_uri = Settings.from_env().amqp_uri
    if args.command == "list":
        for name, waiting in counts(amqp_uri).items():
            print(f"{waiting:6d}  {name}")
        return 0
    if queues.work_queue_of(args.queue) not in handler_queues():
        print(f"{args.queue} is not an event handler's queue; see `list`", file=sys.stderr)
        return 2
    moved = replay(amqp_uri, args.queue)
    print(f"{moved} event(s) put back on {queues.work_queue_of(args.queue)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
