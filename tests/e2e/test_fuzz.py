"""Schemathesis against the live gateway: no 5xx, and every response as /openapi.json says.

It runs the whole system (with the demo clinic, so slots and course options have data to work
on) and the schemathesis command line with every check but one, as the admin so that protected
routes are exercised beyond their 401. The one left out, positive_data_acceptance, expects every
schema-valid request to succeed; but some rules of the contract cannot be written in JSON Schema
(an end after its start, a session type that exists, `from` before `to`), and their 400s are
right.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_the_api_matches_its_openapi_document_under_fuzzing(clinic_factory, tmp_path, backend):
    clinic = clinic_factory(backend, CLINIC_DEMO="1")
    schemathesis = Path(sys.executable).parent / "schemathesis"
    # A body generated past its maxLength can also be over the gateway's 64 KiB: refused with
    # 413 before it is read, which is a rejection too (schemathesis' list lacks it).
    config = tmp_path / "schemathesis.toml"
    config.write_text('[checks.negative_data_rejection]\nexpected-statuses = ["400", "401", '
                      '"403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]\n')
    result = subprocess.run(
        [str(schemathesis), "--config-file", str(config), "run", clinic.url("/openapi.json"),
         "--checks", "all",
         "--exclude-checks", "positive_data_acceptance",
         "--max-examples", "25", "--seed", "20261126", "--request-timeout", "15",
         "--header", f"Authorization: Bearer {clinic.env['CLINIC_ADMIN_TOKEN']}",
         "--report", "junit", "--report-dir", str(tmp_path / "schemathesis")],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


# Shapes that broke the clinic once (issue #16): line breaks and separators in names, a list
# where one email address goes, dates in the year 9999 (and 0001), deep JSON, long chunked
# bodies. Each is sent into every field of every route of /openapi.json that takes input.
HOSTILE_TEXT = ("Eve\nBcc: x@example.org", "Eve\vE", "Eve\u2028E", "Eve\u0085E", "Eve\x1b[2J",
                "eve@x.y,postmaster", "9999-12-31", "9999-12-31T23:00:00-05:00",
                "0001-01-01T00:30:00+01:00", "9999-10-01,9999-12-31")
IDS = {"id": "amelia-hart", "therapist_id": "amelia-hart"}


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        return _resolve(doc, schema)
    return schema


def _sample(doc: dict, schema: dict):
    """A plausible value of ``schema``: what the hostile one replaces a field of."""
    schema = _resolve(doc, schema)
    if "enum" in schema:
        return schema["enum"][0]
    kind, form = schema.get("type"), schema.get("format")
    if kind == "object":
        return {name: _sample(doc, prop) for name, prop in schema.get("properties", {}).items()
                if name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if form == "date-time":
        return "2027-03-02T10:00:00Z"
    if form == "date":
        return "2027-03-02"
    return {"email": "ann@example.org"}.get(schema.get("title", "").lower(), "amelia-hart")


def _fields(doc: dict, schema: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every field of a body, nested objects included (client.name, client.email)."""
    schema = _resolve(doc, schema)
    paths = []
    for name, prop in schema.get("properties", {}).items():
        paths.append((*prefix, name))
        if _resolve(doc, prop).get("type") == "object":
            paths += _fields(doc, prop, (*prefix, name))
    return paths


def _with(body: dict, path: tuple[str, ...], value) -> dict:
    copy = json.loads(json.dumps(body))
    target = copy
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value
    return copy


def _assert_refused_well(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}, what


def test_hostile_shapes_in_every_field_get_a_4xx_with_the_error_body(clinic_factory):
    clinic = clinic_factory("sqlite", CLINIC_DEMO="1")
    doc = requests.get(clinic.url("/openapi.json"), timeout=10).json()
    session = requests.Session()
    session.headers.update(clinic.admin)
    sent = 0
    for template, operations in doc["paths"].items():
        path = re.sub(r"{(\w+)}", lambda m: IDS.get(m.group(1), "nope"), template)
        for method, operation in operations.items():
            query = {p["name"]: _sample(doc, p["schema"]) for p in operation["parameters"]
                     if p["in"] == "query" and p.get("required")}
            for parameter in (p for p in operation["parameters"] if p["in"] == "query"):
                for value in HOSTILE_TEXT:
                    answer = session.request(method, clinic.url(path), timeout=30,
                                             params={**query, parameter["name"]: value})
                    _assert_refused_well(answer, f"{method} {template} ?{parameter['name']}")
                    sent += 1
            body_schema = (operation.get("requestBody", {}).get("content", {})
                           .get("application/json", {}).get("schema"))
            if body_schema is None:
                continue
            body = _sample(doc, body_schema)
            for field in _fields(doc, body_schema):
                for value in HOSTILE_TEXT:
                    answer = session.request(method, clinic.url(path), json=_with(body, field,
                                                                                  value),
                                             timeout=30)
                    _assert_refused_well(answer, f"{method} {template} {'.'.join(field)}")
                    sent += 1
            deep = session.request(method, clinic.url(path), data=b"[" * 65_000, timeout=30,
                                   headers={"Content-Type": "application/json"})
            assert deep.status_code == 400, f"{method} {template}: {deep.status_code}"
            long = session.request(method, clinic.url(path), timeout=30,
                                   data=iter([b"[" + b"0," * 20_000 + b"0]"] * 2),
                                   headers={"Content-Type": "application/json"})
            assert long.status_code == 413, f"{method} {template}: {long.status_code}"
            sent += 2
    assert sent > 300
