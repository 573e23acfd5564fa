"""Issue #16's booking-side findings through the booking service's methods, on SQLite and
PostgreSQL: live holds per address, per-email quotas, hold conversion by its holder only, the
admin's clean-up, expiring and revocable manage links, Idempotency-Keys bound to their caller,
authentication before lookup."""
# ruff: noqa: F811 (the fixtures of test_booking_usecases, imported, are the tests' arguments)

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clinic.access import Caller
from clinic.errors import (
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    InvalidState,
    NotFound,
    RateLimited,
    TokenExpired,
    Unauthorized,
)
from clinic.outbox import purge_published
from services.booking.models import manage_tokens, metadata, outbox
from tests.integration.test_booking_usecases import (  # noqa: F401 (fixtures)
    ADMIN,
    NOW,
    START,
    THERAPIST,
    clock,
    count,
    course_request,
    events,
    iso,
    key,
    manage,
    request,
    service,
    uow,
)

HERE, THERE = "203.0.113.5", "198.51.100.7"


def hour(n: int) -> str:
    return iso(START + timedelta(hours=n))


def test_one_address_keeps_at_most_three_live_holds(service, clock):
    for n in range(3):
        service.place_hold("t1", "dit", "video", hour(n), None, HERE)
    with pytest.raises(RateLimited) as refused:
        service.place_hold("t1", "dit", "video", hour(3), None, HERE)
    assert refused.value.details["retry_after_seconds"] > 0
    service.place_hold("t1", "dit", "video", hour(3), None, THERE)  # another client
    clock.now = NOW + timedelta(minutes=10)  # the three lapse: the address may hold again
    service.place_hold("t1", "dit", "video", hour(4), None, HERE)


def test_one_email_books_at_most_ten_sessions_to_come_and_two_courses(service, clock):
    for n in range(10):
        service.create_booking(request(START + timedelta(hours=n)))
    with pytest.raises(RateLimited):  # the same address in another case is the same person
        service.create_booking(request(START + timedelta(hours=11),
                                       client={"name": "Ada", "email": "ADA@example.org"}))
    service.create_booking(request(START + timedelta(hours=11),
                                   client={"name": "Bo", "email": "bo@example.org"}))
    for n in range(2):
        service.create_course(course_request(first_start=hour(12 + n), sessions=2))
    with pytest.raises(RateLimited):
        service.create_course(course_request(first_start=hour(15), sessions=2))
    clock.now = START + timedelta(days=2)  # once the sessions are past, the quota is free
    service.create_booking(request(START + timedelta(days=3)))


def test_only_the_holder_turns_a_hold_into_a_booking(service):
    hold = service.place_hold("t1", "dit", "video", hour(0), None, HERE)
    other = service.place_hold("t1", "dit", "video", hour(1), None, HERE)
    for caller in (None, manage(other["manage_token"])):
        with pytest.raises(Forbidden):
            service.create_booking(request(hold_id=hold["id"]), None, caller)
    booking = service.create_booking(request(hold_id=hold["id"]), None,
                                      manage(hold["manage_token"]), HERE)
    assert booking["status"] == "confirmed"


def test_the_admin_cancels_what_one_address_or_one_email_booked(service, uow):
    made = [service.create_booking(request(START + timedelta(hours=n),
                                           client={"name": "X", "email": f"x{n}@example.org"}),
                                   None, None, HERE)["id"] for n in range(3)]
    kept = service.create_booking(request(START + timedelta(hours=5)), None, None, THERE)
    window = (iso(NOW - timedelta(hours=1)), iso(NOW + timedelta(hours=1)))
    for caller in (None, THERAPIST):
        with pytest.raises((Unauthorized, Forbidden)):
            service.cancel_client_bookings(caller, *window, HERE)
    with pytest.raises(InvalidRequest):
        service.cancel_client_bookings(ADMIN, *window)
    assert service.cancel_client_bookings(ADMIN, *window, HERE)["cancelled"] == made
    assert service.get_booking(ADMIN, kept["id"])["status"] == "confirmed"
    assert service.cancel_client_bookings(ADMIN, *window, None,
                                          "ADA@example.org")["cancelled"] == [kept["id"]]
    cancelled = [data["booking"] for kind, data in events(uow) if kind == "booking_cancelled"]
    assert [b["id"] for b in cancelled] == [*made, kept["id"]]
    assert {b["cancelled_by"] for b in cancelled} == {"admin"}


def test_a_manage_token_expires_ninety_days_after_the_last_session(service, clock):
    booking = service.create_booking(request())
    course = service.create_course(course_request(first_start=hour(2), sessions=3))
    end_of_course = START + timedelta(hours=2, weeks=2, minutes=50)
    clock.now = START + timedelta(minutes=50) + timedelta(days=90) - timedelta(seconds=1)
    assert service.get_booking(manage(booking["manage_token"]), booking["id"])
    clock.now += timedelta(seconds=1)
    with pytest.raises(TokenExpired) as expired:
        service.get_booking(manage(booking["manage_token"]), booking["id"])
    assert expired.value.code == "token_expired"
    assert service.get_booking(THERAPIST, booking["id"])  # the clinic still reads it
    # a course's token (and its sessions') lasts until 90 days after its last session
    first_session = course["sessions"][0]["booking_id"]
    assert service.get_booking(manage(course["manage_token"]), first_session)
    clock.now = end_of_course + timedelta(days=90)
    with pytest.raises(TokenExpired):
        service.get_course(manage(course["manage_token"]), course["id"])
    with pytest.raises(TokenExpired):
        service.get_booking(manage(course["manage_token"]), first_session)


def test_a_cancelled_booking_is_read_only_to_its_link(service):
    booking = service.create_booking(request(START + timedelta(days=5)))
    owner = manage(booking["manage_token"])
    service.cancel_booking(owner, booking["id"])
    assert service.get_booking(owner, booking["id"])["status"] == "cancelled"
    with pytest.raises(InvalidState):
        service.cancel_booking(owner, booking["id"])
    with pytest.raises(InvalidState):
        service.reschedule_booking(owner, booking["id"], iso(START + timedelta(days=6)))


def test_sign_out_revokes_every_link_of_a_booking_or_a_course(service):
    booking = service.create_booking(request())
    emailed = service.issue_manage_token("booking", booking["id"])
    stranger = service.create_booking(request(START + timedelta(hours=3)))
    with pytest.raises(NotFound):  # someone else's link signs nothing out
        service.sign_out(manage(stranger["manage_token"]), "booking", booking["id"])
    assert service.sign_out(manage(emailed), "booking", booking["id"])["revoked"] == 2
    for token in (booking["manage_token"], emailed):
        with pytest.raises(Unauthorized):
            service.get_booking(manage(token), booking["id"])
    assert service.get_booking(manage(stranger["manage_token"]), stranger["id"])
    fresh = service.issue_manage_token("booking", booking["id"])  # the next email's link
    assert fresh != emailed and service.get_booking(manage(fresh), booking["id"])
    course = service.create_course(course_request(first_start=hour(5), sessions=2))
    session_link = service.issue_manage_token("booking", course["sessions"][1]["booking_id"])
    assert service.sign_out(ADMIN, "course", course["id"])["revoked"] == 2
    for token in (course["manage_token"], session_link):
        with pytest.raises(Unauthorized):
            service.get_course(manage(token), course["id"])


def test_every_email_of_a_booking_carries_the_same_link_not_a_new_token(service, uow):
    booking = service.create_booking(request())
    course = service.create_course(course_request(first_start=hour(5), sessions=2))
    links = {service.issue_manage_token("booking", booking["id"]) for _ in range(3)}
    course_links = {service.issue_manage_token("course", course["id"]) for _ in range(3)}
    assert len(links) == len(course_links) == 1
    assert count(uow, manage_tokens) == 4  # two answers' tokens, one link each
    assert service.get_course(manage(course_links.pop()), course["id"])
    with pytest.raises(NotFound):
        service.issue_manage_token("booking", "no-such-booking")


@pytest.mark.parametrize("bad", ["short-key", "x" * 256, "sixteen chars ok", "clé-de-seize-car"])
def test_an_idempotency_key_is_16_to_255_visible_ascii_characters(service, bad):
    with pytest.raises(InvalidRequest):
        service.create_booking(request(), bad)
    with pytest.raises(InvalidRequest):
        service.place_hold("t1", "dit", "video", hour(0), bad, HERE)
    service.create_booking(request(), "x" * 255)


def test_an_idempotency_key_answers_only_the_caller_that_used_it_first(service):
    first = service.place_hold("t1", "dit", "video", hour(0), key("hold"), HERE)
    with pytest.raises(IdempotencyConflict):  # not the hold, nor a token for it
        service.place_hold("t1", "dit", "video", hour(0), key("hold"), THERE)
    assert service.place_hold("t1", "dit", "video", hour(0), key("hold"), HERE)["id"] == \
        first["id"]
    booked = service.create_booking(request(hour_start := START + timedelta(hours=2)),
                                    key("book"), None, HERE)
    with pytest.raises(IdempotencyConflict):
        service.create_booking(request(hour_start), key("book"), None, THERE)
    owner = manage(booked["manage_token"])
    service.cancel_booking(owner, booked["id"], None, key("cancel"))
    with pytest.raises(IdempotencyConflict):  # the admin replaying the client's key
        service.cancel_booking(ADMIN, booked["id"], None, key("cancel"))


def test_without_a_valid_token_an_existing_and_an_unknown_booking_look_the_same(service):
    booking = service.create_booking(request())
    course = service.create_course(course_request(first_start=hour(3), sessions=2))
    for caller in (None, manage("mng_forged"), Caller(kind="manage").to_rpc()):
        for target in (booking["id"], "no-such-booking"):
            with pytest.raises(Unauthorized):
                service.get_booking(caller, target)
            with pytest.raises(Unauthorized):
                service.cancel_booking(caller, target)
            with pytest.raises(Unauthorized):
                service.reschedule_booking(caller, target, hour(6))
        for target in (course["id"], "no-such-course"):
            with pytest.raises(Unauthorized):
                service.get_course(caller, target)
            with pytest.raises(Unauthorized):
                service.cancel_course(caller, target)
    with pytest.raises(NotFound):  # a valid token meets the same answer for both
        service.get_booking(manage(booking["manage_token"]), "no-such-booking")


def test_the_audit_log_names_who_read_or_changed_a_booking_or_course(service, clock):
    booking = service.create_booking(request(START + timedelta(days=5)))
    owner = manage(booking["manage_token"])
    service.get_booking(owner, booking["id"])
    service.get_booking(THERAPIST, booking["id"])
    service.reschedule_booking(owner, booking["id"], iso(START + timedelta(days=6)))
    cancelled = service.cancel_booking(THERAPIST, booking["id"])
    assert (cancelled["cancelled_by"], cancelled["cancelled_by_id"]) == ("therapist", "t1")
    with pytest.raises((Unauthorized, Forbidden)):
        service.audit_trail(THERAPIST, booking["id"])
    trail = service.audit_trail(ADMIN, booking["id"])
    link = trail[1]["actor"]["id"]
    assert [(e["actor"]["kind"], e["action"]) for e in trail] == [
        ("public", "created"), ("client", "read"), ("therapist", "read"),
        ("client", "rescheduled"), ("therapist", "cancelled")]
    assert link.startswith("link:") and booking["manage_token"][4:] not in link
    assert trail[2]["actor"]["id"] == "t1" and trail[0]["at"] == iso(NOW)

    course = service.create_course(course_request(first_start=hour(2), sessions=2))
    service.get_course(manage(course["manage_token"]), course["id"])
    service.record_access(THERAPIST, "progress_read", None, course["id"])  # progress's hook
    stopped = service.cancel_course(manage(course["manage_token"]), course["id"])
    assert stopped["cancelled_by"] == "client" and stopped["cancelled_by_id"].startswith("link:")
    assert [e["action"] for e in service.audit_trail(ADMIN, None, course["id"])] == [
        "created", "read", "progress_read", "cancelled"]
    # a session's trail includes what was done to its course as a whole
    session_trail = service.audit_trail(ADMIN, course["sessions"][0]["booking_id"])
    assert [e["action"] for e in session_trail] == ["created", "read", "progress_read",
                                                    "cancelled"]


def test_published_events_are_deleted_after_the_retention_days(service, uow):
    for n in range(3):
        service.create_booking(request(START + timedelta(hours=n)))
    with uow.transaction() as session:
        seqs = session.execute(sa.select(outbox.c.seq).order_by(outbox.c.seq)).scalars().all()
        published_at = [NOW - timedelta(days=7, seconds=1), NOW - timedelta(days=6)]
        for seq, published in zip(seqs, published_at + [None] * (len(seqs) - 2), strict=True):
            session.execute(outbox.update().where(outbox.c.seq == seq)
                            .values(published_at=published))
    with uow.transaction() as session:  # what the outbox relay does once an hour
        purge_published(session, outbox, NOW - timedelta(days=7))
    with uow.reading() as session:
        left = session.execute(sa.select(outbox.c.seq).order_by(outbox.c.seq)).scalars().all()
    assert left == seqs[1:]  # the recent one and the one still to publish stay


def test_erasure_leaves_no_personal_field_in_any_booking_table(service, uow):
    ada = {"name": "Ada Lovelace-Byron", "email": "Ada.L@example.org", "phone": "+44 7700 900123",
           "timezone": "Europe/London"}
    other = {"name": "Bo Other", "email": "bo@example.org"}
    hold = service.place_hold("t1", "dit", "video", hour(0), key("ada-hold"), HERE)
    booked = service.create_booking(request(client=ada, hold_id=hold["id"],
                                            notes="private worries"), key("ada-booking"),
                                    manage(hold["manage_token"]), HERE)
    service.cancel_booking(manage(booked["manage_token"]), booked["id"], "my reason")
    course = service.create_course(course_request(first_start=hour(3), sessions=2,
                                                  client=ada, notes="course notes"))
    kept = service.create_booking(request(START + timedelta(hours=8), client=other))
    service.issue_manage_token("course", course["id"])
    exported = service.export_client(ADMIN, "ada.l@EXAMPLE.org")
    assert [b["id"] for b in exported["bookings"]] == [booked["id"]] + [
        s["booking_id"] for s in course["sessions"]]
    assert exported["courses"][0]["client"]["phone"] == ada["phone"]
    with uow.transaction() as session:  # one event already published, one still to go
        session.execute(outbox.update().where(outbox.c.seq == 1).values(published_at=NOW))

    with pytest.raises((Unauthorized, Forbidden)):
        service.erase_client(THERAPIST, ada["email"])
    assert service.erase_client(ADMIN, "ADA.L@example.org") == {"bookings": 3, "courses": 1}
    assert service.erase_client(ADMIN, ada["email"]) == {"bookings": 0, "courses": 0}

    secrets = [ada["name"], ada["email"].lower(), "7700 900123", "private worries",
               "my reason", "course notes", HERE, hold["manage_token"], booked["manage_token"]]
    with uow.reading() as session:  # every table booking owns
        dump = repr([session.execute(sa.select(table)).all() for table in booking_tables()])
    for secret in secrets:
        assert secret.lower() not in dump.lower(), secret
    assert "bo@example.org" in dump  # other clients are untouched
    assert service.get_booking(ADMIN, booked["id"])["client"]["name"] == "Erased client"
    assert service.get_booking(ADMIN, kept["id"])["client"]["email"] == "bo@example.org"
    assert service.export_client(ADMIN, ada["email"]) == {"bookings": [], "courses": []}
    erased = [data for kind, data in events(uow) if kind == "client_erased"]
    assert erased[0]["booking_ids"] and "example.org" not in repr(erased)
    assert "erased" in [e["action"] for e in service.audit_trail(ADMIN, booked["id"])]


def booking_tables() -> list[sa.Table]:
    return list(metadata.sorted_tables)


def test_the_gateways_event_after_a_feed_change_names_ids_only(service, uow):
    booking = service.create_booking(request(client={**CLIENT_WITH_PHONE}))
    service.cancel_booking(ADMIN, booking["id"])
    course = service.create_course(course_request(first_start=hour(3), sessions=2))
    changed = [data for kind, data in events(uow, calendars=True) if kind == "calendar_changed"]
    assert changed == [
        {"therapist_id": "t1", "booking_id": booking["id"], "course_id": None},
        {"therapist_id": "t1", "booking_id": booking["id"], "course_id": None},
        {"therapist_id": "t1", "booking_id": None, "course_id": course["id"]}]
    assert "example.org" not in repr(changed)


CLIENT_WITH_PHONE = {"name": "Ada", "email": "ada@example.org", "phone": "+44 20 7946 0000"}
