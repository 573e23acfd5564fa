"""Operations: health, readiness, and the API's own documentation."""

from __future__ import annotations

import json

import eventlet
from werkzeug.wrappers import Response

from clinic.errors import ServiceUnavailable
from gateway import openapi
from gateway.entrypoints import api
from gateway.schemas import Health, Readiness

READY_TIMEOUT_SECONDS = 2.0


class OperationsApi:
    @api("GET", "/health", summary="The gateway is running.", tag="operations", reply=Health)
    def health(self, request):
        return {"status": "ok"}

    @api("GET", "/ready", summary="Every backend service answers.", tag="operations",
         reply=Readiness, errors=(503,))
    def ready(self, request):
        backends = {"availability": self.availability, "booking": self.booking,
                    "notifications": self.notifications, "progress": self.progress}

        def answers(client) -> bool:
            try:
                return client.call("ping", timeout=READY_TIMEOUT_SECONDS) == "pong"
            except ServiceUnavailable:
                return False

        pool = eventlet.GreenPool(len(backends))
        status = dict(zip(backends, pool.imap(answers, backends.values()), strict=True))
        silent = [name for name, ok in status.items() if not ok]
        if silent:
            raise ServiceUnavailable(f"Not answering: {', '.join(silent)}.",
                                     {"service": ", ".join(silent), "services": silent})
        return {"status": "ready", "services": status}

    @api("GET", "/openapi.json", summary="This document.", tag="operations",
         extra={"hidden": True})
    def openapi_document(self, request):
        return openapi.document(self.config.public_base_url)

    @api("GET", "/docs", summary="A readable reference of the API.", tag="operations",
         extra={"hidden": True})
    def docs(self, request):
        page = openapi.docs_page(openapi.document(self.config.public_base_url))
        return Response(page, mimetype="text/html",
                        headers={"Content-Security-Policy": openapi.DOCS_CSP})


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers,
                    mimetype="application/json")
