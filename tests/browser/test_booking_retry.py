"""The booking form keeps one Idempotency-Key per form content (issue #16, finding 11): when the
clinic booked the session but its answer was lost (a 503 from a proxy, a dropped connection),
the client's second click replays the booking instead of being told the time is taken."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import ALL, admin_setup

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_a_retry_after_a_lost_answer_replays_the_booking(clinic_factory, pages):
    clinic = clinic_factory("sqlite")
    admin_setup(clinic, weekly=[{"weekday": day, "start": "07:00", "end": "21:00",
                                 "modalities": ALL}
                                for day in ("monday", "tuesday", "wednesday", "thursday",
                                            "friday", "saturday", "sunday")],
                min_notice_hours=1)
    page = pages.open()
    keys: list[str] = []

    def lose_the_first_answer(route):
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:  # the clinic books it, but the answer never reaches the page
            route.fetch()
            route.fulfill(status=503, content_type="application/json", body=json.dumps(
                {"error": {"code": "service_unavailable", "message": "Busy.",
                           "details": {"service": "booking"}}}))
        else:
            route.continue_()

    page.route("**/api/v1/bookings", lose_the_first_answer)
    pages.console.expect_http_error(503, "/api/v1/bookings")
    page.goto(clinic.url("/"))
    page.get_by_role("button", name="Choose Mira Stone").click()
    page.locator("#slots .slot").first.click()
    expect(page.locator("#hold-status")).to_contain_text("We are holding this time for you")
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_role("button", name="Book this session").click()
    expect(page.get_by_role("status")).to_contain_text("busy")

    page.get_by_role("button", name="Book this session").click()  # the client tries again
    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) >= 16
