"""The relay declares handler queues from SUBSCRIPTIONS; it must match the real handlers.

A handler missing from the table would have its queue declared only when its service starts,
and events published before then would be dropped; an entry with no handler would fill a queue
nobody reads.
"""

from nameko.events import SERVICE_POOL, EventHandler

from clinic.events import SUBSCRIPTIONS, handler_queue_name
from gateway.service import GatewayService
from services.availability.service import AvailabilityService
from services.booking.service import BookingService
from services.notifications.service import NotificationsService
from services.progress.service import ProgressService

SERVICES = (AvailabilityService, BookingService, NotificationsService, ProgressService,
            GatewayService)


def declared_handlers() -> set[tuple[str, str, str, str]]:
    found = set()
    for service in SERVICES:
        for name in dir(service):
            for entrypoint in getattr(getattr(service, name), "nameko_entrypoints", ()):
                # BROADCAST handlers (the gateway's feed caches) get a queue per process,
                # made when it starts; they want no events from before, so none is declared.
                if isinstance(entrypoint, EventHandler) and \
                        entrypoint.handler_type == SERVICE_POOL:
                    found.add((entrypoint.source_service, entrypoint.event_type, service.name,
                               name))
    return found


def test_subscriptions_list_exactly_the_event_handlers():
    listed = {(source, event_type, service, method)
              for (source, event_type), handlers in SUBSCRIPTIONS.items()
              for service, method in handlers}
    assert listed == declared_handlers()


def test_queue_names_match_nameko():
    # nameko's SERVICE_POOL handler queue: evt-<source>-<type>--<service>.<method>
    assert handler_queue_name("booking", "hold_placed", "availability", "on_hold_placed") == \
        "evt-booking-hold_placed--availability.on_hold_placed"
