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

Changing ``WORK_QUEUE_ARGUMENTS`` (quorum queues: ``{"x-queue-type": "quorum"}``) changes every
work queue at once; an existing queue keeps the arguments it was made with, so a deployed
broker's queues must be drained and deleted (or moved) first. Quorum queues count deliveries
themselves (the ``x-delivery-count`` header, which ``delivery_count`` reads) and can dead-letter
on their own past ``x-delivery-limit``: leave that limit unset (or above ``MAX_DELIVERIES``),
because an event requeued while its database is away must not count as a failure.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

# Arguments of every work queue (none: classic queues today).
WORK_QUEUE_ARGUMENTS: dict[str, Any] = {}

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
