"""Entrypoints through nameko's ``worker_factory`` with fakes of their ports, no server.

The gateway: a route's declared ``access`` is enforced before its handler runs, and the handler
receives the caller. Booking: a request refused on its face is refused before any transaction
opens and before availability is asked.
"""

from datetime import UTC, datetime

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from clinic.access import Caller
from clinic.errors import Forbidden, InvalidRequest, Unauthorized
from clinic.settings import Settings
from gateway.auth import authorise
from gateway.service import GatewayService
from services.booking.service import BookingService

ADMIN_TOKEN = "a" * 40


class Availability:
    """availability's ``authenticate_therapist`` as the gateway uses it, and a record of what
    else was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def authenticate_therapist(self, token: str) -> str | None:
        return {"thr_ann": "ann"}.get(token)

    def __getattr__(self, method: str):
        def call(*args):
            self.asked.append((method, *args))
            return {"method": method, "args": args}
        return call


class NoDatabase:
    """A unit of work that must not be used."""

    def transaction(self):
        raise AssertionError("a transaction was opened")

    reading = transaction


def request(token: str | None = None, method: str = "GET") -> Request:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Request(EnvironBuilder(method=method, headers=headers).get_environ())


@pytest.fixture
def gateway():
    return worker_factory(GatewayService, config=Settings.from_config(
        {"CLINIC_ADMIN_TOKEN": ADMIN_TOKEN}), availability=Availability())


def test_an_admin_route_refuses_everyone_but_the_admin(gateway):
    with pytest.raises(Unauthorized):
        gateway.revoke_therapist_tokens(request(), therapist_id="ann")
    with pytest.raises(Forbidden):
        gateway.revoke_therapist_tokens(request("thr_ann"), therapist_id="ann")
    assert gateway.availability.asked == []  # refused before the service was asked
    gateway.revoke_therapist_tokens(request(ADMIN_TOKEN), therapist_id="ann")
    assert gateway.availability.asked == [
        ("revoke_therapist_tokens", Caller(kind="admin").to_rpc(), "ann")]


def test_a_therapist_route_is_that_therapists_and_the_handler_gets_the_caller(gateway):
    with pytest.raises(Forbidden):
        gateway.list_time_off(request("thr_ann"), therapist_id="bob")
    with pytest.raises(Unauthorized):  # a wrong token is never silently public
        gateway.list_time_off(request("thr_nobody"), therapist_id="ann")
    answer = gateway.list_time_off(request("thr_ann"), therapist_id="ann")
    assert answer["args"] == (Caller(kind="therapist", therapist_id="ann").to_rpc(), "ann")


def test_an_owner_route_needs_some_token_and_leaves_whose_booking_to_the_service(gateway):
    with pytest.raises(Unauthorized):
        gateway.get_booking(request(), booking_id="b1")
    gateway.booking.get_booking.return_value = {"id": "b1"}
    assert gateway.get_booking(request("mng_x"), booking_id="b1") == {"id": "b1"}
    gateway.booking.get_booking.assert_called_once_with(
        Caller(kind="manage", token="mng_x").to_rpc(), "b1")


@pytest.mark.parametrize(("access", "caller", "refused"), [
    ("public", Caller(), None),
    ("owner", Caller(), Unauthorized),
    ("owner", Caller(kind="manage", token="mng_x"), None),
    ("therapist", Caller(kind="manage", token="mng_x"), None),  # no therapist in the path
    ("therapist", Caller(kind="admin"), None),
    ("admin", Caller(kind="manage", token="mng_x"), Forbidden),
])
def test_authorise_reads_the_declaration(access, caller, refused):
    if refused is None:
        authorise(access, caller, {"booking_id": "b1"})
    else:
        with pytest.raises(refused):
            authorise(access, caller, {"booking_id": "b1"})


def test_booking_refuses_a_naive_start_before_asking_anyone():
    availability = Availability()
    booking = worker_factory(BookingService, db=NoDatabase(), availability=availability,
                             clock=lambda: datetime(2027, 3, 1, tzinfo=UTC),
                             settings=Settings.from_config({}))
    with pytest.raises(InvalidRequest) as refused:
        booking.place_hold("ann", "dit-session", "video", "2027-03-02T10:00:00")
    assert refused.value.details["fields"][0]["field"] == "start"
    with pytest.raises(InvalidRequest):
        booking.create_course({"therapist_id": "ann", "first_start": "next tuesday"})
    assert availability.asked == []
