"""Dates in the merchant's zone: relative ranges, boundaries in +05:30 / +05:45 zones, DST days, labels."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from query_svc import dates
from query_svc.errors import InvalidQuery
from query_svc.model import DateSpec, PreviousPeriod

KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
NEW_YORK = ZoneInfo("America/New_York")


def test_kolkata_today_starts_at_1830_utc_the_day_before() -> None:
    # 2026-03-10 18:29:59 UTC is 23:59:59 in Kolkata on the 10th; one second later it is the 11th.
    before = datetime(2026, 3, 10, 18, 29, 59, tzinfo=UTC)
    after = before + timedelta(seconds=1)
    r_before = dates.resolve_range(DateSpec("today", "today"), KOLKATA, before)
    r_after = dates.resolve_range(DateSpec("today", "today"), KOLKATA, after)
    assert r_before.start_date == date(2026, 3, 10)
    assert r_after.start_date == date(2026, 3, 11)
    assert r_after.start_time == datetime(2026, 3, 10, 18, 30, tzinfo=UTC)
    assert r_after.end_time == datetime(2026, 3, 11, 18, 30, tzinfo=UTC)


def test_kolkata_yesterday_at_the_boundary() -> None:
    now = datetime(2026, 3, 10, 18, 30, tzinfo=UTC)  # 00:00 on the 11th in Kolkata
    r = dates.resolve_range(DateSpec("yesterday", "yesterday"), KOLKATA, now)
    assert (r.start_date, r.end_date) == (date(2026, 3, 10), date(2026, 3, 10))
    assert r.start_time == datetime(2026, 3, 9, 18, 30, tzinfo=UTC)
    assert r.end_time == now
    # the same instant is still the 10th in UTC: "yesterday" there is the 9th
    assert dates.resolve_range(DateSpec("yesterday", "yesterday"), ZoneInfo("UTC"), now).start_date == date(2026, 3, 9)


def test_kathmandu_days_start_at_quarter_past() -> None:
    r = dates.resolve_range(DateSpec("2026-05-01", "2026-05-01"), KATHMANDU, datetime(2026, 6, 1, tzinfo=UTC))
    assert r.start_time == datetime(2026, 4, 30, 18, 15, tzinfo=UTC)
    assert r.end_time - r.start_time == timedelta(hours=24)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", date(2026, 3, 11)),
        ("yesterday", date(2026, 3, 10)),
        ("0daysAgo", date(2026, 3, 11)),
        ("7daysAgo", date(2026, 3, 4)),
        ("30daysAgo", date(2026, 2, 9)),
        ("2024-02-29", date(2024, 2, 29)),
        (" 2026-01-05 ", date(2026, 1, 5)),
    ],
)
def test_resolve_date(text: str, expected: date) -> None:
    assert dates.resolve_date(text, date(2026, 3, 11)) == expected


@pytest.mark.parametrize("text", ["", "tomorrow", "-1daysAgo", "7 daysAgo", "2026-02-30", "2026/01/05", "1999-12-31"])
def test_bad_dates_are_invalid_and_say_what_is_accepted(text: str) -> None:
    with pytest.raises(InvalidQuery):
        dates.resolve_date(text, date(2026, 3, 11))


def test_start_after_end_and_too_long_ranges_are_invalid() -> None:
    now = datetime(2026, 3, 11, tzinfo=UTC)
    with pytest.raises(InvalidQuery, match="after"):
        dates.resolve_range(DateSpec("today", "yesterday"), KOLKATA, now)
    with pytest.raises(InvalidQuery, match="maximum"):
        dates.resolve_range(DateSpec("2000-01-01", "2026-01-01"), KOLKATA, now)
    with pytest.raises(InvalidQuery, match="required"):
        dates.resolve_range(DateSpec("", "today"), KOLKATA, now)


def test_dst_days_are_23_and_25_hours_and_hour_labels_follow_the_wall_clock() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    spring = dates.resolve_range(DateSpec("2026-03-08", "2026-03-08"), NEW_YORK, now)
    fall = dates.resolve_range(DateSpec("2026-11-01", "2026-11-01"), NEW_YORK, now)
    assert spring.end_time - spring.start_time == timedelta(hours=23)
    assert fall.end_time - fall.start_time == timedelta(hours=25)
    spring_hours = dates.time_buckets(spring, "dateHour", NEW_YORK)
    assert len(spring_hours) == 23
    assert "2026030802" not in spring_hours  # 02:00-03:00 does not exist that day
    fall_hours = dates.time_buckets(fall, "dateHour", NEW_YORK)
    assert len(fall_hours) == 24  # the repeated 01:00 hour is one label
    assert fall_hours[:3] == ("2026110100", "2026110101", "2026110102")


def test_previous_period_has_the_same_length_and_ends_the_day_before() -> None:
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)
    primary = dates.resolve_range(DateSpec("7daysAgo", "yesterday"), KOLKATA, now)
    previous = dates.resolve_comparison(PreviousPeriod(), primary, KOLKATA, now)
    assert primary.days == previous.days == 7
    assert previous.end_date == primary.start_date - timedelta(days=1)
    explicit = dates.resolve_comparison(DateSpec("2025-03-04", "2025-03-10"), primary, KOLKATA, now)
    assert (explicit.start_date, explicit.end_date) == (date(2025, 3, 4), date(2025, 3, 10))


def test_labels() -> None:
    assert dates.date_label(date(2026, 1, 5)) == "20260105"
    assert dates.month_label(date(2026, 1, 5)) == "202601"
    # ISO weeks start on Monday; 2027-01-01 (a Friday) belongs to week 53 of 2026, 2025-12-29 to week 1 of 2026
    assert dates.week_label(date(2027, 1, 1)) == "202653"
    assert dates.week_label(date(2025, 12, 29)) == "202601"
    assert dates.week_label(date(2026, 1, 4)) == "202601"  # a Sunday: still the week that began on Monday the 29th
    assert dates.week_label(date(2026, 1, 5)) == "202602"
    assert dates.hour_label(datetime(2026, 1, 4, 18, 30, tzinfo=UTC), KOLKATA) == "2026010500"


def test_week_and_month_buckets_cover_the_range_once_each() -> None:
    r = dates.resolve_range(DateSpec("2026-01-28", "2026-02-10"), KOLKATA, datetime(2026, 3, 1, tzinfo=UTC))
    assert dates.time_buckets(r, "week", KOLKATA) == ("202605", "202606", "202607")
    assert dates.time_buckets(r, "month", KOLKATA) == ("202601", "202602")
    assert len(dates.time_buckets(r, "date", KOLKATA)) == 14
    assert len(dates.time_buckets(r, "dateHour", KOLKATA)) == 14 * 24
