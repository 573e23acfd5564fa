"""HTTP entrypoints of the gateway: validation, JSON replies and the error table.

Every route is declared with ``@api``: its method, path, the pydantic models of its query, body
and reply, and who may call it. The same declaration validates requests and writes the OpenAPI
document, so the two cannot drift. Every failure leaves as the contract's error body
(docs/http-contract.md, "Errors").
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import eventlet
from eventlet import wsgi
from nameko.exceptions import RemoteError, UnknownService
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as NoSuchRoute
from werkzeug.wrappers import Request, Response

from clinic import tracing
from clinic.errors import (
    ClinicError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    StartupRefused,
    Unauthorized,
)
from clinic.settings import Settings
from gateway import observability, security
from gateway.auth import authorise, identify
from gateway.limits import RateLimiter, cors_headers, make_limiter

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


def rate_limited(wait: float) -> Response:
    return error_response(429, "rate_limited", "Too many requests; please slow down.",
                          {"retry_after_seconds": math.ceil(wait)},
                          headers={"Retry-After": RateLimiter.retry_after_header(wait)})


class ApiWsgiApp(WsgiApp):
    """nameko's WSGI app, plus what every request gets before it reaches a route: JSON errors
    for unknown routes and oversized bodies, the rate limits (POSTs, expensive GETs, failed
    authentications; per client address), CORS for ``/api/v1`` and the security headers."""

    def __init__(self, server):
        super().__init__(server)
        settings = Settings.from_config(server.container.config)
        problem = security.admin_token_problem(settings.admin_token)
        if problem:
            raise StartupRefused(problem)
        self.cors_origins = settings.cors_origins
        self.amqp_uri = settings.amqp_uri  # /metrics counts the dead letters waiting there
        self.protection = protection = security.Protection.from_config(server.container.config)
        shared = (protection.redis_url, protection.redis_prefix)
        self.limiter = make_limiter("posts", protection.posts_per_minute, *shared)
        self.search_limiter = make_limiter("searches", protection.searches_per_minute, *shared)
        self.auth_limiter = make_limiter("auth-failures", protection.auth_failures_per_minute,
                                         *shared)
        self.metrics_allow = observability.parse_allow(server.container.config.get(
            "METRICS_ALLOW"))

    def __call__(self, environ, start_response):
        too_large = read_whole_body(environ, self.protection.body_timeout_seconds)
        request = ClinicRequest(environ, shallow=True)
        started = time.monotonic()
        request_id = tracing.accept(request.headers.get(tracing.HEADER))
        tracing.bind(request_id)  # this green thread's log lines (the access log too)
        environ[tracing.ENVIRON_KEY] = request_id
        cors = {}
        preflight = request.path.startswith("/api/v1") and request.method == "OPTIONS"
        credentials = bool(request.headers.get("Authorization") or request.args.get("token"))
        if request.path == "/metrics":
            response = (observability.metrics_response(self.amqp_uri)
                        if observability.metrics_allowed(
                            request.remote_addr, request.headers.get("X-Forwarded-For"),
                            self.metrics_allow)
                        else http_exception_response(NoSuchRoute()))
        elif preflight:
            cors = cors_headers(request.headers.get("Origin"), self.cors_origins, True)
            response = Response(status=204)
        else:
            if request.path.startswith("/api/v1"):
                cors = cors_headers(request.headers.get("Origin"), self.cors_origins, False)
            response = too_large or self.respond(request, environ, credentials)
        response.headers.extend(cors)
        response.headers[tracing.HEADER] = request_id
        if not preflight:
            personal = security.carries_personal_data(request.method, request.path, credentials)
            response.headers.update(security.security_headers(response.headers,
                                                              personal=personal))
        observability.observe(environ.get(observability.ROUTE_KEY, observability.UNMATCHED),
                              request.method, response.status_code, time.monotonic() - started)
        return response(environ, start_response)

    def respond(self, request: Request, environ, credentials: bool = False) -> Response:
        try:
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise_payload_too_large()
            address = security.client_address(request.remote_addr,
                                              request.headers.get("X-Forwarded-For"),
                                              self.protection.trusted_proxies)
            environ["clinic.client_address"] = address
            limiter = (self.limiter if request.method == "POST" else self.search_limiter
                       if security.expensive(request.path) else None)
            wait = limiter.check(address) if limiter else 0.0
            if not wait and credentials:  # guessing tokens: failures are counted below
                wait = self.auth_limiter.check(address, cost=0)
            if wait:
                return rate_limited(wait)
            provider, values = self.url_map.bind_to_environ(environ).match()
            route = getattr(provider, "route", None)
            environ[observability.ROUTE_KEY] = route.path if route else provider.url
            request.path_values = values
            response = provider.handle_request(request)
            if credentials and response.status_code == 401:
                self.auth_limiter.check(address)
            return response
        except HTTPException as exc:
            return http_exception_response(exc)


# What is read and dropped of an oversized body so that the client, still sending, can read
# its 413 (closing on unread data resets the connection); beyond it the connection is closed.
DRAIN_BYTES = 1024 * 1024


def read_whole_body(environ, timeout: float) -> Response | None:
    """Read the request body now, whole, within ``timeout`` seconds: a chunked body has no
    Content-Length to refuse it by, and werkzeug would cut it at 64 KiB without a word. The
    body is put back as a plain stream; over 64 KiB is a 413, too slow a 408."""
    chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if not chunked and declared <= 0:
        return None
    stream = environ["wsgi.input"]
    parts, size, complete = [], 0, False
    try:
        with eventlet.Timeout(timeout):
            size, complete = _read_into(stream, parts, MAX_BODY_BYTES + 1)
            if size > MAX_BODY_BYTES:
                _, complete = _read_into(stream, None, DRAIN_BYTES)
    except eventlet.Timeout:
        _close_after(environ)
        return error_response(408, "request_timeout", "The body did not arrive in time.")
    except (OSError, ValueError):  # a broken chunked encoding, a client gone
        _close_after(environ)
        return error_response(400, "invalid_request", "The chunked body is malformed.")
    if size > MAX_BODY_BYTES:
        if not complete:
            _close_after(environ)
        return http_exception_response(_payload_too_large())
    data = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)
    return None


def _read_into(stream, parts: list[bytes] | None, limit: int) -> tuple[int, bool]:
    """Read up to ``limit`` bytes (kept in ``parts``, or dropped); (bytes read, reached end)."""
    size = 0
    while size < limit:
        part = stream.read(min(limit - size, 65536))
        if not part:
            return size, True
        if parts is not None:
            parts.append(part)
        size += len(part)
    return size, False


def _close_after(environ) -> None:
    close = environ.get("clinic.close_connection")
    if close:
        close()


def _payload_too_large() -> HTTPException:
    from werkzeug.exceptions import RequestEntityTooLarge

    return RequestEntityTooLarge()


def raise_payload_too_large() -> None:
    raise _payload_too_large()


class AccessLog:
    """eventlet's logger for the access log and its errors, with every line made safe first:
    request lines keep no query string (manage links carry tokens there) and no feed secret."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def info(self, message: str, *args) -> None:
        self.logger.info(security.loggable(str(message)), *args)

    def debug(self, message: str, *args) -> None:
        self.logger.debug(security.loggable(str(message)), *args)

    def error(self, message: str, *args) -> None:
        self.logger.error(security.loggable(str(message)), *args)

    def write(self, message: str) -> None:
        self.info(message.rstrip("\n"))


class ClinicProtocol(HttpOnlyProtocol):
    """nameko's HTTP protocol, with a deadline on the request head: a connection that keeps
    idle, or sends its request line and headers a byte at a time (slowloris), is closed after
    ``idle_timeout`` seconds however often it sends something."""

    def handle_one_request(self):
        self._head_deadline = eventlet.Timeout(self.server.idle_timeout)
        try:
            super().handle_one_request()
        except eventlet.Timeout as timeout:
            if timeout is not self._head_deadline:
                raise
            self.close_connection = 1
        finally:
            self._head_deadline.cancel()

    def get_environ(self):
        self._head_deadline.cancel()  # the head is in: the request has its own deadlines now
        environ = super().get_environ()
        environ["clinic.close_connection"] = self._close_after_answer
        return environ

    def _close_after_answer(self) -> None:
        self.close_connection = 1

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        # http.server writes its own errors (a malformed request line) straight to stderr.
        self.server.log.info(format % args)


class ApiServer(WebServer):
    def get_wsgi_app(self):
        return ApiWsgiApp(self)

    def context_data_from_headers(self, request) -> dict[str, str]:
        """The request's id goes to the worker's context data, so every RPC carries it."""
        return {tracing.REQUEST_ID: request.environ[tracing.ENVIRON_KEY]}

    def get_wsgi_server(self, sock, wsgi_app, *args, **kwargs):
        # eventlet writes a large reply as headers, then body; with Nagle on, the body waits
        # ~40 ms for the client's delayed ACK. Accepted sockets inherit this from the listener.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        protection = wsgi_app.protection
        server = wsgi.Server(sock, sock.getsockname(), wsgi_app, protocol=ClinicProtocol,
                             debug=False, log=AccessLog(logging.getLogger("nameko.web.server")),
                             socket_timeout=protection.idle_timeout_seconds)
        server.idle_timeout = protection.idle_timeout_seconds
        return server


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
    except RecursionError:  # 64 KiB of "[" nests deeper than any request of ours
        raise InvalidRequest.field("body", "The body nests too deeply.") from None
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
