"""A gateway's feed caches forget everything when its consumer reconnects to RabbitMQ: the
broadcasts sent meanwhile (booking changes, rotations) went to queues that died with the
connection."""

from __future__ import annotations

import subprocess
import urllib.parse
from datetime import UTC, datetime

import eventlet
import requests
from nameko.events import BROADCAST, event_handler

from gateway.dependencies import Feeds
from tests.conftest import BROKER_ADMIN


class FeedHolder:
    """A container with the gateway's feed cache and a broadcast handler (so a consumer)."""

    name = "feed_holder"
    feeds = Feeds()

    @event_handler("gateway", "feed_cache_tick", handler_type=BROADCAST, reliable_delivery=False)
    def ticked(self, payload) -> None:
        self.feeds.heard_from_broker()


def close_connections(amqp_uri: str) -> None:
    """What a network cut or a broker restart does to every connection of the vhost."""
    vhost = urllib.parse.urlsplit(amqp_uri).path.lstrip("/")
    parts = urllib.parse.urlsplit(BROKER_ADMIN)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}/api"
    auth = (parts.username, parts.password)
    try:
        listed = requests.get(f"{base}/vhosts/{urllib.parse.quote(vhost, safe='')}/connections",
                              auth=auth, timeout=10).json()
        for connection in listed:
            requests.delete(f"{base}/connections/{urllib.parse.quote(connection['name'])}",
                            auth=auth, timeout=10)
    except requests.ConnectionError:
        subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost,
                        "test: a cut"], check=True)


def test_a_reconnected_consumer_forgets_every_cached_feed_and_owner(container_factory,
                                                                     service_config):
    container = container_factory(FeedHolder, service_config)
    container.start()
    cache = next(d for d in container.dependencies if isinstance(d, Feeds)).cache
    cache.heard_from_broker()
    cache.remember_owner("secret-hash", {"id": "zoe", "name": "Zoë", "timezone": "UTC"})
    cache.put("zoe", b"BEGIN:VCALENDAR", datetime(2026, 12, 1, tzinfo=UTC))
    assert cache.get("zoe") is not None and cache.owner("secret-hash") is not None
    epoch = cache.generation("zoe")[0]

    with eventlet.Timeout(60):
        while cache.generation("zoe")[0] == epoch:  # kombu reconnects, then calls the hook
            # (the management API lists a new connection only after its next statistics)
            close_connections(service_config["AMQP_URI"])
            eventlet.sleep(1)
    cache.heard_from_broker()
    assert cache.get("zoe") is None and cache.owner("secret-hash") is None
