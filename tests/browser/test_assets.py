"""Serving the pages' files: only files under gateway/web, of the kinds the pages use."""

import pytest

from clinic.settings import Settings
from gateway.api.pages import WEB, asset_path, page_settings, render_page
from gateway.clinic_info import ClinicInfo


@pytest.mark.parametrize("name", ["app.css", "api.js", "booking.js", "favicon.svg"])
def test_the_pages_files_are_found(name):
    assert asset_path(name) == WEB / name


@pytest.mark.parametrize("name", [
    "../api/pages.py", "..%2Fservice.py", "/etc/passwd", "../../README.md", "./app.css",
    ".hidden.js", "a//b.js", "app.css\x00.js", "..\\api\\pages.py", "", "index.html",
    "no-such-file.js"])
def test_nothing_else_is_served(name):
    assert asset_path(name) is None


def test_pages_carry_the_settings_their_scripts_need():
    settings = Settings.from_config({"CLINIC_TIMEZONE": "Europe/London",
                                     "CANCELLATION_NOTICE_HOURS": "36"})
    assert page_settings(settings) == {"data-clinic-zone": "Europe/London",
                                       "data-notice-hours": "36"}
    page = render_page("manage.html", settings).decode()
    assert '<body data-clinic-zone="Europe/London" data-notice-hours="36">' in page
    assert "<script type=\"module\" src=\"/assets/manage.js\"></script>" in page


@pytest.mark.parametrize("name", ["index.html", "manage.html", "therapist.html",
                                  "accessibility.html", "progress.html"])
def test_pages_name_the_clinic_from_its_settings(name):
    config = {"CLINIC_NAME": "Harbour <Clinic>", "CLINIC_CITY": "Leeds",
              "CLINIC_EMAIL": "access@harbour.example", "COURSE_SESSIONS": "12"}
    page = render_page(name, Settings.from_config(config), ClinicInfo.from_config(config))
    text = page.decode()
    assert "{{" not in text and "}}" not in text
    assert "Harbour &lt;Clinic&gt;, Leeds</title>" in text
    assert "London" not in text.replace("Europe/London", "")  # the city is the setting's


def test_the_clinic_is_described_by_its_settings_with_defaults():
    info = ClinicInfo.from_config({})
    assert (info.name, info.city, info.course_sessions, info.hold_minutes) == (
        "The Clinic", "London", 16, 10)
    with pytest.raises(ValueError):
        ClinicInfo.from_config({"COURSE_SESSIONS": "60"})
