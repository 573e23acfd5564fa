"""The rule for extending a hold, without a database: once, only while it is live."""

from datetime import UTC, datetime, timedelta

import pytest

from clinic.errors import HoldExpired, InvalidState
from services.booking.hold_extension import extended_expiry

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def hold(status="held", minutes_left=3, sequence=0) -> dict:
    return {"status": status, "expires_at": NOW + timedelta(minutes=minutes_left),
            "sequence": sequence}


def test_a_live_hold_gets_another_hold_length_from_now():
    assert extended_expiry(hold(), NOW, 10) == NOW + timedelta(minutes=10)


@pytest.mark.parametrize(("row", "error"), [
    (hold(minutes_left=0), HoldExpired),
    (hold(status="expired", minutes_left=-5), HoldExpired),
    (hold(sequence=1), InvalidState),
    (hold(status="converted"), InvalidState),
    (hold(status="released"), InvalidState),
])
def test_an_ended_or_extended_hold_is_not_extended(row, error):
    with pytest.raises(error):
        extended_expiry(row, NOW, 10)
