"""The gateway service: every public route, each delegating to a backend service over RPC.

The routes live in ``gateway/api/``, one class per section of docs/http-contract.md; this class
gathers them
and declares what they share.
"""

import os

from clinic.errors import StartupRefused
from clinic.rpc import ServiceRpc
from clinic.settings import SettingsProvider
from clinic.shutdown import ShutdownDeadline
from gateway.api.booking import BookingApi
from gateway.api.calendars import CalendarsApi
from gateway.api.catalogue import CatalogueApi
from gateway.api.notifications import NotificationsApi
from gateway.api.operations import OperationsApi
from gateway.api.outside_calendars import OutsideCalendarsApi
from gateway.api.pages import PagesApi
from gateway.api.progress import ProgressApi
from gateway.security import admin_token_problem

# Checked when `nameko run` imports this module, before any thread starts, so the refusal is
# one line (clinic.cli prints it); the web server checks its own config again when it starts.
if _refusal := admin_token_problem(os.environ.get("CLINIC_ADMIN_TOKEN", "").strip()):
    raise StartupRefused(_refusal)


class GatewayService(OperationsApi, CatalogueApi, BookingApi, CalendarsApi, NotificationsApi,
                     PagesApi, OutsideCalendarsApi, ProgressApi):
    name = "gateway"

    config = SettingsProvider()
    shutdown = ShutdownDeadline()  # SIGTERM: a graceful stop, bounded
    availability = ServiceRpc("availability")
    booking = ServiceRpc("booking")
    notifications = ServiceRpc("notifications")
    progress = ServiceRpc("progress")
