"""The booking service: holds, bookings and courses; the one authority on who has which time."""

from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import rpc
from clinic.outbox import OutboxRelay
from services.booking.models import outbox


class BookingService:
    name = "booking"

    db = Database("booking")
    clock = Clock()
    events = OutboxRelay("booking", outbox)

    @rpc
    def ping(self) -> str:
        return "pong"
