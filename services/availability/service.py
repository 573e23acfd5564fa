"""The availability service: therapists, schedules, time off; finds free slots and course times."""

from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import rpc


class AvailabilityService:
    name = "availability"

    db = Database("availability")
    clock = Clock()

    @rpc
    def ping(self) -> str:
        return "pong"
