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
                                        "notifications": True}

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
