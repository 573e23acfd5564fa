"""The resilience infrastructure itself: what the fault-injection tests take for granted.

A restarted private broker still holds a durable queue's persistent message; a restarted private
PostgreSQL still holds a committed row; the mail catcher refuses connections while stopped and
comes back on the same port, keeping what it caught; a service process can be killed and started
again and reconnects, also to a restarted broker. The servers are module-scoped, as the real
tests will use them.
"""

from __future__ import annotations

import os
import smtplib
import uuid
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue
from sqlalchemy.pool import NullPool

from tests.resilience.infra import ROOT, MailCatcher, Processes, port_open

pytestmark = [pytest.mark.resilience, pytest.mark.e2e]

def test_a_restarted_rabbit_node_keeps_a_persistent_message(rabbit_node):
    name = f"selftest-{uuid.uuid4().hex[:8]}"
    exchange = Exchange(name, type="direct", durable=True)
    queue = Queue(name, exchange, routing_key=name, durable=True)
    with Connection(rabbit_node.amqp_uri, connect_timeout=5) as connection:
        connection.Producer().publish({"booking": 42}, exchange=exchange, routing_key=name,
                                      declare=[queue], delivery_mode="persistent",
                                      serializer="json")

    seconds = rabbit_node.restart()
    print(f"rabbit node: start {rabbit_node.timings['start'][0]:.1f}s, "
          f"restart {seconds:.1f}s (stop {rabbit_node.timings['stop'][-1]:.1f}s)")

    with Connection(rabbit_node.amqp_uri, connect_timeout=5) as connection:
        message = queue(connection.default_channel).get(no_ack=False)
        assert message is not None, "the persistent message did not survive the restart"
        assert message.payload == {"booking": 42}
        message.ack()


def test_a_restarted_postgres_cluster_keeps_a_committed_row(postgres_cluster):
    url = postgres_cluster.create_database(f"selftest_{uuid.uuid4().hex[:8]}")
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE note (id int PRIMARY KEY, text text)")
            connection.exec_driver_sql("INSERT INTO note VALUES (1, 'kept')")

        seconds = postgres_cluster.restart()
        print(f"postgres: initdb {postgres_cluster.timings['initdb'][0]:.1f}s, start "
              f"{postgres_cluster.timings['start'][0]:.1f}s, restart {seconds:.1f}s")

        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT text FROM note").scalar_one() == "kept"
    finally:
        engine.dispose()


def send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "clinic@clinic.example"
    message["To"] = "ann@example.org"
    message["Subject"] = subject
    message.set_content("hello")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


def test_the_mail_catcher_goes_away_and_comes_back_on_the_same_port(mail_catcher):
    port = mail_catcher.port
    send(port, "first")
    assert mail_catcher.stop() == 0
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=5)

    mail_catcher.start()
    assert mail_catcher.port == port
    send(port, "second")
    messages = mail_catcher.messages()
    assert [m["Subject"] for m in messages] == ["first", "second"]
    assert messages[0]["X-Envelope-To"] == "ann@example.org"
    assert messages[1].get_content().strip() == "hello"


def test_a_killed_service_process_starts_again_and_reconnects(rabbit_node, postgres_cluster,
                                                              tmp_path):
    database = postgres_cluster.create_database(f"selftest_booking_{uuid.uuid4().hex[:8]}",
                                                service="booking")
    env = {"AMQP_URI": rabbit_node.amqp_uri, "BOOKING_DATABASE_URL": database,
           "CLINIC_DEMO": "0", "CLINIC_DATA_DIR": str(tmp_path)}
    with Processes(ROOT, env, tmp_path / "logs") as processes:
        processes.start("booking-1", "booking")
        processes.wait_connected("booking-1")
        first_pid = processes.children["booking-1"].process.pid
        assert os.getsid(first_pid) == first_pid  # a session of its own

        processes.kill("booking-1")
        assert not processes.alive("booking-1")
        processes.start("booking-1", "booking")
        processes.wait_connected("booking-1")  # a new line, not the first start's
        processes.restart("booking-1")
        processes.wait_connected("booking-1")

        # the broker goes away and comes back on the same port: the service finds it again
        position = processes.log_size("booking-1")
        rabbit_node.restart()
        processes.wait_logged("booking-1", "Connected to amqp", after=position)
        assert processes.alive("booking-1")

        assert processes.terminate("booking-1") == 0
        log = (tmp_path / "logs" / "booking-1.log").read_text()
        assert log.count("Connected to amqp") == 4  # one log across the restarts
    assert not any(processes.alive(name) for name in processes.children)


def test_nothing_listens_after_close(tmp_path):
    catcher = MailCatcher(tmp_path / "mail")
    with catcher:
        catcher.start()
        assert port_open(catcher.port)
    assert not port_open(catcher.port) and not (tmp_path / "mail").exists()
