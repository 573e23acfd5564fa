"""HTTP entrypoints of the gateway: validation, JSON replies and the error table.

Every route is declared with ``@api``: its method, path, the pydantic models of its query, body
and reply, and who may call it. The same declaration validates requests and writes the OpenAPI
document, so the two cannot drift. Every failure leaves as the contract's error body
(docs/http-contract.md, "Errors").
"""

from __future__ import annotations

import functools
import json
import logging
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nameko.exceptions import RemoteError, UnknownService
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from clinic.errors import (
    ClinicError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from clinic.settings import Settings
from gateway.auth import authorise, identify
from gateway.limits import RateLimiter, cors_headers

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

# The one table from failures to HTTP statuses; the first matching class wins.
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidRequest, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (ServiceUnavailable, 503),
    (UnknownService, 503),
)


def error_response(status: int, code: str, message: str, details: dict | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(json.dumps(body), status=status, headers=headers,
                    mimetype="application/json")


def validation_details(error: ValidationError, location: str) -> dict[str, Any]:
    fields = []
    for problem in error.errors(include_url=False):
        path = ".".join(str(part) for part in problem["loc"]) or location
        fields.append({"field": path, "message": problem["msg"]})
    return {"fields": fields}


def response_for_exception(exc: Exception) -> Response:
    if isinstance(exc, ValidationError):
        return error_response(400, "invalid_request", "The request is not valid.",
                              validation_details(exc, "body"))
    if isinstance(exc, HTTPException):  # routing: 404, 405; werkzeug's 413
        return http_exception_response(exc)
    for error_type, status in ERROR_STATUS:
        if isinstance(exc, error_type):
            if isinstance(exc, ClinicError):
                wait = exc.details.get("retry_after_seconds") if status == 429 else None
                return error_response(status, exc.code, exc.message, exc.details,
                                      headers={"Retry-After": str(wait)} if wait else None)
            return error_response(status, "service_unavailable",
                                  f"The {exc} service is not available.", {"service": str(exc)})
    if isinstance(exc, RemoteError):
        log.error("unexpected error in a service: %s", exc)
    else:
        log.exception("unexpected error in the gateway", exc_info=exc)
    return error_response(500, "internal_error", "Something went wrong on our side.")


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def http_exception_response(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = dict(exc.get_headers())
    headers.pop("Content-Type", None)
    message = {404: "No such resource.", 405: "Method not allowed here.",
               413: "The body is over 64 KiB."}.get(status, exc.description or "Error.")
    return error_response(status, _HTTP_CODES.get(status, "invalid_request"), message,
                          headers=headers)


class ClinicRequest(Request):
    max_content_length = MAX_BODY_BYTES


class ApiWsgiApp(WsgiApp):
    """nameko's WSGI app, plus what every request gets before it reaches a route: JSON errors
    for unknown routes and oversized bodies, the POST rate limit, and CORS for ``/api/v1``."""

    def __init__(self, server):
        super().__init__(server)
        settings = Settings.from_config(server.container.config)
        self.cors_origins = settings.cors_origins
        self.limiter = RateLimiter(settings.rate_limit_per_minute)

    def __call__(self, environ, start_response):
        request = ClinicRequest(environ, shallow=True)
        cors = {}
        if request.path.startswith("/api/v1"):
            preflight = request.method == "OPTIONS"
            cors = cors_headers(request.headers.get("Origin"), self.cors_origins, preflight)
            if preflight:
                return Response(status=204, headers=cors)(environ, start_response)
        response = self.respond(request, environ)
        response.headers.extend(cors)
        return response(environ, start_response)

    def respond(self, request: Request, environ) -> Response:
        try:
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise_payload_too_large()
            if request.method == "POST":
                wait = self.limiter.check(request.remote_addr or "unknown")
                if wait:
                    return error_response(
                        429, "rate_limited", "Too many requests; please slow down.",
                        {"retry_after_seconds": math.ceil(wait)},
                        headers={"Retry-After": RateLimiter.retry_after_header(wait)})
            provider, values = self.url_map.bind_to_environ(environ).match()
            request.path_values = values
            return provider.handle_request(request)
        except HTTPException as exc:
            return http_exception_response(exc)


def raise_payload_too_large() -> None:
    from werkzeug.exceptions import RequestEntityTooLarge

    raise RequestEntityTooLarge()


class ApiServer(WebServer):
    def get_wsgi_app(self):
        return ApiWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, *args, **kwargs):
        # eventlet writes a large reply as headers, then body; with Nagle on, the body waits
        # ~40 ms for the client's delayed ACK. Accepted sockets inherit this from the listener.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().get_wsgi_server(sock, wsgi_app, *args, **kwargs)


@dataclass(frozen=True)
class Route:
    """What a route takes and gives; read by the entrypoint and by the OpenAPI writer."""

    method: str
    path: str
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    reply: Any = None
    status: int = 200
    access: str = "public"  # public | admin | therapist | owner (manage token, therapist, admin)
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    conditional: bool = False  # answers 304 to If-None-Match / If-Modified-Since
    extra: dict[str, Any] = field(default_factory=dict)


ROUTES: list[Route] = []


class ApiEntrypoint(HttpRequestHandler):
    server = ApiServer()

    def __init__(self, route: Route, **kwargs):
        self.route = route
        # werkzeug's rule syntax: {id} in the documented path becomes <id>
        rule = route.path.replace("{", "<").replace("}", ">")
        super().__init__(route.method, rule, **kwargs)

    def get_entrypoint_parameters(self, request):
        kwargs = dict(request.path_values)
        if self.route.query is not None:
            try:
                kwargs["query"] = self.route.query.model_validate(request.args.to_dict())
            except ValidationError as error:
                raise InvalidRequest("The query is not valid.",
                                     validation_details(error, "query")) from None
        if self.route.body is not None:
            kwargs["body"] = parse_json_body(request, self.route.body)
        return (request,), kwargs

    def response_from_result(self, result) -> Response:
        if isinstance(result, Response):
            return result
        status, payload = (result if isinstance(result, tuple) else (self.route.status, result))
        if isinstance(payload, BaseModel):
            payload = payload.model_dump(mode="json", exclude_none=True)
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def response_from_exception(self, exc: Exception) -> Response:
        return response_for_exception(exc)


def parse_json_body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest.field("body", "The body is not valid JSON.") from None
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest("The body is not valid.", validation_details(error, "body")) from None


def api(method: str, path: str, *, summary: str, tag: str, **options: Any) -> Callable:
    """Declare an HTTP route of the public API (see ``Route`` for the options).

    ``access`` both documents and enforces who may call: a route that is not public identifies
    its caller, checks the declaration (``gateway.auth.authorise``) and hands the handler the
    ``caller``; the services then check it against their rows (whose booking it is).
    """
    route = Route(method=method, path=path, summary=summary, tag=tag, **options)
    ROUTES.append(route)
    register = ApiEntrypoint.decorator(route, expected_exceptions=(ClinicError, ValidationError))
    if route.access == "public":
        return register

    def guarded(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def with_caller(service, request, **values: Any):
            caller = identify(request, service.config, service.availability)
            authorise(route.access, caller, values)
            return handler(service, request, caller=caller, **values)
        return register(with_caller)
    return guarded
