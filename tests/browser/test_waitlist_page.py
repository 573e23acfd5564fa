"""The waitlist in a real browser, on the whole system: a client joins from the booking page
("tell me when a time like this frees up"), a cancellation is offered to them, and they accept
it on the waitlist page; the therapist page lists who waits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import eventlet
import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import CLIENT_ZONE
from tests.browser.test_pages import ALL, admin_setup

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
EVERY_DAY = [{"weekday": day, "start": "07:00", "end": "21:00", "modalities": ALL}
             for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                         "sunday")]


def test_join_from_the_booking_page_get_an_offer_and_accept_it(clinic_factory, pages,
                                                               screenshot):
    clinic = clinic_factory("sqlite")
    therapist_token = admin_setup(clinic, weekly=EVERY_DAY, min_notice_hours=1)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=12, minute=0, second=0,
                                                            microsecond=0)
    booked = requests.post(clinic.url("/api/v1/bookings"), timeout=10, json={
        "therapist_id": "mira-stone", "session_type": "dit-session", "modality": "video",
        "start": start.isoformat(), "client": {"name": "Other Client",
                                               "email": "other@example.com"}})
    assert booked.status_code == 201, booked.text

    page = pages.open()
    page.goto(clinic.url("/"))
    page.get_by_label("Video call").check()
    page.get_by_role("button", name="Choose Mira Stone").click()
    expect(page.locator("#slots .slot").first).to_be_visible()
    opener = page.get_by_role("button", name=re.compile("tell me when a time like this frees up"))
    expect(opener).to_be_visible()
    opener.click()
    join = page.locator("#waitlist-join")
    expect(join.get_by_label("Day")).to_be_focused()
    weekday = start.astimezone(ZoneInfo(CLIENT_ZONE)).strftime("%A").lower()
    join.get_by_label("Day").select_option(weekday)
    join.get_by_label("From").fill("00:00")
    join.get_by_label("Until", exact=True).fill("23:59")
    join.get_by_label("Your name").fill("Bea Cole")
    join.get_by_label("Your email").fill("bea@example.com")
    join.get_by_role("button", name="Join the waitlist").click()
    expect(join.get_by_role("status")).to_contain_text("You are on the waitlist")
    link = join.get_by_role("link", name="See or leave your place on the waitlist")
    expect(link).to_be_visible()
    screenshot(page, "joined-desktop")
    entry_id = re.search(r"entry=([\w-]+)", link.get_attribute("href")).group(1)

    cancelled = requests.post(clinic.url(f"/api/v1/bookings/{booked.json()['id']}/cancel"),
                              headers=clinic.admin, json={}, timeout=10)
    assert cancelled.status_code == 200
    for _ in range(100):  # the offer follows the cancellation's event within moments
        entry = requests.get(clinic.url(f"/api/v1/waitlist/{entry_id}"), headers=clinic.admin,
                             timeout=10).json()
        if entry["status"] == "offered":
            break
        eventlet.sleep(0.2)
    assert entry["status"] == "offered", entry

    therapist = pages.open()
    therapist.goto(clinic.url("/therapist"))
    therapist.get_by_label("Therapist", exact=True).select_option("mira-stone")
    therapist.get_by_label("Your therapist token").fill(therapist_token)
    therapist.get_by_role("button", name="Show my week").click()
    waiting = therapist.locator("#waitlist-list li")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("BC")  # initials only
    expect(waiting).to_contain_text("offered a time")

    link.click()
    expect(page.get_by_role("heading", name="A time has come free for you")).to_be_visible()
    expect(page.locator("#offer-times li")).to_have_count(1)
    expect(page.locator("#offer-times li")).to_contain_text("London time")
    screenshot(page, "offer-desktop")
    page.get_by_role("button", name="Accept this time").click()
    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    expect(page.get_by_role("heading", name="You are booked")).to_be_focused()
    expect(page.get_by_role("status")).to_contain_text("Booked")
    assert requests.get(clinic.url(f"/api/v1/waitlist/{entry_id}"), headers=clinic.admin,
                        timeout=10).json()["status"] == "booked"
    listed = requests.get(clinic.url("/api/v1/waitlist"), params={"therapist_id": "mira-stone"},
                          headers={"Authorization": f"Bearer {therapist_token}"}, timeout=10)
    assert [e["id"] for e in listed.json()] == [entry_id]
