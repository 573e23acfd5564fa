"""The unit tier needs no server: no RabbitMQ, no PostgreSQL.

A unit test that asks for a server-backed fixture, opens a socket to the broker's or the
database's port (psycopg2's included) fails at once with a message saying it belongs in
tests/integration. Fakes of the service's own ports (``worker_factory`` with doubles of its
dependencies) and the pure rule modules are what this tier tests.
"""

import socket

import psycopg2
import psycopg2.extensions
import pytest

SERVER_FIXTURES = {"databases", "database_urls", "amqp_uri", "rabbit_config", "rabbit_manager",
                   "container_factory", "runner_factory", "service_config", "clinic_factory"}
SERVER_PORTS = {5672, 5432, 15672}  # AMQP, PostgreSQL, RabbitMQ management
WHERE = "a test that needs a server belongs in tests/integration"


@pytest.fixture(autouse=True)
def no_servers(request, monkeypatch) -> None:
    """Refuse server-backed fixtures (autouse fixtures run first, so before they set up) and
    connections to the broker's and the database's ports, psycopg2's included."""
    wanted = SERVER_FIXTURES.intersection(request.fixturenames)
    if wanted:
        pytest.fail(f"{request.node.nodeid} asks for {', '.join(sorted(wanted))}: {WHERE}",
                    pytrace=False)
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(address) -> None:
        if isinstance(address, tuple) and len(address) >= 2 and address[1] in SERVER_PORTS:
            raise AssertionError(f"the unit tier connected to port {address[1]}: {WHERE}")

    def connect(self, address):
        refuse(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        refuse(address)
        return real_connect_ex(self, address)

    real_postgres = psycopg2.connect

    def postgres(dsn=None, *args, **kwargs):
        # libpq opens its socket in C, past the socket patch: refuse by the port asked for
        # (a test may prove that a closed port is an outage).
        port = kwargs.get("port") or psycopg2.extensions.parse_dsn(dsn or "").get("port")
        refuse(("postgresql", int(port or 5432)))
        return real_postgres(dsn, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(psycopg2, "connect", postgres)
