"""Reading an outside calendar's busy times: the pure parser and expander, and address checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.availability.calendar_fetch import (
    FetchRefused,
    check_address,
    check_link,
    refused_reason,
)
from services.availability.outside_calendar import (
    BusySpan,
    FeedRefused,
    busy_spans,
    clashes,
    merge,
)

LONDON = "Europe/London"
FROM = datetime(2026, 10, 1, tzinfo=UTC)
TO = datetime(2026, 12, 1, tzinfo=UTC)


def feed(*events: str) -> bytes:
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//outside//EN",
                        *events, "END:VCALENDAR", ""])
    return body.encode()


def event(uid: str, *lines: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260901T000000Z",
                        "SUMMARY:Private matter", *lines, "END:VEVENT"])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def starts(spans: list[BusySpan]) -> list[str]:
    return [s.start.strftime("%Y-%m-%d %H:%M") for s in spans]


WEEKLY_TUESDAY = event("weekly", "DTSTART;TZID=Europe/London:20261013T100000",
                       "DTEND;TZID=Europe/London:20261013T110000",
                       "RRULE:FREQ=WEEKLY;COUNT=4")


def test_a_weekly_event_keeps_its_wall_clock_across_the_october_change():
    spans = busy_spans(feed(WEEKLY_TUESDAY), LONDON, FROM, TO)
    # 10:00 in London: 09:00 UTC in summer time, 10:00 UTC after 25 October.
    assert starts(spans) == ["2026-10-13 09:00", "2026-10-20 09:00", "2026-10-27 10:00",
                             "2026-11-03 10:00"]
    assert all(s.end - s.start == utc("2026-01-01T01:00") - utc("2026-01-01T00:00")
               for s in spans)


def test_exdate_drops_an_occurrence_and_recurrence_id_moves_one():
    moved = event("weekly", "RECURRENCE-ID;TZID=Europe/London:20261027T100000",
                  "DTSTART;TZID=Europe/London:20261029T140000",
                  "DTEND;TZID=Europe/London:20261029T153000")
    series = WEEKLY_TUESDAY.replace("RRULE:FREQ=WEEKLY;COUNT=4",
                                    "RRULE:FREQ=WEEKLY;COUNT=4\r\n"
                                    "EXDATE;TZID=Europe/London:20261020T100000")
    spans = busy_spans(feed(series, moved), LONDON, FROM, TO)
    assert starts(spans) == ["2026-10-13 09:00", "2026-10-29 14:00", "2026-11-03 10:00"]
    assert spans[1].end == utc("2026-10-29T15:30")


def test_rdate_adds_an_occurrence():
    series = WEEKLY_TUESDAY.replace("COUNT=4", "COUNT=1") + ""
    series = series.replace("RRULE:FREQ=WEEKLY;COUNT=1",
                            "RRULE:FREQ=WEEKLY;COUNT=1\r\nRDATE;TZID=Europe/London:20261111T080000")
    assert starts(busy_spans(feed(series), LONDON, FROM, TO)) == ["2026-10-13 09:00",
                                                                  "2026-11-11 08:00"]


def test_a_cancelled_occurrence_of_a_series_blocks_nothing():
    cancelled = event("weekly", "RECURRENCE-ID;TZID=Europe/London:20261020T100000",
                      "DTSTART;TZID=Europe/London:20261020T100000",
                      "DTEND;TZID=Europe/London:20261020T110000", "STATUS:CANCELLED")
    spans = busy_spans(feed(WEEKLY_TUESDAY, cancelled), LONDON, FROM, TO)
    assert "2026-10-20 09:00" not in starts(spans)
    assert len(spans) == 3


def test_transparent_and_cancelled_events_block_nothing():
    spans = busy_spans(feed(
        event("free", "DTSTART:20261014T090000Z", "DTEND:20261014T100000Z", "TRANSP:TRANSPARENT"),
        event("off", "DTSTART:20261015T090000Z", "DTEND:20261015T100000Z", "STATUS:CANCELLED"),
        event("busy", "DTSTART:20261016T090000Z", "DTEND:20261016T100000Z", "TRANSP:OPAQUE"),
    ), LONDON, FROM, TO)
    assert spans == [BusySpan(utc("2026-10-16T09:00"), utc("2026-10-16T10:00"))]


def test_floating_times_are_read_in_the_therapists_zone():
    body = feed(event("floating", "DTSTART:20261110T090000", "DTEND:20261110T100000"))
    assert busy_spans(body, "America/New_York", FROM, TO) == [
        BusySpan(utc("2026-11-10T14:00"), utc("2026-11-10T15:00"))]
    assert busy_spans(body, LONDON, FROM, TO) == [
        BusySpan(utc("2026-11-10T09:00"), utc("2026-11-10T10:00"))]


def test_an_all_day_event_blocks_the_whole_day_in_the_therapists_zone():
    one_day = event("day", "DTSTART;VALUE=DATE:20261014")  # no DTEND: one day
    two_days = event("days", "DTSTART;VALUE=DATE:20261120", "DTEND;VALUE=DATE:20261122")
    spans = busy_spans(feed(one_day, two_days), LONDON, FROM, TO)
    assert spans == [BusySpan(utc("2026-10-13T23:00"), utc("2026-10-14T23:00")),  # summer time
                     BusySpan(utc("2026-11-20T00:00"), utc("2026-11-22T00:00"))]


def test_all_day_on_the_day_the_clocks_go_back_lasts_25_hours():
    spans = busy_spans(feed(event("d", "DTSTART;VALUE=DATE:20261025")), LONDON, FROM, TO)
    assert spans == [BusySpan(utc("2026-10-24T23:00"), utc("2026-10-26T00:00"))]


def test_an_endless_rule_is_expanded_only_up_to_the_window():
    endless = event("endless", "DTSTART:20200106T080000Z", "DTEND:20200106T083000Z",
                    "RRULE:FREQ=WEEKLY")
    spans = busy_spans(feed(endless), LONDON, FROM, TO)
    assert spans[0].start == utc("2026-10-05T08:00")
    assert spans[-1].start == utc("2026-11-30T08:00")
    assert len(spans) == 9


def test_a_feed_over_the_occurrence_cap_is_refused():
    minutely = event("flood", "DTSTART:20261001T000000Z", "DURATION:PT30S",
                     "RRULE:FREQ=MINUTELY")
    with pytest.raises(FeedRefused, match="more than 100 events"):
        busy_spans(feed(minutely), LONDON, FROM, TO, cap=100)


def test_a_file_that_is_not_a_calendar_is_refused():
    with pytest.raises(FeedRefused, match="iCalendar"):
        busy_spans(b"<html>Sign in</html>", LONDON, FROM, TO)


def test_overlapping_spans_merge_and_a_booking_they_overlap_is_a_clash():
    a = BusySpan(utc("2026-10-14T09:00"), utc("2026-10-14T10:00"))
    b = BusySpan(utc("2026-10-14T09:30"), utc("2026-10-14T11:00"))
    c = BusySpan(utc("2026-10-15T09:00"), utc("2026-10-15T10:00"))
    merged = merge([c, b, a])
    assert merged == [BusySpan(a.start, b.end), c]
    found = clashes([("inside", utc("2026-10-14T10:30"), utc("2026-10-14T11:20")),
                     ("after", utc("2026-10-14T11:00"), utc("2026-10-14T11:50")),
                     ("next-day", utc("2026-10-15T08:30"), utc("2026-10-15T09:20"))], merged)
    assert [(f.booking_id, f.busy) for f in found] == [("inside", merged[0]),
                                                       ("next-day", c)]


@pytest.mark.parametrize("url, message", [
    ("ftp://calendar.example/a.ics", "Only http and https"),
    ("webcal://calendar.example/a.ics", "https:// instead of webcal"),
    ("https://me:secret@calendar.example/a.ics", "user name or password"),
    ("https:///a.ics", "no host"),
    ("https://calendar.example/a b.ics", "spaces"),
    ("https://calendar.example/" + "a" * 2000, "at most 2000"),
])
def test_addresses_that_are_never_fetched(url, message):
    with pytest.raises(FetchRefused, match=message):
        check_address(url)


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"), ("192.168.0.7", "private"), ("172.16.5.5", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fd00:ec2::254", "private"),
    ("100.64.0.1", "private"), ("0.0.0.0", "private"), ("224.0.0.1", "private"),
    ("93.184.215.14", None), ("2606:4700::6810:84e5", None),
])
def test_which_ip_addresses_are_refused(address, reason):
    found = refused_reason(address)
    assert (found is None) if reason is None else (reason in found)


def test_a_host_that_resolves_to_loopback_is_refused_unless_private_is_allowed():
    with pytest.raises(FetchRefused, match="loopback"):
        check_link("http://localhost:8080/a.ics", allow_private=False)
    assert check_link(" http://localhost:8080/a.ics ", allow_private=True) == (
        "http://localhost:8080/a.ics")
