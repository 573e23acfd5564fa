"""WCAG 2.2 AA in the browser (issue 22): axe-core on every page in each state that matters, at
desktop width and at 320 px (where nothing may scroll sideways); booking a session and a course
with the keyboard alone; the hold's warning and its one extension; text spacing and reduced
motion. Screenshots at 320 px land in test-artifacts/browser/.
"""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.accessibility import (
    NARROW,
    clipped_with_text_spacing,
    focused,
    scrolls_sideways,
    tab_to,
)
from tests.browser.conftest import DESKTOP
from tests.browser.test_pages import (
    ALL,
    admin_setup,
    book_the_course,
    choose_a_taken_time,
    open_course_dates,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

EVERY_DAY = [{"weekday": day, "start": "07:00", "end": "21:00", "modalities": ALL}
             for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                         "sunday")]
CLINIC = {"CLINIC_NAME": "Harbour Clinic", "CLINIC_CITY": "Leeds",
          "CLINIC_PHONE": "0113 496 0000", "CLINIC_EMAIL": "access@harbour.example"}
VIEWPORTS = {"desktop": DESKTOP, "narrow": NARROW}


def check(page: Page, axe, state: str, shot=None) -> None:
    """axe's WCAG A/AA rules, and no sideways scrolling, on the page as it is now."""
    axe(page, state)
    assert not scrolls_sideways(page), f"{page.url} ({state}) scrolls sideways"
    if shot is not None:
        shot(page, re.sub(r"\W+", "-", state))


@pytest.mark.parametrize("width", ["desktop", "narrow"])
def test_every_page_in_every_state_passes_axe_and_reflows(
        clinic_factory, pages, axe, screenshot, width):
    clinic = clinic_factory("sqlite", **CLINIC)
    token = admin_setup(clinic, weekly=EVERY_DAY, min_notice_hours=1)
    narrow = width == "narrow"
    page = pages.open(VIEWPORTS[width], phone=narrow)
    shot = screenshot if narrow else None

    # --- booking: empty, with slots, a taken time, details with a hold, an error, booked ---
    page.goto(clinic.url("/"))
    expect(page.get_by_role("button", name="Choose Mira Stone")).to_be_visible()
    expect(page.locator("header.site")).to_contain_text("Harbour Clinic")
    expect(page.get_by_label("In person at the Leeds clinic")).to_be_visible()
    check(page, axe, "booking, empty", shot)
    page.get_by_role("button", name="Choose Mira Stone").click()
    first = page.locator("#slots .slot").first
    expect(first).to_be_visible()
    check(page, axe, "booking, with slots", shot)

    choose_a_taken_time(clinic, pages, first)
    expect(page.get_by_role("alert").first).to_contain_text("just been taken")
    check(page, axe, "booking, a taken time", shot)

    page.locator("#alternatives .slot").first.click()
    expect(page.locator("#hold-status")).to_contain_text("We are holding this time")
    check(page, axe, "booking, details with a hold", shot)
    page.get_by_role("button", name="Book this session").click()
    expect(page.get_by_role("alert").first).to_contain_text("Please check: Your name")
    check(page, axe, "booking, details with an error", shot)
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_role("button", name="Book this session").click()
    expect(page.get_by_role("heading", name="You are booked")).to_be_visible()
    check(page, axe, "booking, booked", shot)
    booking_url = page.locator("#manage-link").get_attribute("href")

    # --- a course: the dates table, booked ---
    open_course_dates(clinic, page, "Video call")
    check(page, axe, "course, dates", shot)
    book_the_course(page, "Grace Hopper", "grace@example.com")
    expect(page.locator("#summary caption")).to_contain_text("Your 16 booked sessions")
    check(page, axe, "course, booked", shot)
    course_url = page.locator("#manage-link").get_attribute("href")

    # --- manage: a booking (moving, a late cancellation), a course, a broken link ---
    page.goto(clinic.url(booking_url))
    expect(page.locator("#session-list li")).to_have_count(1)
    check(page, axe, "manage a booking", shot)
    page.get_by_role("button", name=re.compile(r"^Move session,")).click()
    expect(page.locator("#move-slots .slot").first).to_be_visible()
    check(page, axe, "manage, moving", shot)
    page.get_by_role("button", name="Keep the time as it is").click()
    page.get_by_role("button", name=re.compile(r"^Cancel session,")).click()
    expect(page.locator("#late-warning")).to_be_visible()
    check(page, axe, "manage, a late cancellation", shot)
    page.goto(clinic.url(course_url))
    expect(page.locator("#overview")).to_contain_text("16 still to come")
    check(page, axe, "manage a course", shot)
    # --- progress: a course just booked, and a link without its key ---
    page.goto(clinic.url(course_url.replace("/manage?", "/progress?")))
    expect(page.locator("#where-facts")).to_contain_text("of 16")
    check(page, axe, "progress of a new course", shot)
    page.goto(clinic.url("/progress"))
    expect(page.locator("#status")).to_contain_text("needs the link from your email")
    check(page, axe, "progress, a broken link", shot)
    page.goto(clinic.url("/manage?token=nothing"))
    expect(page.get_by_role("alert")).to_contain_text("This link is incomplete")
    check(page, axe, "manage, a broken link", shot)

    # --- the therapist's page: signing in, a wrong token, the week ---
    page.goto(clinic.url("/therapist"))
    expect(page.get_by_label("Therapist", exact=True)).to_have_value(re.compile("."))
    check(page, axe, "therapist, sign in", shot)
    page.get_by_label("Therapist", exact=True).select_option("mira-stone")
    page.get_by_label("Your therapist token").fill("thr_not-the-token")
    pages.console.expect_http_error(401, "/api/v1/therapists")
    pages.console.expect_http_error(403, "/api/v1/therapists")
    page.get_by_role("button", name="Show my week").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    check(page, axe, "therapist, a wrong token", shot)
    page.get_by_label("Your therapist token").fill(token)
    page.get_by_role("button", name="Show my week").click()
    expect(page.get_by_role("heading", name="Mira Stone: your week")).to_be_visible()
    expect(page.locator("#feed-body input")).to_have_value(re.compile(r"\.ics$"))
    check(page, axe, "therapist, the week", shot)

    # --- the API reference and the accessibility statement ---
    page.goto(clinic.url("/docs"))
    check(page, axe, "docs", shot)
    page.goto(clinic.url("/accessibility"))
    expect(page.get_by_role("link", name="0113 496 0000")).to_have_attribute(
        "href", "tel:0113 496 0000")
    expect(page.get_by_role("link", name="access@harbour.example")).to_be_visible()
    check(page, axe, "accessibility statement", shot)

    assert len(axe.checked) == 20


@pytest.mark.parametrize("path", ["/", "/manage?token=x&booking=y", "/therapist", "/docs",
                                  "/accessibility", "/progress"])
def test_every_page_links_the_statement_from_its_footer(clinic_factory, pages, path):
    clinic = clinic_factory("sqlite")
    page = pages.open()
    if path.startswith("/manage"):
        pages.console.expect_http_error(401, "/api/v1/bookings")
    page.goto(clinic.url(path))
    link = page.locator("footer").get_by_role("link", name="Accessibility")
    expect(link).to_have_attribute("href", "/accessibility")


def test_a_client_books_a_session_with_the_keyboard_alone(clinic_factory, pages, axe):
    clinic = clinic_factory("sqlite")
    admin_setup(clinic, weekly=EVERY_DAY, min_notice_hours=1)
    page = pages.open()
    page.goto(clinic.url("/"))
    expect(page.get_by_role("button", name="Choose Mira Stone")).to_be_visible()

    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to the booking form"
    assert focused(page)["visible"]
    page.keyboard.press("Enter")  # past the header, into the form
    assert tab_to(page, lambda f: f["type"] == "radio")["label"] == "A single session"
    tab_to(page, lambda f: f["type"] == "radio" and f["checked"])  # the way of meeting
    page.keyboard.press("ArrowDown")  # radio groups move with the arrows
    now = focused(page)
    assert now["label"] == "Video call" and now["checked"]
    page.keyboard.press("Shift+Tab")  # back to the specialty, then on again
    assert focused(page)["id"] == "specialty"
    tab_to(page, lambda f: f["text"] == "Choose Mira Stone")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="2. Choose a time")).to_be_focused()
    expect(page.locator("#slots .slot").first).to_be_visible()

    slot = tab_to(page, lambda f: f["tag"] == "button"
                  and page.evaluate("document.activeElement.classList.contains('slot')"))
    # Each time's button names the day, the time and the zone.
    expect(page.locator(":focus")).to_have_accessible_name(re.compile(
        r"^\w+day, \d+ \w+ \d{4}, \d\d:\d\d New York time \(\d\d:\d\d London time\)$"))
    assert slot["visible"]
    page.keyboard.press("Space")
    expect(page.get_by_role("heading", name="3. Your details")).to_be_focused()

    page.keyboard.press("Tab")
    assert focused(page)["id"] == "client-name"
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Enter")  # submitting with the email missing: the error is announced
    expect(page.get_by_role("alert").first).to_contain_text("Please check: Email")
    assert focused(page)["id"] == "client-email"
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    page.keyboard.type("ada@example.com")
    tab_to(page, lambda f: f["text"] == "Book this session")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="You are booked")).to_be_focused()
    expect(page.get_by_role("status")).to_contain_text("Booked")
    axe(page, "booked by keyboard")


def test_a_client_books_a_course_with_the_keyboard_alone_at_phone_width(
        clinic_factory, pages, axe, screenshot):
    clinic = clinic_factory("sqlite")
    admin_setup(clinic, weekly=EVERY_DAY[:5], min_notice_hours=1)
    page = pages.open(NARROW, phone=True)
    page.goto(clinic.url("/"))
    expect(page.get_by_role("button", name="Choose Mira Stone")).to_be_visible()

    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    tab_to(page, lambda f: f["type"] == "radio")
    page.keyboard.press("ArrowDown")
    now = focused(page)
    assert now["label"].startswith("A 16-week course") and now["checked"]
    tab_to(page, lambda f: f["text"] == "Choose Mira Stone")
    page.keyboard.press("Space")
    expect(page.get_by_role("heading", name="2. Choose a time")).to_be_focused()

    expect(page.locator("#course-options input").first).to_be_visible()
    first = tab_to(page, lambda f: f["type"] == "radio")  # the weekly times
    assert not first["checked"]
    page.keyboard.press("Space")
    expect(page.locator("#course-dates table tbody tr")).to_have_count(16)
    page.keyboard.press("ArrowDown")  # another weekly time: the dates follow, the focus stays
    expect(page.locator("#option-1")).to_be_checked()
    assert focused(page)["id"] == "option-1"
    chosen = page.locator("#course-options input:checked + label").inner_text()
    weekday = chosen.split("s at ")[0]
    expect(page.locator("#course-dates tbody tr").first).to_contain_text(weekday[:3])
    assert not scrolls_sideways(page)
    screenshot(page, "course-dates-320")

    tab_to(page, lambda f: f["text"] == "Continue with these 16 dates")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="3. Your details")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.type("Alan Turing")
    page.keyboard.press("Tab")
    page.keyboard.type("alan@example.com")
    tab_to(page, lambda f: f["text"] == "Book all 16 sessions")
    page.keyboard.press("Space")
    expect(page.get_by_role("heading", name="You are booked")).to_be_focused()
    expect(page.locator("#summary table tbody tr")).to_have_count(16)
    assert not scrolls_sideways(page)
    axe(page, "course booked by keyboard, 320 px")
    screenshot(page, "course-booked-320")


def test_the_hold_says_how_long_it_lasts_warns_before_it_lapses_and_extends_once(
        clinic_factory, pages, axe, screenshot):
    clinic = clinic_factory("sqlite")
    admin_setup(clinic, weekly=EVERY_DAY, min_notice_hours=1)
    page = pages.open(NARROW, phone=True)
    page.clock.install()  # the page's clock only: the server's hold runs in real time
    page.goto(clinic.url("/"))
    page.get_by_role("button", name="Choose Mira Stone").click()
    expect(page.locator("#step-time")).to_contain_text(
        "we hold it for you for 10 minutes while you give your details")
    # (page.expect_response hangs under the suite's eventlet patching: answers are collected.)
    answers = []
    page.on("response", lambda answer: answers.append(answer)
            if re.search(r"/api/v1/holds(/[\w-]+/extend)?$", answer.url) else None)
    page.locator("#slots .slot").first.click()
    expect(page.locator("#hold-status")).to_contain_text("for 10:00 more")
    hold = answers[0].json()
    expect(page.locator("#hold-warning")).to_be_empty()

    page.clock.fast_forward("08:30")  # 1:30 left
    warning = page.locator("#hold-warning")
    expect(warning).to_have_attribute("role", "alert")
    expect(warning).to_contain_text("Your hold ends in about 2 minutes")
    extend = page.get_by_role("button", name="Hold it 10 more minutes")
    check(page, axe, "hold warning", screenshot)
    extend.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("We will hold this time until")
    assert [answer.status for answer in answers] == [201, 200]
    assert answers[1].json()["expires_at"] > hold["expires_at"]
    expect(warning).to_be_empty()
    assert focused(page)["id"] == "client-name"  # back to the form, nothing lost
    expect(page.locator("#hold-status")).to_contain_text("for 10:00 more")

    again = requests.post(clinic.url(f"/api/v1/holds/{hold['id']}/extend"), timeout=10,
                          headers={"Authorization": f"Bearer {hold['manage_token']}"})
    assert again.status_code == 409  # once only, on the server too

    page.clock.fast_forward("08:30")
    expect(warning).to_contain_text("It cannot be extended again")
    expect(page.get_by_role("button", name="Hold it 10 more minutes")).to_have_count(0)
    page.clock.fast_forward("02:00")
    expect(page.get_by_role("alert").first).to_contain_text("Your hold on this time has ended")
    expect(page.locator("#hold-status")).to_contain_text("book now, or choose another time")


@pytest.mark.parametrize("path", ["/", "/therapist", "/accessibility", "/docs"])
def test_text_spacing_and_reduced_motion_keep_every_page_whole(clinic_factory, pages, path):
    clinic = clinic_factory("sqlite")
    admin_setup(clinic, weekly=EVERY_DAY, min_notice_hours=1)
    page = pages.open(NARROW, phone=True)
    page.emulate_media(reduced_motion="reduce")
    page.goto(clinic.url(path))
    if path == "/":
        page.get_by_role("button", name="Choose Mira Stone").click()
        expect(page.locator("#slots .slot").first).to_be_visible()
    moving = page.evaluate("""() => [...document.querySelectorAll('*')].filter((el) => {
        const style = getComputedStyle(el);
        return style.animationName !== 'none' || parseFloat(style.transitionDuration) > 0;
      }).length""")
    assert moving == 0
    assert clipped_with_text_spacing(page) == []
    assert not scrolls_sideways(page)


def test_the_axe_check_finds_a_problem_when_there_is_one(clinic_factory, pages, axe):
    """The check above can fail: a field without a label and grey-on-white text are caught."""
    clinic = clinic_factory("sqlite")
    page = pages.open()
    page.goto(clinic.url("/accessibility"))
    axe(page, "as served")
    page.evaluate("""() => {
      const field = document.createElement('input');
      document.querySelector('main').append(field);
      document.querySelector('main p').style.color = '#bbbbbb';
    }""")
    with pytest.raises(AssertionError) as found:
        axe(page, "broken on purpose")
    assert "- label (critical)" in str(found.value)
    assert "- color-contrast (serious)" in str(found.value)
