"""The web pages: booking (``/``), managing a booking (``/manage``) and a therapist's week
(``/therapist``), with their scripts and styles under ``/assets/``.

The pages are static files in ``gateway/web/``; their scripts call only the public API
(docs/http-contract.md). The few settings a page needs before it calls anything (the clinic's
zone, and when a cancellation counts as late) are written into the page's ``<body>`` here.
Every answer carries a Content-Security-Policy that allows only this origin: no CDN, no inline
script or style.
"""

from __future__ import annotations

import html
import mimetypes
from functools import lru_cache
from pathlib import Path

from werkzeug.wrappers import Response

from gateway.entrypoints import api, error_response

WEB = Path(__file__).resolve().parent.parent / "web"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a manage link's token must not leak to other sites
}
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".svg": "image/svg+xml", ".ico": "image/x-icon", ".png": "image/png"}
# Pages are small and carry settings: always revalidate. Assets: short cache, revalidated by ETag.
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=300"
SETTINGS_MARK = "<body"


@lru_cache(maxsize=64)
def _read(path: Path) -> bytes:
    return path.read_bytes()


def asset_path(name: str) -> Path | None:
    """The file under ``gateway/web`` that ``name`` names, or None: nothing outside that folder,
    no hidden file, and only the kinds of file in ASSET_TYPES."""
    if not name or "\\" in name or "\x00" in name:
        return None
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    path = (WEB / name).resolve()
    if not path.is_relative_to(WEB) or path.suffix not in ASSET_TYPES or not path.is_file():
        return None
    return path


def page_settings(settings) -> dict[str, str]:
    return {
        "data-clinic-zone": settings.clinic_timezone,
        "data-notice-hours": f"{settings.cancellation_notice_hours:g}",
    }


def render_page(file_name: str, settings) -> bytes:
    text = _read(WEB / file_name).decode("utf-8")
    attributes = "".join(f' {key}="{html.escape(value)}"'
                         for key, value in page_settings(settings).items())
    return text.replace(SETTINGS_MARK, SETTINGS_MARK + attributes, 1).encode("utf-8")


class PagesApi:
    def _page(self, file_name: str) -> Response:
        response = Response(render_page(file_name, self.config), mimetype="text/html")
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = PAGE_CACHE
        return response

    @api("GET", "/", summary="The booking page.", tag="pages", extra={"hidden": True})
    def booking_page(self, request):
        return self._page("index.html")

    @api("GET", "/manage", summary="See, move or cancel a booking or course.", tag="pages",
         extra={"hidden": True})
    def manage_page(self, request):
        return self._page("manage.html")

    @api("GET", "/therapist", summary="A therapist's week.", tag="pages",
         extra={"hidden": True})
    def therapist_page(self, request):
        return self._page("therapist.html")

    @api("GET", "/progress", summary="A client's course: check-in, scores, focus, letter.",
         tag="pages", extra={"hidden": True})
    def progress_page(self, request):
        return self._page("progress.html")

    @api("GET", "/assets/<path:name>", summary="Scripts and styles of the pages.", tag="pages",
         extra={"hidden": True})
    def asset(self, request, name: str):
        path = asset_path(name)
        if path is None:
            return error_response(404, "not_found", "No such asset.")
        content_type = ASSET_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        response = Response(_read(path), content_type=content_type)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = ASSET_CACHE
        response.add_etag()
        return response.make_conditional(request)
