"""The progress service with the real broker, both databases and its real neighbours.

Booking publishes the course; progress learns its sessions from those events alone; a check-in
with a risk reaches the therapist as one risk_alert, even when its event is delivered again and
the services restart; a cancelled session gets no check-in invitation; a redelivered booking
event changes nothing.
"""

from __future__ import annotations

import eventlet
import sqlalchemy as sa
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from clinic.access import Caller
from services.availability.service import AvailabilityService
from services.booking.models import outbox as booking_outbox
from services.booking.service import BookingService
from services.notifications.service import NotificationsService
from services.progress.models import outbox as progress_outbox
from services.progress.service import ProgressService
from tests.integration.test_notifications import (  # noqa: F401 (fixtures)
    ADMIN,
    CLIENT,
    at,
    config,
    set_up_therapist,
    smtp,
    wait_until,
)

DAY = 24 * 3600
RISK = {"phq9": [1, 1, 1, 1, 1, 1, 1, 1, 2], "gad7": [1] * 7}
SERVICES = (AvailabilityService, BookingService, NotificationsService, ProgressService)


def outbox_payloads(url: str, table, event_type: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(sa.select(table.c.payload)
                                   .where(table.c.type == event_type)).scalars().all()
    engine.dispose()
    return list(found)


def book(cluster, sessions: int = 16, days: int = 14) -> dict:
    return cluster.booking.create_course({
        "therapist_id": "dr-jo", "session_type": "dit-session", "modality": "video",
        "first_start": at(days, 10), "sessions": sessions, "client": CLIENT})


def known(cluster, course_id: str) -> dict | None:
    try:
        return cluster.progress.get_progress(ADMIN, course_id)
    except Exception:  # NotFound until the event arrives
        return None


def test_a_booked_course_is_known_and_a_redelivered_event_changes_nothing(
        runner_factory, config, database_urls):  # noqa: F811
    runner = runner_factory(config, *SERVICES)
    runner.start()
    with ClusterRpcProxy(config) as cluster:
        set_up_therapist(cluster)
        course = book(cluster)
        wait_until(lambda: known(cluster, course["id"]) is not None)
        view = cluster.progress.get_progress(ADMIN, course["id"])
        assert view["sessions"] == 16
        assert [s["booking_id"] for s in view["schedule"]] == \
            [s["booking_id"] for s in course["sessions"]]
        assert [s["phase"] for s in view["schedule"]] == \
            [s["phase"] for s in cluster.booking.get_course(ADMIN, course["id"])["sessions"]]

        second = course["sessions"][1]["booking_id"]
        moved = cluster.booking.reschedule_booking(ADMIN, second, at(22, 11))
        wait_until(lambda: known(cluster, course["id"])["schedule"][1]["start"] ==
                   cluster.booking.get_booking(ADMIN, second)["start"])
        before = cluster.progress.get_progress(ADMIN, course["id"])

        (booked,) = outbox_payloads(database_urls["booking"], booking_outbox, "course_booked")
        dispatch = event_dispatcher(config)
        dispatch("booking", "course_booked", booked)  # the very same event, again
        stale = {**booked, "id": "a-copy-with-a-new-id"}  # older sequences: ignored too
        dispatch("booking", "course_booked", stale)
        eventlet.sleep(1.5)
        assert cluster.progress.get_progress(ADMIN, course["id"]) == before
        assert before["schedule"][1]["start"] == moved["start"] != course["sessions"][1]["start"]


def test_one_risk_alert_per_check_in_across_redelivery_and_restart(
        runner_factory, config, smtp, database_urls):  # noqa: F811
    smtp.start()
    runner = runner_factory(config, *SERVICES)
    runner.start()
    with ClusterRpcProxy(config) as cluster:
        set_up_therapist(cluster)
        course = book(cluster)
        client = Caller(kind="manage", token=course["manage_token"]).to_rpc()
        answer = cluster.progress.submit_check_in(client, course["id"], RISK, "private words")
        assert answer["risk"] is True

        def alerts() -> list:
            return [m for m in smtp.to("jo@clinic.example") if "attention" in m["Subject"]]

        wait_until(lambda: len(alerts()) == 1)
    (submitted,) = outbox_payloads(database_urls["progress"], progress_outbox,
                                   "checkin_submitted")
    assert submitted["data"]["risk"] is True and "private" not in str(submitted)
    runner.stop()

    runner = runner_factory(config, *SERVICES)  # a restart
    runner.start()
    event_dispatcher(config)("progress", "checkin_submitted", submitted)  # and a redelivery
    eventlet.sleep(2)
    assert len(alerts()) == 1
    for message in smtp.messages:
        text = "\n".join(p.get_content() for p in message.walk()
                         if p.get_content_maintype() == "text")
        assert "private words" not in text and "PHQ" not in text


def test_a_cancelled_session_gets_no_invitation(runner_factory, config, smtp):  # noqa: F811
    smtp.start()
    settings = {**config, "CHECKIN_HOURS": "240", "NOTIFICATIONS_POLL_SECONDS": "0.3"}
    runner = runner_factory(settings, *SERVICES)
    runner.start()
    with ClusterRpcProxy(settings) as cluster:
        set_up_therapist(cluster)
        course = book(cluster, sessions=4)  # sessions in 14, 21, 28, 35 days
        cancelled = course["sessions"][1]["booking_id"]
        cluster.booking.cancel_booking(ADMIN, cancelled)
        wait_until(lambda: any(e["kind"] == "cancellation" for e in
                               cluster.notifications.list_notifications(ADMIN)))
        # no window has opened yet (they open 10 days before each session)
        assert not [e for e in cluster.notifications.list_notifications(ADMIN)
                    if e["kind"] == "checkin_invite"]
    runner.stop()

    # 19 days on: session 1 is past, 2 (cancelled) and 3 are inside their 10-day windows
    later = {**settings, "CLINIC_CLOCK_OFFSET_SECONDS": str(19 * DAY)}
    runner = runner_factory(later, *SERVICES)
    runner.start()
    with ClusterRpcProxy(later) as cluster:
        def invited() -> list[str]:
            return [e["booking_id"] for e in cluster.notifications.list_notifications(ADMIN)
                    if e["kind"] == "checkin_invite" and e["status"] == "sent"]

        third = course["sessions"][2]["booking_id"]
        wait_until(lambda: third in invited())
        eventlet.sleep(1)
        assert cancelled not in invited()
        assert invited() == [third]
