"""The OpenAPI 3.1 document, written from the routes' own pydantic models, and its HTML page."""

from __future__ import annotations

import html
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from gateway.entrypoints import ROUTES, Route
from gateway.schemas import ErrorBody
from gateway.security import expensive, style_csp

REF = "#/components/schemas/{model}"
_ERROR_TEXT = {400: "Invalid request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
               409: "Conflict", 413: "Payload too large", 429: "Rate limited",
               503: "Service unavailable"}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, annotation: Any) -> dict[str, Any]:
        schema = TypeAdapter(annotation).json_schema(ref_template=REF)
        self.components.update(schema.pop("$defs", {}))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            self.components[annotation.__name__] = schema
            return {"$ref": REF.format(model=annotation.__name__)}
        return schema


def _statuses_every_such_route_may_give(route: Route) -> set[int]:
    """Failures the gateway itself produces around a route, whatever the route does."""
    statuses = set()
    if route.access != "public":
        statuses |= {401, 403}
    if route.method in ("POST", "PUT"):
        statuses.add(413)
    if route.method == "POST":
        statuses.add(429)
    if route.access != "public" or (route.method == "GET" and expensive(route.path)):
        statuses.add(429)  # failed authentications, and costly searches, are limited too
    if route.tag != "operations" or route.path == "/ready":
        statuses.add(503)  # a backend service did not answer in time
    return statuses


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"{(\w+)}", route.path)]
    if route.query is not None:
        query_schema = route.query.model_json_schema(ref_template=REF)
        schemas.components.update(query_schema.pop("$defs", {}))
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "schema": prop, **({"description": prop["description"]}
                                                  if "description" in prop else {})})
    operation: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": re.sub(r"\W+", "_", f"{route.method} {route.path}").strip("_").lower(),
        "parameters": parameters,
    }
    if route.access != "public":
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Access: {route.access}."
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": schemas.of(route.body)}}}
    reply: dict[str, Any] = {"description": "Success"}
    if route.reply is not None:
        reply["content"] = {route.content_type: {"schema": schemas.of(route.reply)}}
    responses: dict[str, Any] = {str(route.status): reply}
    if route.conditional:
        responses["304"] = {"description": "Not modified since the ETag or date given"}
    error_ref = schemas.of(ErrorBody)
    for status in sorted({400, *route.errors, *_statuses_every_such_route_may_give(route)}):
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Error"),
                                  "content": {"application/json": {"schema": error_ref}}}
    operation["responses"] = responses
    return operation


def document(public_base_url: str) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, Any] = {}
    for route in ROUTES:
        if route.extra.get("hidden"):
            continue
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clinic scheduling API", "version": "1.0.0",
                 "description": "Book Dynamic Interpersonal Therapy sessions and courses."},
        "servers": [{"url": public_base_url}],
        "paths": paths,
        "components": {"schemas": schemas.components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }


DOCS_STYLE = ("body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
              "padding:0 1rem;color:#1d2a33}section{border-top:1px solid #ddd;padding:.5rem 0}"
              ".m{display:inline-block;min-width:4.5rem;color:#0b5d7a}.a,.s{color:#555}")
DOCS_CSP = style_csp(DOCS_STYLE)  # its one inline style, by hash; nothing else loads


def docs_page(doc: dict[str, Any]) -> str:
    """A readable reference of ``doc``, rendered here: no script, no CDN."""
    sections = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            params = "".join(
                f"<li><code>{html.escape(p['name'])}</code> ({p['in']}"
                f"{', required' if p.get('required') else ''})</li>" for p in op["parameters"])
            statuses = ", ".join(op["responses"])
            sections.append(
                f"<section><h3><span class=m>{method.upper()}</span> <code>{html.escape(path)}"
                f"</code></h3><p>{html.escape(op['summary'])}</p>"
                f"<p class=a>{html.escape(op.get('description', 'Access: public.'))}</p>"
                f"{'<ul>' + params + '</ul>' if params else ''}"
                f"<p class=s>Responses: {statuses}</p></section>")
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(doc['info']['title'])}</title>"
        f"<style>{DOCS_STYLE}</style>"
        f"<h1>{html.escape(doc['info']['title'])}</h1><p>{html.escape(doc['info']['description'])}"
        " The machine-readable document is <a href=/openapi.json>/openapi.json</a>.</p>"
        + "".join(sections) + "</html>"
    )
