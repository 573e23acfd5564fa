"""Log lines: the request id on each, secrets off each, text or JSON (``LOG_FORMAT``).

Every service's ``config.yml`` names these in its ``LOGGING`` section (nameko hands that to
``logging.config.dictConfig``): the filter on the console handler, the formatter by factory.
``LOG_FORMAT=json`` gives one JSON object per line with time, level, service, request_id,
logger and message; anything else, the plain text line with the request id in brackets.
"""

from __future__ import annotations

import logging
import os
import re

from pythonjsonlogger.json import JsonFormatter

from clinic import tracing

# Secrets that could reach a log line through a URL or a header echoed in an error: manage and
# therapist tokens in query strings, calendar feed paths, bearer tokens, feed secrets.
# Replaced by "…", as the gateway's access log does (gateway.security.loggable), so a line
# already made safe there reads the same after this filter.
_SECRETS = (
    (re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE), r"\1…"),
    (re.compile(r"(/ical/)[^/\s\"'?.]+"), r"\1…"),
    (re.compile(r"(Bearer\s+)\S+", re.IGNORECASE), r"\1…"),
    (re.compile(r"\b(mng|thr|cal)_[A-Za-z0-9_-]{8,}"), r"\1_…"),
)


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request) and removes secrets from the
    message: the message is formatted here, once, so an argument cannot bring a token back."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = tracing.current() or "-"
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


TEXT_FORMAT = "%(asctime)s {service} %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def formatter(service: str, log_format: str | None = None) -> logging.Formatter:
    """The console formatter of ``service`` for ``LOG_FORMAT`` (``text`` or ``json``)."""
    chosen = (log_format or os.environ.get("LOG_FORMAT") or "text").strip().lower()
    if chosen == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    return logging.Formatter(TEXT_FORMAT.format(service=service))
