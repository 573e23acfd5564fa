"""The notifications service: confirmation, reminder and end-of-course messages, each sent once."""

from clinic.clock import Clock
from clinic.db import Database
from clinic.errors import rpc


class NotificationsService:
    name = "notifications"

    db = Database("notifications")
    clock = Clock()

    @rpc
    def ping(self) -> str:
        return "pong"
