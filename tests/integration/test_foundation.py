"""Shared pieces on the real broker and real databases (SQLite and PostgreSQL)."""

import importlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from clinic import events as clinic_events
from clinic.db import Database
from clinic.errors import InvalidState, ServiceUnavailable, rpc
from clinic.events import Event, first_delivery
from clinic.events import event_handler as retrying_event_handler
from clinic.outbox import OutboxRelay, record
from clinic.rpc import ServiceRpc
from clinic.settings import SERVICES
from services.availability.service import AvailabilityService
from services.booking.models import outbox
from services.booking.service import BookingService
from services.notifications.models import processed_events
from services.notifications.service import NotificationsService
from services.progress.service import ProgressService


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_exactly_the_models(service, databases):
    url = databases.new(service)
    metadata = importlib.import_module(f"services.{service}.models").metadata
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert drift == []


def test_each_service_answers_over_rpc(runner_factory, service_config):
    runner = runner_factory(service_config, AvailabilityService, BookingService,
                            NotificationsService, ProgressService)
    runner.start()
    with ClusterRpcProxy(service_config) as cluster:
        assert [getattr(cluster, name).ping() for name in SERVICES] == ["pong"] * 4


class Announcer:
    """A service with an outbox, as booking has."""

    name = "announcer"
    db = Database("booking")
    events = OutboxRelay("announcer", outbox)

    @rpc
    def announce(self, note: str, fail: bool = False) -> None:
        with self.db.transaction() as session:
            record(session, outbox, Event("note_made", {"note": note}, "announcer"))
            if fail:
                raise InvalidState("changed our mind")
        self.events.wake()


received: list[dict] = []


class Listener:
    name = "listener"
    db = Database("notifications")

    @event_handler("announcer", "note_made")
    def on_note(self, payload: dict) -> None:
        with self.db.transaction() as session:
            if first_delivery(session, processed_events, payload["id"]):
                received.append(payload)


@pytest.fixture
def subscribed(monkeypatch):
    monkeypatch.setitem(clinic_events.SUBSCRIPTIONS, ("announcer", "note_made"),
                        (("listener", "on_note"),))
    received.clear()


def _published(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(outbox.c.payload, outbox.c.published_at)).all()
    engine.dispose()
    return rows


def test_outbox_publishes_committed_events_once_even_before_the_handler_runs(
        subscribed, container_factory, service_config, database_urls):
    announcer = container_factory(Announcer, service_config)
    announcer.start()
    with ClusterRpcProxy(service_config) as cluster:
        cluster.announcer.announce("kept")
        with pytest.raises(InvalidState):
            cluster.announcer.announce("rolled back", fail=True)

    # The relay publishes while no listener runs: the queue it declared keeps the event.
    import eventlet

    with eventlet.Timeout(10):
        while not all(published for _, published in _published(database_urls["booking"])):
            eventlet.sleep(0.05)
    rows = _published(database_urls["booking"])
    assert [payload["data"]["note"] for payload, _ in rows] == ["kept"]

    listener = container_factory(Listener, service_config)
    with entrypoint_waiter(listener, "on_note", timeout=10):
        listener.start()
    eventlet.sleep(0.5)  # room for a (wrong) second delivery to show up
    assert [event["data"]["note"] for event in received] == ["kept"]


def test_a_redelivered_event_is_handled_once(subscribed, container_factory, service_config):
    listener = container_factory(Listener, service_config)
    listener.start()
    event = Event("note_made", {"note": "twice"}, "announcer").to_payload()
    dispatch = event_dispatcher(service_config)
    for _ in range(2):
        with entrypoint_waiter(listener, "on_note", timeout=10):
            dispatch("announcer", "note_made", event)
    assert [e["data"]["note"] for e in received] == ["twice"]


class Flaky:
    """A listener whose database is away for its first two attempts."""

    name = "flaky"
    attempts: list[str] = []

    @retrying_event_handler("announcer", "note_made")
    def on_note(self, payload: dict) -> None:
        self.attempts.append(payload["id"])
        if len(self.attempts) < 3:
            raise ServiceUnavailable("The flaky database is not available.")


def test_an_event_whose_database_is_away_waits_in_its_queue(container_factory, service_config,
                                                           monkeypatch):
    monkeypatch.setattr("clinic.events.RETRY_PAUSE_SECONDS", 0.05)
    Flaky.attempts = []
    flaky = container_factory(Flaky, service_config)
    flaky.start()
    event = Event("note_made", {"note": "kept"}, "announcer").to_payload()
    with entrypoint_waiter(flaky, "on_note", timeout=10,
                           callback=lambda worker_ctx, result, exc_info: exc_info is None):
        event_dispatcher(service_config)("announcer", "note_made", event)
    assert Flaky.attempts == [event["id"]] * 3  # redelivered until handled, not dropped


class Slow:
    name = "slow"
    db = Database("booking")

    @rpc
    def write_late(self, seconds: float) -> None:
        import eventlet

        with self.db.transaction() as session:
            record(session, outbox, Event("note_made", {"note": "late"}, "slow"))
            eventlet.sleep(seconds)


class Caller:
    name = "caller"
    slow = ServiceRpc("slow")

    @rpc
    def ask(self, seconds: float) -> None:
        self.slow.call("write_late", seconds, timeout=2.0)


def test_a_change_that_outlives_its_callers_deadline_is_not_made(
        container_factory, service_config, database_urls):
    for service in (Slow, Caller):
        container_factory(service, service_config).start()
    with ClusterRpcProxy(service_config) as cluster:
        with pytest.raises(ServiceUnavailable):
            cluster.caller.ask(2.5)
        with pytest.raises(ServiceUnavailable):  # within the last second: refused as well
            cluster.caller.ask(1.5)
        import eventlet

        eventlet.sleep(1.0)  # the slow worker reaches its commit, after the deadline
        assert _published(database_urls["booking"]) == []
        cluster.caller.ask(0.0)
    assert len(_published(database_urls["booking"])) == 1


def test_a_database_that_is_down_is_a_503(container_factory, service_config):
    config = {**service_config,
              "BOOKING_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}
    container_factory(Slow, config).start()
    with ClusterRpcProxy(config) as cluster, pytest.raises(ServiceUnavailable) as refused:
        cluster.slow.write_late(0)
    assert refused.value.details == {"service": "booking"}
