"""The unit tier's guard (tests/unit/conftest.py) refuses the broker and the database."""

import socket

import psycopg2
import pytest


@pytest.mark.parametrize("port", [5672, 5432, 15672])
def test_a_socket_to_the_broker_or_the_database_is_refused(port):
    with socket.socket() as sock, pytest.raises(AssertionError, match="tests/integration"):
        sock.connect(("127.0.0.1", port))


def test_psycopg2_to_the_database_port_is_refused():
    with pytest.raises(AssertionError, match="tests/integration"):
        psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    with pytest.raises(AssertionError, match="tests/integration"):
        psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
