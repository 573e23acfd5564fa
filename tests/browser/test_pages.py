"""The web pages in a real browser, on the whole system: a client books a 16-week course, moves
one session and cancels another from the manage page, and the therapist sees it all on the week
grid; a taken time is never a dead end; a late cancellation is announced before it is confirmed.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LONDON = ZoneInfo("Europe/London")
ALL = ["in_person", "video", "phone"]


def admin_setup(clinic, *, weekly: list[dict], min_notice_hours: int = 24) -> str:
    """A room, the therapist under test (and one the client's filter must hide); her token."""
    def post(path: str, body: dict | None = None) -> dict:
        response = requests.post(clinic.url(path), json=body, headers=clinic.admin, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    post("/api/v1/rooms", {"id": "garden-room", "name": "Garden room"})
    post("/api/v1/therapists", {"id": "mira-stone", "name": "Mira Stone",
                                "title": "DIT practitioner", "specialties": ["DIT", "anxiety"],
                                "modalities": ALL, "timezone": "Europe/London"})
    post("/api/v1/therapists", {"id": "cal-beck", "name": "Cal Beck", "specialties": ["CBT"],
                                "modalities": ["video"], "timezone": "Europe/London"})
    body = {"timezone": "Europe/London", "weekly": weekly, "min_notice_hours": min_notice_hours,
            "horizon_days": 240}
    schedule = requests.put(clinic.url("/api/v1/therapists/mira-stone/schedule"),
                            headers=clinic.admin, json=body, timeout=10)
    assert schedule.status_code == 200, schedule.text
    return post("/api/v1/therapists/mira-stone/tokens")["token"]


def london_day(instant: str) -> str:
    return datetime.fromisoformat(instant).astimezone(LONDON).date().isoformat()


def choose_a_taken_time(clinic, pages, slot) -> None:
    """Another client books ``slot``'s time over the API, then this one chooses it (a 409)."""
    taken = requests.post(clinic.url("/api/v1/bookings"), timeout=10, json={
        "therapist_id": "mira-stone", "session_type": "dit-session", "modality": "in_person",
        "start": slot.get_attribute("data-start"),
        "client": {"name": "Other Client", "email": "other@example.com"}})
    assert taken.status_code == 201, taken.text
    pages.console.expect_http_error(409, "/api/v1/holds")
    slot.click()


def open_course_dates(clinic, page: Page, way: str) -> None:
    """The booking page with Mira Stone's first weekly time for a 16-week course chosen."""
    page.goto(clinic.url("/"))
    page.get_by_label("A 16-week course, one session a week").check()
    page.get_by_label(way).check()
    page.get_by_role("button", name="Choose Mira Stone").click()
    page.locator("#course-options input[type=radio]").first.check()
    expect(page.locator("#course-dates table tbody tr")).to_have_count(16)


def book_the_course(page: Page, name: str, email: str) -> None:
    """From the course's dates: continue, give a name and an email, book, see it booked."""
    page.get_by_role("button", name="Continue with these 16 dates").click()
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Book all 16 sessions").click()
    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()


def fits_phone(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_client_books_a_course_moves_and_cancels_sessions_and_the_therapist_sees_them(
        clinic_factory, pages, screenshot, tmp_path):
    clinic = clinic_factory("sqlite")
    token = admin_setup(clinic, weekly=[
        {"weekday": "tuesday", "start": "09:00", "end": "13:00", "modalities": ALL},
        {"weekday": "thursday", "start": "14:00", "end": "18:00", "modalities": ALL}])
    page = pages.open()

    # --- booking: a 16-week course by video, with a holiday week skipped ---
    response = page.goto(clinic.url("/"))
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("A 16-week course, one session a week").check()
    page.get_by_label("Specialty").select_option("DIT")
    page.get_by_label("Video call").check()
    expect(page.get_by_role("button", name="Choose Mira Stone")).to_be_visible()
    expect(page.get_by_role("button", name="Choose Cal Beck")).to_have_count(0)
    page.get_by_role("button", name="Choose Mira Stone").click()
    expect(page.get_by_text("Times are shown in your time zone")).to_contain_text("New York")
    expect(page.locator("#course-options input[type=radio]").first).to_be_visible()

    holiday = (date.today() + timedelta(days=22)).isoformat()
    page.get_by_label("A date in a week you are away").fill(holiday)
    page.get_by_role("button", name="Skip that week").click()
    expect(page.locator("#skip-list li")).to_have_count(1)
    first_option = page.locator("#course-options input[type=radio]").first
    expect(first_option).to_be_visible()
    first_option.check()
    dates = page.locator("#course-dates table tbody tr")
    expect(dates).to_have_count(16)
    expect(page.locator("#course-dates table caption")).to_contain_text("Dates of your 16 sessions")
    expect(page.locator("#course-dates thead")).to_contain_text("London time")  # zones differ
    expect(page.locator("#course-dates")).to_contain_text("skipped")
    expect(page.locator("#course-dates .end-date")).to_contain_text("Ends")
    screenshot(page, "course-dates-desktop")

    book_the_course(page, "Ada Lovelace", "ada@example.com")
    expect(page.get_by_role("status")).to_contain_text("Booked")
    screenshot(page, "confirmation-desktop")

    # The calendar file is the server's own (GET /api/v1/courses/{id}.ics), not made in the page.
    ics_link = page.get_by_role("link", name="Add to calendar (.ics)")
    assert re.fullmatch(r"/api/v1/courses/[\w-]+\.ics\?token=mng_[\w-]+",
                        ics_link.get_attribute("href"))
    with page.expect_download() as download:
        ics_link.click()
    ics = (tmp_path / "course.ics")
    download.value.save_as(ics)
    text = ics.read_bytes().decode("utf-8")
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert text.count("BEGIN:VEVENT") == 16 and "\n" not in text.replace("\r\n", "")
    assert "DIT session 16/16 with Mira Stone" in text.replace("\r\n ", "")

    manage_url = page.locator("#manage-link").get_attribute("href")
    course_id = re.search(r"course=([\w-]+)", manage_url).group(1)
    course = requests.get(clinic.url(f"/api/v1/courses/{course_id}"), headers=clinic.admin).json()
    assert len(course["sessions"]) == 16 and course["status"] == "active"
    sessions = {s["number"]: s for s in course["sessions"]}

    # --- manage: move session 3, cancel session 5 ---
    page.goto(clinic.url(manage_url))
    expect(page.get_by_role("heading", name="Your course")).to_be_visible()
    expect(page.locator("#position")).to_have_text(re.compile(r"session 1 of 16"))
    expect(page.locator("#overview")).to_contain_text("16 still to come")
    expect(page.locator("#overview .marks li")).to_have_count(16)

    page.get_by_role("button", name=re.compile(r"^Move session 3,")).click()
    expect(page.get_by_role("heading", name="Move session 3")).to_be_visible()
    new_time = page.locator("#move-slots .slot").first
    expect(new_time).to_be_visible()
    new_start = new_time.get_attribute("data-start")
    new_time.click()
    expect(page.locator("#move-to")).to_contain_text("Move session 3 from")
    page.get_by_role("button", name="Yes, move it").click()
    expect(page.get_by_role("status")).to_contain_text("Session 3 is now on")

    page.get_by_role("button", name=re.compile(r"^Cancel session 5,")).click()
    expect(page.locator("#cancel-what")).to_contain_text("Cancel session 5 on")
    expect(page.locator("#late-warning")).to_be_hidden()  # weeks away: not late
    page.get_by_role("button", name="Yes, cancel session 5").click()
    expect(page.get_by_role("status")).to_contain_text("is cancelled")
    expect(page.locator(f'li[data-booking="{sessions[5]["booking_id"]}"]')).to_contain_text(
        "Cancelled")
    expect(page.locator("#overview")).to_contain_text("15 still to come")
    expect(page.locator("#overview .marks li.cancelled")).to_have_count(1)
    screenshot(page, "manage-desktop")

    moved = requests.get(clinic.url(f"/api/v1/bookings/{sessions[3]['booking_id']}"),
                         headers=clinic.admin).json()
    assert datetime.fromisoformat(moved["start"]) == datetime.fromisoformat(new_start)
    cancelled = requests.get(clinic.url(f"/api/v1/bookings/{sessions[5]['booking_id']}"),
                             headers=clinic.admin).json()
    assert cancelled["status"] == "cancelled" and cancelled["late_cancellation"] is False

    # --- the therapist's week ---
    desk = pages.open()
    desk.goto(clinic.url("/therapist"))
    desk.get_by_label("Therapist", exact=True).select_option("mira-stone")
    desk.get_by_label("Your therapist token").fill(token)
    desk.get_by_role("button", name="Show my week").click()
    expect(desk.get_by_role("heading", name="Mira Stone: your week")).to_be_visible()
    desk.get_by_label("Go to the week of").fill(london_day(new_start))
    card = desk.locator(f'.session-card[data-booking="{sessions[3]["booking_id"]}"]')
    expect(card).to_contain_text("AL")
    expect(card).to_contain_text("3/16")
    expect(card).to_contain_text("Video")
    desk.get_by_label("Go to the week of").fill(london_day(sessions[5]["start"]))
    cancelled_card = desk.locator(f'.session-card[data-booking="{sessions[5]["booking_id"]}"]')
    expect(cancelled_card).to_contain_text("5/16")
    expect(cancelled_card).to_contain_text("cancelled")
    progress = desk.locator(f'.course-card[data-course="{course_id}"]')
    expect(progress.locator(".marks li")).to_have_count(16)
    expect(progress.locator(".marks li.cancelled")).to_have_count(1)
    expect(progress).to_contain_text("15 to come, 1 cancelled")

    off_start = datetime.now(UTC) + timedelta(days=200)
    desk.get_by_label("From").fill(off_start.astimezone(ZoneInfo("America/New_York"))
                                   .strftime("%Y-%m-%dT09:00"))
    desk.get_by_label("Until").fill(off_start.astimezone(ZoneInfo("America/New_York"))
                                    .strftime("%Y-%m-%dT17:00"))
    desk.get_by_label("Reason").fill("Conference")
    desk.get_by_role("button", name="Add time off").click()
    expect(desk.locator("#time-off-list")).to_contain_text("Conference")
    feed_field = desk.get_by_label("Feed address")
    expect(feed_field).to_have_value(re.compile(r"/ical/cal_.+\.ics$"))
    expect(desk.get_by_role("button", name="Copy address")).to_be_visible()
    old_feed = feed_field.input_value()
    assert "3/16 · A.L." in requests.get(old_feed, timeout=30).content.decode()
    desk.get_by_role("button", name="Make a new address").click()
    desk.get_by_role("button", name="Yes, make a new address").click()
    expect(desk.locator("#status")).to_contain_text("New feed address made")
    expect(feed_field).not_to_have_value(old_feed)
    assert requests.get(old_feed, timeout=30).status_code == 404
    assert requests.get(feed_field.input_value(), timeout=30).status_code == 200
    desk.get_by_label("Go to the week of").fill(london_day(new_start))
    expect(card).to_be_visible()
    screenshot(desk, "therapist-desktop")

    # --- the same pages at phone width ---
    phone = pages.open(PHONE, phone=True)
    phone.goto(clinic.url("/"))
    expect(phone.get_by_role("button", name="Choose Mira Stone")).to_be_visible()
    assert fits_phone(phone)
    screenshot(phone, "booking-phone")
    phone.goto(clinic.url(manage_url))
    expect(phone.locator("#overview")).to_contain_text("15 still to come")
    assert fits_phone(phone)
    screenshot(phone, "manage-phone")
    phone.goto(clinic.url("/therapist"))
    phone.get_by_label("Therapist", exact=True).select_option("mira-stone")
    phone.get_by_label("Your therapist token").fill(token)
    phone.get_by_role("button", name="Show my week").click()
    phone.get_by_label("Go to the week of").fill(london_day(new_start))
    expect(phone.locator(f'.session-card[data-booking="{sessions[3]["booking_id"]}"]')).to_contain_text("3/16")
    assert fits_phone(phone)  # the grid scrolls inside its own box
    screenshot(phone, "therapist-phone")


def test_a_taken_time_offers_the_nearest_free_ones_and_a_late_cancellation_is_announced(
        clinic_factory, pages, screenshot):
    clinic = clinic_factory("sqlite")
    every_day = [{"weekday": day, "start": "07:00", "end": "21:00", "modalities": ALL}
                 for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                             "sunday")]
    admin_setup(clinic, weekly=every_day, min_notice_hours=1)
    page = pages.open()
    page.goto(clinic.url("/"))
    page.keyboard.press("Tab")  # the first stop skips the header
    expect(page.get_by_role("link", name="Skip to the booking form")).to_be_focused()
    page.get_by_role("button", name="Choose Mira Stone").click()
    first = page.locator("#slots .slot").first
    expect(first).to_be_visible()
    wanted = first.get_attribute("data-start")
    expect(first).to_contain_text("London time")

    # Someone else books that time between the page showing it and the client choosing it.
    choose_a_taken_time(clinic, pages, first)
    expect(page.get_by_role("alert").first).to_contain_text("that time has just been taken")
    alternatives = page.locator("#alternatives .slot")
    expect(alternatives.first).to_be_visible()
    expect(alternatives.first).to_be_focused()
    assert wanted not in [b.get_attribute("data-start") for b in alternatives.all()]
    screenshot(page, "taken-desktop")

    expect(alternatives.first).to_contain_text("London time")
    page.keyboard.press("Enter")  # the nearest free time has the focus: choose it by keyboard
    expect(page.locator("#hold-status")).to_contain_text("We are holding this time for you")
    page.get_by_label("Your name").fill("Grace Hopper")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_role("button", name="Book this session").click()
    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    manage_url = page.locator("#manage-link").get_attribute("href")

    # Within 48 hours of the session: the page says it is late before the client confirms.
    page.goto(clinic.url(manage_url))
    page.get_by_role("button", name=re.compile(r"^Cancel session,")).click()
    expect(page.locator("#late-warning")).to_be_visible()
    expect(page.locator("#late-warning")).to_contain_text("counts as a late cancellation")
    screenshot(page, "late-cancel-desktop")
    page.get_by_role("button", name="Yes, cancel this session").click()
    expect(page.get_by_role("status")).to_contain_text("recorded as a late cancellation")
    expect(page.locator(".session .badge")).to_contain_text("Cancelled (late)")


def test_a_course_whose_dates_were_taken_names_them_and_offers_other_weekly_times(
        clinic_factory, pages, screenshot):
    clinic = clinic_factory("sqlite")
    admin_setup(clinic, weekly=[
        {"weekday": "wednesday", "start": "09:00", "end": "12:00", "modalities": ALL}])
    page = pages.open()
    open_course_dates(clinic, page, "Phone call")
    page.get_by_role("button", name="Continue with these 16 dates").click()
    page.get_by_label("Your name").fill("Alan Turing")
    page.get_by_label("Email").fill("alan@example.com")
    expect(page.get_by_label(re.compile("^Phone"))).to_have_attribute("required", "")
    page.get_by_label(re.compile("^Phone")).fill("+44 20 7946 0000")

    # Another client takes the course's fourth date meanwhile.
    fourth = page.locator("#course-dates table tbody tr").nth(3).get_attribute("data-start")
    options = requests.get(clinic.url("/api/v1/therapists/mira-stone/course-options"), params={
        "session_type": "dit-session", "modality": "phone", "tz": "America/New_York"}).json()
    taken_start = options["options"][0]["sessions"][3]
    assert taken_start == fourth
    in_new_york = datetime.fromisoformat(taken_start).astimezone(ZoneInfo("America/New_York"))
    taken = requests.post(clinic.url("/api/v1/bookings"), timeout=10, json={
        "therapist_id": "mira-stone", "session_type": "dit-session", "modality": "phone",
        "start": taken_start, "client": {"name": "Other Client", "email": "o@example.com"}})
    assert taken.status_code == 201, taken.text

    pages.console.expect_http_error(409, "/api/v1/courses")
    page.get_by_role("button", name="Book all 16 sessions").click()
    expect(page.get_by_role("alert").first).to_contain_text(
        "Some dates of that course are no longer free")
    expect(page.locator("#alternatives")).to_contain_text(
        f"{in_new_york:%a}, {in_new_york.day} {in_new_york:%b} {in_new_york.year}, "
        f"{in_new_york:%H:%M}")
    choice = page.locator("#alternatives .slot").first
    expect(choice).to_be_focused()
    screenshot(page, "course-conflict-desktop")
    choice.click()
    expect(page.get_by_role("heading", name="3. Your details")).to_be_visible()
    page.get_by_role("button", name="Book all 16 sessions").click()
    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
