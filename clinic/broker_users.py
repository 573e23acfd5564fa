"""A RabbitMQ user per service, allowed only what that service publishes and consumes.

With one shared broker login any process that has it can call any RPC of any service, with any
``caller`` it likes, and forge any event. In production each service logs in as itself and its
permissions on the vhost name exactly the queues and exchanges it uses (nameko's names:
``rpc-<service>``, ``rpc.reply-<service>-<uuid>``, ``evt-<source>-<event>--<service>.<method>``,
the ``nameko-rpc`` exchange and ``<source>.events``), plus topic permissions on ``nameko-rpc``
that say which RPCs it may send: notifications may ask booking for a manage token and nothing
else, and only the gateway may call everything the public API needs.

``python -m clinic.broker_users definitions OUT`` writes a RabbitMQ definitions file (for
``load_definitions``) with passwords from ``<SERVICE>_AMQP_PASSWORD`` and the operator's
``RABBITMQ_ADMIN_PASSWORD``; ``docker-compose.yml`` does this before RabbitMQ starts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANY = "*"  # every method of the called service
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RPC_EXCHANGE = "nameko-rpc"
# docker-compose's healthchecks ping each service with its own login (clinic.healthcheck).
STANDALONE_REPLIES = r"rpc\.reply-standalone_rpc_proxy-.*"


@dataclass(frozen=True)
class Grant:
    """What one service does on the broker."""

    service: str
    serves_rpc: bool = True
    calls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # service -> methods
    listens_to: tuple[str, ...] = ()  # event sources it has handlers for
    publishes_events: bool = False  # dispatches events as ``<service>.events``

    def permissions(self) -> dict[str, str]:
        """configure / write / read regular expressions on the vhost."""
        me = re.escape(self.service)
        own_queues = [f"rpc\\.reply-{me}-.*", STANDALONE_REPLIES]
        if self.serves_rpc:
            own_queues.append(f"rpc-{me}")
        for source in self.listens_to:
            own_queues.append(f"evt-{re.escape(source)}-[^.]*--{me}\\..*")
        exchanges = [re.escape(RPC_EXCHANGE)]
        if self.publishes_events:
            # The outbox relay declares every subscriber's queue on its exchange and binds it.
            own_queues.append(f"evt-{me}-.*")
            exchanges.append(f"{me}\\.events")
        if self.listens_to:  # a failing handler parks its event here (clinic.handlers)
            exchanges.append(f"{me}\\.dead-letters")
        sources = [f"{re.escape(source)}\\.events" for source in self.listens_to]
        return {
            # nameko declares the exchanges it binds to, so declaring needs them too.
            "configure": _any_of(own_queues + exchanges + sources),
            "write": _any_of(own_queues + exchanges),  # publish to an exchange; bind a queue
            "read": _any_of(own_queues + exchanges + sources),  # consume; bind from an exchange
        }

    def topic_permissions(self) -> list[dict[str, str]]:
        """Which routing keys it may publish and bind on ``nameko-rpc``: replies (a uuid),
        its own ping (the healthcheck) and the RPCs it calls."""
        me = re.escape(self.service)
        sent = [UUID, f"{me}\\.ping"]
        for target, methods in sorted(self.calls.items()):
            names = ".*" if ANY in methods else "(" + "|".join(map(re.escape, methods)) + ")"
            sent.append(f"{re.escape(target)}\\.{names}")
        bound = [UUID] + ([f"{me}\\.\\*"] if self.serves_rpc else [])
        return [{"exchange": RPC_EXCHANGE, "write": _any_of(sent), "read": _any_of(bound)}]


def _any_of(patterns: list[str]) -> str:
    return "^(" + "|".join(patterns) + ")$"


GRANTS: dict[str, Grant] = {grant.service: grant for grant in (
    Grant("availability", listens_to=("booking",), publishes_events=True),
    # booking handles its own events and availability's time_off_removed / schedule_changed
    # too: the waitlist offers the times they freed
    Grant("booking", calls={"availability": (ANY,)}, listens_to=("booking", "availability"),
          publishes_events=True),
    # a manage token for a letter's link; a waitlist entry's contact (with a token) for an offer
    Grant("notifications", calls={"booking": ("issue_manage_token", "waitlist_contact"),
                                  "availability": (ANY,)},
          listens_to=("booking", "availability", "progress")),
    # progress checks a client's course token with booking before its events have arrived,
    # and writes its reads and changes of a course into booking's audit log (record_access).
    Grant("progress", calls={"booking": ("get_course", "record_access")}, listens_to=("booking",),
          publishes_events=True),
    Grant("gateway", serves_rpc=False, publishes_events=True, listens_to=("booking", "gateway"),
          calls={"availability": (ANY,), "booking": (ANY,), "notifications": (ANY,),
                 "progress": (ANY,)}),
)}


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(vhost: str, passwords: Mapping[str, str], admin_password: str) -> dict[str, Any]:
    """A RabbitMQ definitions document: the vhost, one user per service, the operator."""
    users = [{"name": "clinic-admin", "password_hash": password_hash(admin_password),
              "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}]
    permissions = [{"user": "clinic-admin", "vhost": vhost, "configure": ".*", "write": ".*",
                    "read": ".*"}]
    topic_permissions = []
    for name, grant in GRANTS.items():
        users.append({"name": name, "password_hash": password_hash(passwords[name]),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
        permissions.append({"user": name, "vhost": vhost, **grant.permissions()})
        topic_permissions += [{"user": name, "vhost": vhost, **topic}
                              for topic in grant.topic_permissions()]
    return {"users": users, "vhosts": [{"name": vhost}], "permissions": permissions,
            "topic_permissions": topic_permissions}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "definitions":
        print("usage: python -m clinic.broker_users definitions OUT.json", file=sys.stderr)
        return 2
    missing = [f"{name.upper()}_AMQP_PASSWORD" for name in GRANTS
               if not os.environ.get(f"{name.upper()}_AMQP_PASSWORD")]
    if not os.environ.get("RABBITMQ_ADMIN_PASSWORD"):
        missing.append("RABBITMQ_ADMIN_PASSWORD")
    if missing:
        print(f"refusing to write definitions: set {', '.join(missing)}", file=sys.stderr)
        return 2
    document = definitions(os.environ.get("RABBITMQ_VHOST", "clinic"),
                           {name: os.environ[f"{name.upper()}_AMQP_PASSWORD"] for name in GRANTS},
                           os.environ["RABBITMQ_ADMIN_PASSWORD"])
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2))
    out.chmod(0o644)  # read by the rabbitmq container's own user
    print(f"RabbitMQ definitions for {len(GRANTS)} services written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
