"""The pure erasure rules every service uses (clinic/privacy.py)."""

from clinic import privacy


def test_only_that_clients_documents_lose_the_client_and_what_they_wrote():
    ada = {"name": "Ada", "email": "Ada@Example.org", "phone": "1"}
    event = {"data": {"booking": {"id": "b1", "client": ada, "notes": "x", "cancel_reason": "y"},
                      "others": [{"client": {"name": "Bo", "email": "bo@example.org"},
                                  "notes": "kept"}]}}
    cleaned = privacy.scrub(event, privacy.has_email("ada@example.ORG "))
    booking = cleaned["data"]["booking"]
    assert booking["client"] == privacy.ERASED_CLIENT and booking["id"] == "b1"
    assert (booking["notes"], booking["cancel_reason"]) == (None, None)
    assert cleaned["data"]["others"] == event["data"]["others"]
    assert event["data"]["booking"]["client"] is ada  # the original is not changed
    assert not privacy.mentions(cleaned, "ada@example.org")
    assert privacy.mentions(event, "ADA@example.org")
    assert privacy.scrub(event, privacy.anyone)["data"]["others"][0]["client"]["name"] == \
        privacy.ERASED_NAME


def test_events_name_an_erased_client_by_a_hash_of_the_address():
    hashed = privacy.email_hash(" Ada@Example.org")
    assert hashed == privacy.email_hash("ada@example.org") and "example" not in hashed
