"""Serving the pages' files: only files under gateway/web, of the kinds the pages use."""

import pytest

from clinic.settings import Settings
from gateway.api.pages import WEB, asset_path, page_settings, render_page


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
