"""The gateway service: every public route, each delegating to a backend service over RPC.

The routes live in ``gateway/api/``, one class per section of API.md; this class gathers them
and declares what they share.
"""

from gateway.api.operations import OperationsApi
from gateway.dependencies import Config, ServiceRpc


class GatewayService(OperationsApi):
    name = "gateway"

    config = Config()
    availability = ServiceRpc("availability")
    booking = ServiceRpc("booking")
    notifications = ServiceRpc("notifications")
