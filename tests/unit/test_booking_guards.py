"""The pure rules of issue #16's booking findings (services/booking/guards.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from clinic.access import Caller
from clinic.errors import InvalidRequest, RateLimited, TokenExpired
from gateway.entrypoints import response_for_exception
from services.booking import guards

END = datetime(2027, 3, 2, 10, 50, tzinfo=UTC)


@pytest.mark.parametrize("key", ["a" * 16, "x" * 255, "req-2b7e1516-28ae-d2a6-abf7", "!~" * 8])
def test_keys_of_16_to_255_visible_characters_pass(key):
    guards.check_idempotency_key(key)


@pytest.mark.parametrize("key", ["", "a", "a" * 15, "a" * 256, "sixteen chars ok",
                                 "tab\there-0123456", "é" * 16, "line\nbreak-01234567"])
def test_other_keys_are_a_400(key):
    with pytest.raises(InvalidRequest) as refused:
        guards.check_idempotency_key(key)
    assert refused.value.details["fields"][0]["field"] == "Idempotency-Key"


def test_a_key_belongs_to_one_principal_and_says_nothing_of_who():
    owners = [guards.key_owner(Caller(kind="admin")),
              guards.key_owner(Caller(kind="therapist", therapist_id="t1")),
              guards.key_owner(Caller(kind="therapist", therapist_id="t2")),
              guards.key_owner(Caller(kind="manage", token="mng_a")),
              guards.key_owner(Caller(kind="manage", token="mng_b")),
              guards.key_owner(Caller(), "203.0.113.5"),
              guards.key_owner(Caller(), "198.51.100.7")]
    assert len(set(owners)) == len(owners)
    assert guards.key_owner(Caller(), "203.0.113.5") == owners[-2]  # stable for one client
    assert all("203.0.113.5" not in owner and len(owner) == 64 for owner in owners)


def test_the_fourth_live_hold_is_refused_with_a_retry_time():
    guards.check_live_holds(2, 3)
    with pytest.raises(RateLimited) as refused:
        guards.check_live_holds(3, 3)
    assert refused.value.code == "rate_limited"
    assert refused.value.details["retry_after_seconds"] > 0


def test_an_email_quota():
    guards.check_email_quota(9, 10, "sessions")
    with pytest.raises(RateLimited):
        guards.check_email_quota(10, 10, "sessions")


def test_a_manage_token_expires_the_given_days_after_the_last_session():
    guards.check_not_expired(END, END + timedelta(days=90) - timedelta(seconds=1), 90)
    with pytest.raises(TokenExpired) as expired:
        guards.check_not_expired(END, END + timedelta(days=90), 90)
    assert expired.value.code == "token_expired"


def test_a_refusal_by_quota_is_a_429_with_retry_after():
    with pytest.raises(RateLimited) as refused:
        guards.check_live_holds(3, 3)
    response = response_for_exception(refused.value)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(guards.HOLD_RETRY_SECONDS)
    assert response.json["error"]["code"] == "rate_limited"
