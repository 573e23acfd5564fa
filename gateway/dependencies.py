"""Dependencies the gateway injects besides RPC (``clinic.rpc``) and its settings
(``clinic.settings.SettingsProvider``): its feed cache."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

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
