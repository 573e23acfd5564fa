"""Dependencies the gateway injects besides RPC (``clinic.rpc``): its feed cache, its settings."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from clinic.settings import Settings
from gateway.feeds import FeedCache


class Feeds(DependencyProvider):
    """The therapists' feeds cached in this gateway process, shared by all its workers."""

    def setup(self) -> None:
        self.cache = FeedCache()

    def start(self) -> None:
        """Forget every cached feed and owner whenever the container's consumer (re)connects:
        broadcasts sent while it was away are lost (kombu calls ``on_consume_ready`` after each
        connection, once the queues are declared again)."""
        for entrypoint in self.container.entrypoints:
            consumer = getattr(entrypoint, "queue_consumer", None)
            if consumer is not None and not getattr(consumer, "_feeds_hooked", False):
                ready = consumer.on_consume_ready

                def on_consume_ready(*args, _ready=ready, **kwargs):
                    self.cache.reconnected()
                    return _ready(*args, **kwargs)

                consumer.on_consume_ready = on_consume_ready
                consumer._feeds_hooked = True

    def get_dependency(self, worker_ctx) -> FeedCache:
        return self.cache


class Config(DependencyProvider):
    """The gateway's settings, parsed once."""

    def setup(self) -> None:
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx) -> Settings:
        return self.settings
