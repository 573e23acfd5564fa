"""The gateway service: every public route, each delegating to a backend service over RPC.

The routes live in ``gateway/api/``, one class per section of API.md; this class gathers them
and declares what they share.
"""

from clinic.rpc import ServiceRpc
from clinic.shutdown import ShutdownDeadline
from gateway.api.booking import BookingApi
from gateway.api.calendars import CalendarsApi
from gateway.api.catalogue import CatalogueApi
from gateway.api.clinic import ClinicApi
from gateway.api.notifications import NotificationsApi
from gateway.api.operations import OperationsApi
from gateway.api.pages import PagesApi
from gateway.clinic_info import Clinic
from gateway.dependencies import Config


class GatewayService(OperationsApi, CatalogueApi, BookingApi, CalendarsApi, NotificationsApi,
                     PagesApi, ClinicApi):
    name = "gateway"

    config = Config()
    clinic = Clinic()  # the clinic's name, place, contact: /api/v1/clinic and the pages
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    availability = ServiceRpc("availability")
    booking = ServiceRpc("booking")
    notifications = ServiceRpc("notifications")
