"""nameko's AMQP extensions, made to outlive a broker that goes away and comes back.

nameko 2.14 kills a whole service container when a thread of one of its extensions raises
(``ServiceContainer._handle_thread_exited`` -> ``kill``), and ``nameko run`` then exits. With
RabbitMQ away for more than a few seconds that happens in these places, each covered here:

- an RPC worker's reply (``RpcConsumer.handle_result`` -> ``Responder.send_response`` ->
  publish) that runs out of retries: ``ReliableRpcConsumer`` logs it and drops the reply. The
  caller has answered 503 at its deadline and re-sends with its Idempotency-Key; the request was
  not acked, so RabbitMQ hands it out again (it is requeued if the channel still lives);
- acking or requeueing a message on a channel that died under it (``QueueConsumer.ack_message``
  only ignores amqp's ConnectionError): ``ReconnectingQueueConsumer`` leaves such a message to
  the broker, which redelivers whatever was not acked;
- the consuming thread itself (kombu's ``ConsumerMixin.run``) on an error outside kombu's list:
  ``ReconnectingQueueConsumer`` logs it and connects again. It also retries every second at
  most (kombu's default backoff grows to 30 s, so a 30 s outage left services deaf for up to
  half a minute after the broker's return) and logs a failed attempt once in a while, not each;
- ``EventDispatcher``, which connects in ``setup`` (a service started while the broker is away
  could not start) and raises from a failed publish: ``BestEffortDispatcher`` for the gateway's
  cache broadcasts, which connects on use and gives up after a short try (the caches expire).

Everything that consumes in our services uses ``ReconnectingQueueConsumer`` (one per container:
RPC entrypoints, event handlers, the RPC proxies' reply queue), so one connection carries them
all and comes back as one. Timers publish nothing themselves: the booking service's timer wakes
the outbox relay (``clinic.outbox``, which keeps events in the database while the broker is
away) and the notifications timer's RPC calls fail inside its worker, which nameko logs.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager

import eventlet
from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
)
from nameko.events import EventDispatcher, EventHandler
from nameko.messaging import QueueConsumer, QueueConsumerStopped
from nameko.rpc import (
    RPC_QUEUE_TEMPLATE,
    RPC_REPLY_QUEUE_TTL,
    ReplyListener,
    Rpc,
    RpcConsumer,
    RpcProxy,
    get_rpc_exchange,
)
from nameko.standalone.events import get_event_exchange
from nameko.utils import sanitize_url

from clinic import queues

log = logging.getLogger(__name__)

# The broker gone or going: a publish that cannot be made, a connection that dropped.
BROKER_ERRORS = (OSError, KombuError, AMQPError)

RECONNECT_MAX_SECONDS = 1.0  # between two attempts to reach the broker again
LOG_EVERY_SECONDS = 15.0  # a consumer that cannot connect says so this often, not each try


class ReconnectingQueueConsumer(QueueConsumer):
    """nameko's QueueConsumer (one connection per container, a kombu consumer per queue), that
    never lets a broker error end its thread or a worker, and reconnects within a second of the
    broker's return, resuming every queue it consumed (kombu calls ``get_consumers`` again)."""

    def __init__(self) -> None:
        super().__init__()
        self._failing_since: float | None = None
        self._last_logged = 0.0

    @contextmanager
    def establish_connection(self):
        with self.create_connection() as connection:
            connection.ensure_connection(
                self.on_connection_error, self.connect_max_retries, interval_start=0.2,
                interval_step=0.4, interval_max=RECONNECT_MAX_SECONDS)
            yield connection

    def on_connection_error(self, exc, interval) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._last_logged >= LOG_EVERY_SECONDS:
            self._last_logged = now
            log.warning("%s: broker at %s unreachable for %.0fs (%s); retrying every %.1fs",
                        self.container.service_name, sanitize_url(self.amqp_uri),
                        now - self._failing_since, exc, RECONNECT_MAX_SECONDS)

    def on_consume_ready(self, connection, channel, consumers, **kwargs) -> None:
        if self._failing_since is not None:
            log.warning("%s: consuming again from %d queues after %.1fs without the broker",
                        self.container.service_name, len(consumers),
                        time.monotonic() - self._failing_since)
            self._failing_since = None
            self._last_logged = 0.0
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def run(self, _tokens: int = 1, **kwargs) -> None:
        while not self.should_stop:
            try:
                super().run(_tokens, **kwargs)
            except QueueConsumerStopped:
                raise  # nameko stopping a consumer that had not started yet
            except Exception as error:  # outside kombu's own list: still only a lost connection
                if self.should_stop:
                    return
                log.warning("%s: consumer connection failed (%r); connecting again",
                            self.container.service_name, error)
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                eventlet.sleep(RECONNECT_MAX_SECONDS)

    def ack_message(self, message) -> None:
        self._settle(message, message.ack)

    def requeue_message(self, message) -> None:
        self._settle(message, message.requeue)

    def _settle(self, message, settle) -> None:
        if not message.channel.connection:
            return  # its channel is gone: the broker redelivers what was not acked
        try:
            settle()
        except BROKER_ERRORS as error:
            log.info("message left to the broker's redelivery (%r)", error)


class ReliableRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer on the reconnecting consumer, its queue declared by
    ``clinic.queues``; a reply that cannot be published is dropped, not fatal."""

    queue_consumer = ReconnectingQueueConsumer()

    def setup(self) -> None:
        if self.queue is None:
            service = self.container.service_name
            self.queue = queues.work_queue(RPC_QUEUE_TEMPLATE.format(service),
                                           get_rpc_exchange(self.container.config),
                                           f"{service}.*")
            self.queue_consumer.register_provider(self)
            self._registered = True

    def handle_result(self, message, result, exc_info):
        try:
            return super().handle_result(message, result, exc_info)
        except BROKER_ERRORS as error:
            log.warning("reply to %s dropped, the broker is away (%r); the request goes back "
                        "to its queue", message.delivery_info.get("routing_key"), error)
            self.queue_consumer.requeue_message(message)
            return result, exc_info


class ReliableRpc(Rpc):
    """nameko's ``@rpc`` entrypoint on ``ReliableRpcConsumer``."""

    rpc_consumer = ReliableRpcConsumer()


class ReliableReplyListener(ReplyListener):
    """nameko's RPC reply listener on the reconnecting consumer. Forgets, after the reply
    queue's own lifetime, the calls whose request never reached the broker."""

    queue_consumer = ReconnectingQueueConsumer()

    def setup(self) -> None:
        super().setup()
        self._issued: deque[tuple[float, str]] = deque()

    def get_reply_event(self, correlation_id):
        now = time.monotonic()
        while self._issued and now - self._issued[0][0] > RPC_REPLY_QUEUE_TTL / 1000:
            self._reply_events.pop(self._issued.popleft()[1], None)
        self._issued.append((now, correlation_id))
        return super().get_reply_event(correlation_id)


class ReliableRpcProxy(RpcProxy):
    """nameko's RpcProxy with ``ReliableReplyListener``: same calls, same proxies."""

    rpc_reply_listener = ReliableReplyListener()


class ReconnectingEventHandler(EventHandler):
    """nameko's event handler on the reconnecting consumer (for BROADCAST handlers; handlers of
    work queues use ``clinic.handlers``, which also retries and dead-letters)."""

    queue_consumer = ReconnectingQueueConsumer()


reconnecting_event_handler = ReconnectingEventHandler.decorator


def on_every_connection(container, forget: Callable[[], None]) -> None:
    """Call ``forget`` each time the container's consumer (re)connects: broadcasts sent while it
    was away are lost, so a cache they keep fresh must start again (kombu calls
    ``on_consume_ready`` after each connection, once the queues are declared again)."""
    for entrypoint in container.entrypoints:
        consumer = getattr(entrypoint, "queue_consumer", None)
        if consumer is None:
            continue
        hooked = consumer.__dict__.setdefault("_clinic_forgetters", [])
        if not hooked:
            ready = consumer.on_consume_ready

            def on_consume_ready(*args, _ready=ready, _hooked=hooked, **kwargs):
                for callback in _hooked:
                    callback()
                return _ready(*args, **kwargs)

            consumer.on_consume_ready = on_consume_ready
        if forget not in hooked:
            hooked.append(forget)


class BestEffortDispatcher(EventDispatcher):
    """nameko's EventDispatcher for broadcasts that only keep caches fresh (their readers'
    caches also expire): connects when it publishes (not in ``setup``, so the service starts
    while the broker is away), tries for a second or two, and returns False instead of raising
    when the broker is away. Events that must arrive go through ``clinic.outbox``."""

    def setup(self) -> None:
        config = self.container.config
        self.exchange = get_event_exchange(self.container.service_name, config)
        self.declare.append(self.exchange)
        self.publisher = Publisher(
            config[AMQP_URI_CONFIG_KEY], serializer=self.container.serializer,
            exchange=self.exchange, declare=self.declare, ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY), retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.5, "interval_step": 0,
                          "interval_max": 0.5})
        self.publisher.transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "max_retries": 1,
                                            "interval_start": 0.5, "interval_step": 0,
                                            "interval_max": 0.5}

    def get_dependency(self, worker_ctx):
        publish = super().get_dependency(worker_ctx)

        def dispatch(event_type: str, event_data) -> bool:
            try:
                publish(event_type, event_data)
            except BROKER_ERRORS as error:
                log.warning("%s not broadcast, the broker is away (%r)", event_type, error)
                return False
            return True

        return dispatch
