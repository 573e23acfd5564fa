"""The progress pages in a real browser, on the whole system.

A 16-week course booked twelve weeks ago (the system first runs with its clock twelve weeks
back, books it, and restarts on the real clock): its first twelve check-ins are history, written
straight into the progress database with falling scores; the client then fills session 13's
check-in on a phone, one question at a time, flags a risk and is shown where urgent help is;
the therapist sees the course marked, the chart and the reflections, marks the risk seen, writes
the focus and shares the goodbye letter; the client sees both. Screenshots at desktop and phone
width go to test-artifacts/browser/.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from services.progress.models import check_ins
from tests.browser.conftest import ARTIFACTS, PHONE
from tests.browser.test_pages import ALL, admin_setup, fits_phone

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WEEKS_BACK = 12
HISTORY = [(19, 15), (18, 15), (18, 13), (16, 12), (15, 12), (14, 10), (12, 9), (11, 9),
           (10, 7), (9, 7), (8, 6), (7, 5)]  # PHQ-9, GAD-7 of sessions 1-12


def seed_history(url: str, course_id: str, schedule: list[dict]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for session, (phq9, gad7) in zip(schedule, HISTORY, strict=False):
            connection.execute(check_ins.insert().values(
                id=str(uuid.uuid4()), course_id=course_id, session_number=session["number"],
                booking_id=session["booking_id"],
                submitted_at=datetime.fromisoformat(session["start"]) - timedelta(days=1),
                phq9_answers=[], gad7_answers=[], phq9_total=phq9, gad7_total=gad7,
                risk=False, reflection=f"Week {session['number']}: tried saying no once."))
    engine.dispose()


def test_a_client_checks_in_on_a_phone_and_the_therapist_answers_with_focus_and_letter(
        clinic_factory, pages, screenshot, tmp_path):
    clinic = clinic_factory("sqlite", CLINIC_CLOCK_OFFSET_SECONDS=str(-WEEKS_BACK * 7 * 86400))
    token = admin_setup(clinic, weekly=[
        {"weekday": d, "start": "08:00", "end": "20:00", "modalities": ALL}
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday")], min_notice_hours=1)
    then = datetime.now(UTC) - timedelta(weeks=WEEKS_BACK) + timedelta(days=2)
    first = then.replace(hour=10, minute=0, second=0, microsecond=0)
    while first.weekday() > 4:
        first += timedelta(days=1)
    booked = requests.post(clinic.url("/api/v1/courses"), json={
        "therapist_id": "mira-stone", "session_type": "dit-session", "modality": "video",
        "first_start": first.isoformat(), "sessions": 16,
        "client": {"name": "Ann Lee", "email": "ann@example.org"}}, timeout=10)
    assert booked.status_code == 201, booked.text
    course = booked.json()
    clinic.stop()
    clinic.env["CLINIC_CLOCK_OFFSET_SECONDS"] = "0"  # twelve weeks later
    clinic.start(str(tmp_path / "clinic-later.log"))

    progress_api = clinic.url(f"/api/v1/courses/{course['id']}/progress")
    view = requests.get(progress_api, params={"token": course["manage_token"]}, timeout=10).json()
    assert view["next_session"]["number"] == 13 and view["current_phase"] == "ending"
    seed_history(clinic.env["PROGRESS_DATABASE_URL"], course["id"], view["schedule"])

    # --- the client, on a phone ---
    phone = pages.open(PHONE, phone=True)
    phone.goto(clinic.url(f"/progress?token={course['manage_token']}&course={course['id']}"))
    expect(phone.locator("#where-facts")).to_contain_text("13 of 16")
    expect(phone.locator("#where-facts")).to_contain_text("Ending")
    expect(phone.get_by_role("heading", name="Question 1 of 16")).to_be_visible()
    expect(phone.locator("table.score-table tbody tr")).to_have_count(12)
    assert fits_phone(phone)
    screenshot(phone, "progress-phone")

    phone.get_by_role("button", name="Next").click()  # no answer yet: said, not lost
    expect(phone.get_by_role("alert")).to_contain_text("Please choose one answer")
    expect(phone.get_by_role("radio", name="Not at all")).to_be_focused()
    for number in range(1, 17):
        group = phone.get_by_role("group")
        heading = phone.get_by_role("heading", name=f"Question {number} of 16")
        if number > 1:  # each next question takes the focus
            expect(heading).to_be_focused()
        answer = "Several days" if number in (1, 2, 9, 10) else "Not at all"
        group.get_by_role("radio", name=answer, exact=True).check()
        if number == 9:
            expect(group).to_contain_text("better off dead")
            screenshot(phone, "check-in-question-phone")
            phone.locator("#check-in").screenshot(path=str(ARTIFACTS / "progress-check-in.png"))
        phone.get_by_role("button", name="Next").click()
    phone.get_by_label("What did you try since your last session").fill(
        "Told my sister I could not come on Sunday.")
    phone.get_by_role("button", name="Send my check-in").click()
    expect(phone.get_by_role("heading", name="Help is there now if you need it")).to_be_focused()
    expect(phone.locator("#urgent")).to_contain_text("116 123")
    expect(phone.locator("#urgent")).to_contain_text("999")
    expect(phone.locator("table.score-table tbody tr")).to_have_count(13)
    assert fits_phone(phone)
    screenshot(phone, "urgent-help-phone")

    # --- the therapist, at a desk ---
    desk = pages.open()
    desk.goto(clinic.url(f"/therapist?course={course['id']}"))
    desk.get_by_label("Therapist", exact=True).select_option("mira-stone")
    desk.get_by_label("Your therapist token").fill(token)
    desk.get_by_role("button", name="Show my week").click()
    card = desk.locator(f"#progress-{course['id']}")
    expect(card).to_contain_text("Risk flagged")
    expect(card.get_by_role("heading", name="Ann Lee: 13 check-ins")).to_be_focused()
    expect(card.locator("svg.score-chart")).to_be_visible()
    expect(card.locator("svg.score-chart .point.phq9")).to_have_count(13)
    expect(card.locator("table")).to_contain_text("Told my sister")
    screenshot(desk, "therapist-progress-desktop")
    box = card.bounding_box()  # the card's head: the risk flag and the chart
    box["y"] += desk.evaluate("window.scrollY")  # page coordinates, not the viewport's
    desk.screenshot(path=str(ARTIFACTS / "progress-therapist.png"), full_page=True,
                    clip={**box, "height": min(box["height"], 640)})
    card.get_by_role("button", name="I have seen it").click()
    expect(card).to_contain_text("Risk flag marked as seen")
    card.get_by_label("Interpersonal pattern").fill(
        "Keeping the peace by agreeing, then feeling unseen and withdrawing.")
    card.get_by_label("Feelings that go with it").fill("Resentment, then guilt.")
    card.get_by_role("button", name="Save the focus").click()
    expect(card).to_contain_text("Focus saved")
    card.get_by_label("Goodbye letter").fill(
        "Dear Ann,\n\nOver these sixteen weeks you noticed how often you agree to keep the "
        "peace, and you tried saying no.\n\nWith warm wishes, Mira")
    card.get_by_role("button", name="Share with the client").click()
    expect(card).to_contain_text("Shared: the client has been emailed")
    listed = requests.get(clinic.url("/api/v1/therapists/mira-stone/courses"),
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert listed[0]["risk_unseen"] is False

    # --- the client sees the focus and the letter ---
    page = pages.open()
    page.goto(clinic.url(f"/progress?token={course['manage_token']}&course={course['id']}"))
    expect(page.locator("#focus")).to_contain_text("Keeping the peace")
    expect(page.locator("#letter")).to_contain_text("you tried saying no")
    expect(page.locator("#check-in")).to_be_hidden()  # session 13's is in
    screenshot(page, "progress-desktop")
    page.locator("#scores").screenshot(path=str(ARTIFACTS / "progress-scores.png"))
