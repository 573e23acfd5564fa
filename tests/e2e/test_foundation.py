"""The whole system, started as `make run` starts it, answered over HTTP."""

import pytest
import requests

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def clinic(request, clinic_factory):
    return clinic_factory(request.param)


def test_health_ready_and_errors_are_json(clinic):
    assert requests.get(clinic.url("/health")).json() == {"status": "ok"}

    ready = requests.get(clinic.url("/ready"))
    assert ready.status_code == 200
    assert ready.json()["services"] == {"availability": True, "booking": True,
                                        "notifications": True, "progress": True}

    missing = requests.get(clinic.url("/no/such/route"))
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/json")
    assert missing.json()["error"]["code"] == "not_found"

    wrong_method = requests.delete(clinic.url("/health"))
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"

    huge = requests.post(clinic.url("/health"), data=b"x" * (64 * 1024 + 1))
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"


def test_openapi_document_and_docs_page(clinic):
    doc = requests.get(clinic.url("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    assert "/ready" in doc["paths"]
    page = requests.get(clinic.url("/docs"))
    assert page.headers["Content-Type"].startswith("text/html")
    assert "/ready" in page.text and "<script" not in page.text


def test_posts_are_rate_limited_per_address_and_cors_is_answered(clinic_factory, backend):
    clinic = clinic_factory(backend, RATE_LIMIT_PER_MINUTE="3",
                            CORS_ORIGINS="https://clinic.example")
    statuses = [requests.post(clinic.url("/api/v1/nothing")).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    limited = requests.post(clinic.url("/api/v1/nothing"))
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert requests.get(clinic.url("/health")).status_code == 200  # GETs are not limited

    preflight = requests.options(clinic.url("/api/v1/bookings"),
                                 headers={"Origin": "https://clinic.example"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://clinic.example"
    other = requests.get(clinic.url("/api/v1/nothing"), headers={"Origin": "https://x.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
