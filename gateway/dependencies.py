"""Dependencies the gateway injects besides RPC (``clinic.rpc``) and its settings
(``clinic.settings.SettingsProvider``): its feed cache."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from gateway.feeds import FeedCache


class Feeds(DependencyProvider):
    """The therapists' feeds cached in this gateway process, shared by all its workers."""

    def setup(self) -> None:
        self.cache = FeedCache()

    def get_dependency(self, worker_ctx) -> FeedCache:
        return self.cache
