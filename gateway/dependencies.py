"""Dependencies the gateway injects: the backend services over RPC, and its settings."""

from __future__ import annotations

from typing import Any

import eventlet
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy

from clinic.errors import ServiceUnavailable
from clinic.settings import Settings
from gateway.feeds import FeedCache


class ServiceClient:
    """Calls one backend service; a call that is not answered in time is a 503, not a hang."""

    def __init__(self, proxy, service: str, timeout: float):
        self._proxy = proxy
        self.service = service
        self.timeout = timeout

    def call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        try:
            reply = getattr(self._proxy, method).call_async(*args, **kwargs)
            with eventlet.Timeout(timeout or self.timeout):
                return reply.result()
        except (eventlet.Timeout, UnknownService):
            raise ServiceUnavailable(f"The {self.service} service did not answer in time.",
                                     {"service": self.service}) from None

    def __getattr__(self, method: str):
        return lambda *args, **kwargs: self.call(method, *args, **kwargs)


class ServiceRpc(RpcProxy):
    """nameko's RpcProxy, handing the worker a ``ServiceClient`` with a timeout."""

    def get_dependency(self, worker_ctx) -> ServiceClient:
        timeout = float(self.container.config.get("RPC_TIMEOUT_SECONDS") or 10)
        return ServiceClient(super().get_dependency(worker_ctx), self.target_service, timeout)


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
