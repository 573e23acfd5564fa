"""Secrets out of the access log: a manage link's ``?token=`` never reaches a log line.

eventlet's WSGI server logs each request line, query included, to ``nameko.web.server``; the
filter rewrites the value of any ``token`` query parameter before the record is written.
"""

from __future__ import annotations

import logging
import re

_TOKEN_VALUE = re.compile(r"([?&]token=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    return _TOKEN_VALUE.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = record.getMessage(), None
        record.msg = redact(str(record.msg))
        return True


def install(logger_name: str = "nameko.web.server") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
