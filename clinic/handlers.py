"""Event handlers of work queues: an event is acked once handled, never lost to a failure.

nameko acks an event whose handler raised, and the event is gone. Here (``decide``):

- handled: acked;
- failed with ``ServiceUnavailable`` (its database away, see ``clinic.db``): back to its queue
  after a pause, not counted as a failure (the database comes back; the event waits for it);
- failed otherwise: back to its queue after a growing pause (1, 2, 4 ... s), until it has been
  delivered ``MAX_DELIVERIES`` times; then parked in the handler's dead-letter queue
  (``<queue>.dead``, see ``clinic.queues``) with why, and acked. An operator sees the count in
  the gateway's ``/ready`` and replays it with ``python -m clinic.deadletters replay <queue>``.

Failures are counted by this process, per event id (classic queues count nothing; quorum
queues' ``x-delivery-count`` also counts the uncounted requeues, so it is not used). Several
processes of one service each allow ``MAX_DELIVERIES``: still a bound. A dead letter that cannot
be published (the broker away) leaves the event on its queue.
"""

from __future__ import annotations

import enum
import logging
from datetime import UTC, datetime
from typing import Any

import eventlet
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import AMQP_URI_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS
from nameko.events import SERVICE_POOL

from clinic import queues
from clinic.broker import BROKER_ERRORS, ReconnectingEventHandler
from clinic.errors import ServiceUnavailable

log = logging.getLogger(__name__)

RETRY_PAUSE_SECONDS = 1.0  # the first pause; doubled after each further failure
MAX_PAUSE_SECONDS = 8.0
REMEMBERED_FAILURES = 10_000  # failing events this process keeps a count for


class Decision(enum.Enum):
    ACK = "ack"
    WAIT = "wait"  # requeue, not a failure
    RETRY = "retry"  # requeue, counted
    DEAD_LETTER = "dead_letter"


def decide(error: BaseException | None, deliveries: int,
           limit: int = queues.MAX_DELIVERIES) -> Decision:
    """What to do with an event after its ``deliveries``-th delivery ended in ``error``."""
    if error is None:
        return Decision.ACK
    if isinstance(error, ServiceUnavailable):
        return Decision.WAIT
    return Decision.RETRY if deliveries < limit else Decision.DEAD_LETTER


def retry_pause(deliveries: int) -> float:
    """The pause before an event that failed ``deliveries`` times goes back to its queue."""
    return min(RETRY_PAUSE_SECONDS * 2 ** max(deliveries - 1, 0), MAX_PAUSE_SECONDS)


def dead_letter_headers(headers: dict[str, Any] | None, queue: str, error: BaseException,
                        deliveries: int) -> dict[str, Any]:
    """The event's own headers, plus where it failed and why: the exception's class only (its
    text could quote the event's data, which stays in the body)."""
    return {**(headers or {}), "x-clinic-queue": queue, "x-clinic-error": type(error).__name__,
            "x-clinic-deliveries": deliveries,
            "x-clinic-parked-at": datetime.now(UTC).isoformat(timespec="seconds")}


class RetryingEventHandler(ReconnectingEventHandler):
    """nameko's event handler (SERVICE_POOL by default) with ``decide``'s outcomes; its queue
    and dead-letter queue are declared by ``clinic.queues``."""

    def setup(self) -> None:
        super().setup()
        self._failures: dict[str, int] = {}
        self.dead_letters = None
        if self.handler_type is SERVICE_POOL:
            self.queue = queues.work_queue(self.queue.name, self.queue.exchange,
                                           self.event_type)
            self.dead_letters = queues.dead_letter_queue(self.queue.name,
                                                         self.container.service_name)
            self._publisher = Publisher(
                self.container.config[AMQP_URI_CONFIG_KEY], use_confirms=True, mandatory=True,
                declare=[self.dead_letters], retry=True, retry_policy={"max_retries": 2})
            self._publisher.transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "max_retries": 2,
                                                 "interval_start": 1, "interval_step": 1}

    def handle_message_processed(self, message, result=None, exc_info=None):
        error = exc_info[1] if exc_info is not None else None
        key = _event_key(message)
        deliveries = self._failures.get(key, 0) + 1
        decision = decide(error, deliveries)
        if decision is Decision.DEAD_LETTER and self.dead_letters is None:
            decision = Decision.ACK  # a broadcast handler's queue has no dead letters: nameko's
        if decision is Decision.ACK:
            self._failures.pop(key, None)
            self.queue_consumer.ack_message(message)
        elif decision is Decision.WAIT:
            # The pause holds this worker, so a broken database slows redelivery, not spins it.
            eventlet.sleep(RETRY_PAUSE_SECONDS)
            self.queue_consumer.requeue_message(message)
        elif decision is Decision.RETRY:
            self._remember(key, deliveries)
            pause = retry_pause(deliveries)
            log.warning("event %s failed on %s (delivery %d of %d, %s); again in %gs", key,
                        self.queue.name, deliveries, queues.MAX_DELIVERIES, type(error).__name__,
                        pause)
            eventlet.sleep(pause)
            self.queue_consumer.requeue_message(message)
        elif self._park(message, error, deliveries):
            self._failures.pop(key, None)
            self.queue_consumer.ack_message(message)
        else:
            eventlet.sleep(retry_pause(deliveries))
            self.queue_consumer.requeue_message(message)

    def _park(self, message, error: BaseException, deliveries: int) -> bool:
        """Publish the event to the dead-letter queue (confirmed); False if it could not be."""
        try:
            self._publisher.publish(
                message.body, exchange=self.dead_letters.exchange,
                routing_key=self.dead_letters.routing_key,
                headers=dead_letter_headers(message.headers, self.queue.name, error, deliveries),
                content_type=message.content_type, content_encoding=message.content_encoding,
                serializer=None)
        except (*BROKER_ERRORS, UndeliverableMessage) as failure:
            log.warning("event %s could not be parked in %s (%r); it stays on its queue",
                        _event_key(message), self.dead_letters.name, failure)
            return False
        log.error("event %s parked in %s after %d failed deliveries (%s); replay with "
                  "`python -m clinic.deadletters replay %s`", _event_key(message),
                  self.dead_letters.name, deliveries, type(error).__name__, self.queue.name)
        return True

    def _remember(self, key: str, deliveries: int) -> None:
        if len(self._failures) >= REMEMBERED_FAILURES:
            self._failures.pop(next(iter(self._failures)))
        self._failures[key] = deliveries


def _event_key(message) -> str:
    """The event's id (``clinic.events.Event``), else the broker's delivery tag."""
    payload = message.payload
    if isinstance(payload, dict) and isinstance(payload.get("id"), str):
        return payload["id"]
    return f"delivery-{message.delivery_tag}"


event_handler = RetryingEventHandler.decorator
