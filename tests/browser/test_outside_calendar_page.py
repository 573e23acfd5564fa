"""The therapist page links an outside calendar (a real Radicale server), shows its status and
its busy times greyed in the week grid without their titles, and unlinks it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests
from playwright.sync_api import expect

from tests.integration.test_outside_calendars import Radicale, ics, vevent

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_the_therapist_links_sees_and_unlinks_their_own_calendar(clinic_factory, pages,
                                                                 screenshot, tmp_path):
    radicale = Radicale(tmp_path)
    try:
        clinic = clinic_factory("sqlite", EXTERNAL_CALENDAR_POLL_SECONDS="1",
                                EXTERNAL_CALENDAR_ALLOW_PRIVATE="1")
        assert requests.post(clinic.url("/api/v1/therapists"), headers=clinic.admin, json={
            "id": "mira-stone", "name": "Mira Stone", "modalities": ["video"],
            "timezone": "Europe/London"}, timeout=10).status_code == 201
        assert requests.put(clinic.url("/api/v1/therapists/mira-stone/schedule"),
                            headers=clinic.admin, timeout=10, json={"weekly": [
                                {"weekday": "wednesday", "start": "09:00", "end": "17:00",
                                 "modalities": ["video"]}]}).status_code == 200
        token = requests.post(clinic.url("/api/v1/therapists/mira-stone/tokens"),
                              headers=clinic.admin, timeout=10).json()["token"]
        day = date.today() + timedelta(days=7 + (2 - date.today().weekday()) % 7)  # Wednesday
        calendar = radicale.calendar("mira", "own")
        radicale.put(calendar, "school-run", [vevent(
            "school-run", f"DTSTART;TZID=Europe/London:{ics(day, 14)}",
            f"DTEND;TZID=Europe/London:{ics(day, 15)}")])

        page = pages.open()
        page.goto(clinic.url("/therapist"))
        page.get_by_label("Therapist", exact=True).select_option("mira-stone")
        page.get_by_label("Your therapist token").fill(token)
        page.get_by_role("button", name="Show my week").click()
        expect(page.get_by_role("heading", name="Your own calendar")).to_be_visible()

        pages.console.expect_http_error(400, "external-calendar")
        page.get_by_label("Your calendar's iCalendar (.ics) address").fill(
            "https://me:secret@calendar.example/a.ics")
        page.get_by_role("button", name="Link calendar").click()
        expect(page.locator("#status")).to_contain_text("user name or password")

        page.get_by_label("Your calendar's iCalendar (.ics) address").fill(calendar)
        page.get_by_role("button", name="Link calendar").click()
        expect(page.locator("#status")).to_contain_text("Calendar linked")
        for _ in range(60):  # the first fetch takes a moment; the page shows it on reload
            if requests.get(clinic.url("/api/v1/therapists/mira-stone/external-calendar"),
                            headers=clinic.admin, timeout=10).json()["status"] == "ok":
                break
            page.wait_for_timeout(250)
        page.reload()
        expect(page.locator("#outside-status")).to_contain_text("Working")
        page.get_by_label("Go to the week of").fill(day.isoformat())
        busy = page.locator(".outside-busy")
        expect(busy).to_have_count(1)
        expect(busy).to_contain_text("14:00–15:00")
        expect(busy).to_contain_text("Busy elsewhere")
        expect(page.locator("#grid-box")).not_to_contain_text("Supervision")
        screenshot(page, "outside-calendar")

        page.get_by_role("button", name="Unlink").click()
        expect(page.locator("#status")).to_contain_text("Calendar unlinked")
        expect(page.locator(".outside-busy")).to_have_count(0)
        expect(page.get_by_role("button", name="Link calendar")).to_be_visible()
    finally:
        radicale.stop()
