"""Every work queue's declaration, in one place.

Work queues are the queues that hold work until a service takes it: ``rpc-<service>`` (nameko's
RPC requests) and one ``evt-<source>-<event>--<service>.<method>`` per event handler. Whoever
declares one (the handler that consumes it, the RPC entrypoint, the outbox relay that publishes
to it) declares it here, with the same arguments: RabbitMQ refuses a second declaration with
different ones (PRECONDITION_FAILED).

Each event handler's queue has a dead-letter queue beside it (``<queue>.dead``, bound to the
consuming service's ``<service>.dead-letters`` exchange): an event whose handler failed
``MAX_DELIVERIES`` times is parked there (``clinic.handlers``), counted in the
gateway's ``/ready`` and replayed with ``python -m clinic.deadletters replay <queue>``.

Work queues (and their dead-letter queues) are quorum queues, replicated over the RabbitMQ
cluster's nodes so a message survives the loss of a node; queues that belong to one process by
nature (RPC reply queues, the gateways' BROADCAST queues) stay classic and die with it. A
classic queue cannot become a quorum queue in place: ``python -m clinic.queues migrate`` (every
service stopped) moves existing classic work queues over, messages and bindings kept.

Quorum queues count deliveries themselves (the ``x-delivery-count`` header, which
``delivery_count`` reads) and can drop or dead-letter on their own past ``x-delivery-limit``:
leave that limit unset, because an event requeued while its database is away must not count
as a failure. RabbitMQ 3.x sets none; RabbitMQ 4 defaults it to 20, so on 4.x set a policy
with ``delivery-limit: -1`` for ``^(rpc|evt)-`` queues.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue
from nameko.rpc import RPC_QUEUE_TEMPLATE, get_rpc_exchange

# Arguments of every work queue: replicated across the cluster's nodes.
WORK_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}

# Deliveries of one event to a failing handler before it is parked in the dead-letter queue.
MAX_DELIVERIES = 5

DEAD_LETTER_SUFFIX = ".dead"


def work_queue(name: str, exchange: Exchange, routing_key: str) -> Queue:
    """A durable, shared work queue bound to ``exchange`` by ``routing_key``."""
    return Queue(name, exchange=exchange, routing_key=routing_key, durable=True,
                 auto_delete=False, exclusive=False,
                 queue_arguments=dict(WORK_QUEUE_ARGUMENTS) or None)


def dead_letter_name(queue_name: str) -> str:
    return queue_name + DEAD_LETTER_SUFFIX


def work_queue_of(dead_letter_queue: str) -> str:
    """The work queue a dead-letter queue belongs to (a work queue's name is returned as is)."""
    if dead_letter_queue.endswith(DEAD_LETTER_SUFFIX):
        return dead_letter_queue[:-len(DEAD_LETTER_SUFFIX)]
    return dead_letter_queue


def dead_letter_exchange(service: str) -> Exchange:
    """Where ``service`` parks its handlers' failed events (its own exchange, so its broker
    user needs no write permission on the default exchange: see ``clinic.broker_users``)."""
    return Exchange(f"{service}.dead-letters", type="direct", durable=True)


def dead_letter_queue(queue_name: str, service: str) -> Queue:
    """The parking queue of ``queue_name``'s failed events: durable, no consumer, bound to
    ``service``'s dead-letter exchange by its own name."""
    name = dead_letter_name(queue_name)
    return Queue(name, exchange=dead_letter_exchange(service), routing_key=name, durable=True,
                 auto_delete=False, exclusive=False,
                 queue_arguments=dict(WORK_QUEUE_ARGUMENTS) or None)


def delivery_count(headers: dict[str, Any] | None, counted: int) -> int:
    """How many times this message has now been delivered: the broker's own count when the
    queue keeps one (quorum queues' ``x-delivery-count``, the deliveries before this one), else
    ``counted``, this process's own count (classic queues keep none)."""
    broker_count = (headers or {}).get("x-delivery-count")
    if isinstance(broker_count, int):
        return max(broker_count + 1, counted)
    return counted


# --- moving classic work queues to quorum queues ----------------------------------------------

def work_queues(config: dict[str, Any]) -> list[Queue]:
    """Every work queue the clinic declares, with its binding: each service's RPC queue and
    every subscribed event handler's queue."""
    from nameko.standalone.events import get_event_exchange

    from clinic.events import SUBSCRIPTIONS, handler_queue_name
    from clinic.settings import SERVICES

    rpc_exchange = get_rpc_exchange(config)
    queues = [work_queue(RPC_QUEUE_TEMPLATE.format(service), exchange=rpc_exchange,
                         routing_key=f"{service}.*") for service in SERVICES]
    for (source, event_type), handlers in SUBSCRIPTIONS.items():
        exchange = get_event_exchange(source, config)
        queues += [work_queue(handler_queue_name(source, event_type, service, method),
                              exchange=exchange, routing_key=event_type)
                   for service, method in handlers]
    return queues


def _is_quorum_or_new(connection, queue: Queue) -> bool:
    """Declare ``queue`` as a quorum queue; False if a classic queue of that name is in the
    way (RabbitMQ refuses the declaration with 406 PRECONDITION_FAILED)."""
    from amqp.exceptions import PreconditionFailed

    try:
        with connection.channel() as channel:
            queue(channel).declare()
        return True
    except PreconditionFailed:
        return False


def _move(connection, source: str, target: str) -> int:
    """Move every message of ``source`` to ``target``: published with confirms, then acked."""
    moved = 0
    with connection.channel() as channel:
        while (message := channel.basic_get(source, no_ack=False)) is not None:
            channel.basic_publish_confirm(message, exchange="", routing_key=target)
            channel.basic_ack(message.delivery_tag)
            moved += 1
    return moved


def migrate_to_quorum(amqp_uri: str) -> list[str]:
    """Replace each classic work queue by a quorum queue of the same name and bindings,
    keeping its messages (moved through ``<name>.to-quorum`` and back). Run it with every
    service stopped; returns what it did, a line per queue."""
    from kombu import Connection

    done = []
    config = {"AMQP_URI": amqp_uri}
    with Connection(amqp_uri) as connection:
        for queue in work_queues(config):
            if _is_quorum_or_new(connection, queue):
                continue
            # classic: deleted only if empty, which a quorum queue cannot be asked
            holding = Queue(f"{queue.name}.to-quorum", durable=True)
            with connection.channel() as channel:
                holding(channel).declare()
            kept = _move(connection, queue.name, holding.name)
            with connection.channel() as channel:
                channel.queue_delete(queue.name, if_empty=True)
                queue(channel).declare()  # with its binding
            _move(connection, holding.name, queue.name)
            with connection.channel() as channel:
                channel.queue_delete(holding.name, if_empty=True)
            done.append(f"{queue.name}: classic -> quorum, {kept} messages kept")
    return done


if __name__ == "__main__":
    import sys

    from clinic.settings import Settings

    if sys.argv[1:] != ["migrate"]:
        sys.exit("usage: python -m clinic.queues migrate   (every service stopped first)")
    for line in migrate_to_quorum(Settings.from_env().amqp_uri) or ["nothing to move"]:
        print(line)
