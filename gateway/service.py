"""The gateway service: every public route, each delegating to a backend service over RPC.

The routes live in ``gateway/api/``, one class per section of API.md; this class gathers them
and declares what they share.
"""

from clinic.rpc import ServiceRpc
from clinic.shutdown import ShutdownDeadline
from clinic.tracing import RequestTrace
from gateway.api.booking import BookingApi
from gateway.api.calendars import CalendarsApi
from gateway.api.catalogue import CatalogueApi
from gateway.api.notifications import NotificationsApi
from gateway.api.operations import OperationsApi
from gateway.api.outside_calendars import OutsideCalendarsApi
from gateway.api.pages import PagesApi
from gateway.dependencies import Config


class GatewayService(OperationsApi, CatalogueApi, BookingApi, CalendarsApi, NotificationsApi,
                     PagesApi, OutsideCalendarsApi):
    name = "gateway"

    config = Config()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    trace = RequestTrace()  # the request's X-Request-ID in this worker's logs
    availability = ServiceRpc("availability")
    booking = ServiceRpc("booking")
    notifications = ServiceRpc("notifications")
