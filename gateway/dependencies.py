"""Dependencies the gateway injects besides RPC (``clinic.rpc``) and its settings
(``clinic.settings.SettingsProvider``): its feed cache."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from clinic.broker import on_every_connection
from gateway.feeds import FeedCache


class Feeds(DependencyProvider):
    """The therapists' feeds cached in this gateway process, shared by all its workers."""

    def setup(self) -> None:
        self.cache = FeedCache()

    def start(self) -> None:
        """Forget every cached feed and owner whenever the container's consumer (re)connects:
        broadcasts sent while it was away are lost."""
        on_every_connection(self.container, self.cache.reconnected)

    def get_dependency(self, worker_ctx) -> FeedCache:
        return self.cache
