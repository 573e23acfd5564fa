"""How our queues are declared: durable work queues are quorum queues, per-process ones classic.

A queue that carries work (each service's ``rpc-<service>`` queue, every SERVICE_POOL event
handler's queue) is replicated over the RabbitMQ cluster's nodes as a quorum queue, so a message
survives the loss of a node. Queues that belong to one process by nature (RPC reply queues,
the gateways' BROADCAST event queues) stay classic: they die with their process and are
declared again by the next. Every declaration of a work queue (nameko's consumers and the
outbox relay, which declares the handlers' queues before it publishes) takes its arguments from
here, because RabbitMQ refuses a redeclaration with other arguments.

A classic queue cannot become a quorum queue in place: ``python -m clinic.queues migrate``
moves existing classic work queues over (see its docstring).
"""

from __future__ import annotations

from typing import Any

from kombu import Queue
from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc, RpcConsumer, get_rpc_exchange

WORK_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


def work_queue(name: str, **options: Any) -> Queue:
    """A durable, shared queue that carries work: a quorum queue."""
    return Queue(name, durable=True, auto_delete=False, exclusive=False,
                 queue_arguments=dict(WORK_QUEUE_ARGUMENTS), **options)


class QuorumRpcConsumer(RpcConsumer):
    """nameko's RPC consumer, its ``rpc-<service>`` queue a quorum queue."""

    def setup(self) -> None:
        if self.queue is None:
            service = self.container.service_name
            self.queue = work_queue(RPC_QUEUE_TEMPLATE.format(service),
                                    exchange=get_rpc_exchange(self.container.config),
                                    routing_key=f"{service}.*")
            self.queue_consumer.register_provider(self)
            self._registered = True


class QuorumRpc(Rpc):
    rpc_consumer = QuorumRpcConsumer()


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
