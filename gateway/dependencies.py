"""Dependencies the gateway injects besides RPC (``clinic.rpc``): its feed cache, its settings."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from clinic.settings import Settings
from gateway.feeds import FeedCache


class Feeds(DependencyProvider):
    """The therapists' feeds cached in this gateway process, shared by all its workers."""

    def setup(self) -> None:
        self.cache = FeedCache()

    def get_dependency(self, worker_ctx) -> FeedCache:
        return self.cache


class Config(DependencyProvider):
    """The gateway's settings, parsed once."""

    def setup(self) -> None:
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx) -> Settings:
        return self.settings
