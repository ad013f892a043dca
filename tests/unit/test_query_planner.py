"""The planner: which cube answers a set of dimensions, which grain covers which part of a range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aggregator.cubes import DEFAULT_CUBES
from gnomon.rollups import Grain, day_window
from query_svc.errors import Incompatible
from query_svc.model import And, InList, MatchType, Or, StringMatch
from query_svc.planner import Pushdown, Segment, choose_cube, columns_of, pushdown_dims, segments

KOLKATA = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("dimensions", "cube", "rolled_up"),
    [
        ((), "total", ()),
        (("date",), "total", ()),
        (("dateHour", "week"), "total", ()),
        (("pagePath",), "page", ()),
        (("country",), "country", ()),
        (("country", "region"), "region", ()),
        (("region",), "region", ("country_name",)),  # rolled up from the smallest session-scoped superset
        (("city",), "city", ("country_name", "region")),
        (("deviceCategory", "country"), "country_device", ()),
        (("sessionSource",), "source_medium", ("medium",)),
        (("sessionSourceMedium",), "source_medium", ()),
        (("sessionSource", "sessionMedium"), "source_medium", ()),
        (("deviceCategory", "pagePath"), "page_device", ()),
        (("sessionDefaultChannelGroup", "deviceCategory"), "channel_device", ()),
        (("eventName", "date"), "event_name", ()),
    ],
)
def test_choose_cube(dimensions: tuple[str, ...], cube: str, rolled_up: tuple[str, ...]) -> None:
    choice = choose_cube(DEFAULT_CUBES, columns_of(dimensions))
    assert choice.cube.name == cube
    assert choice.rolled_up == rolled_up
    assert bool(choice.note) == bool(rolled_up)


@pytest.mark.parametrize(
    "dimensions",
    [
        ("pagePath", "eventName"),
        ("eventName", "deviceCategory"),  # event-scoped cubes are never rolled up (page_device is not used)
        ("country", "browser"),
        ("pagePath", "country"),
    ],
)
def test_incompatible_combinations_say_which_sets_are_answerable(dimensions: tuple[str, ...]) -> None:
    with pytest.raises(Incompatible) as info:
        choose_cube(DEFAULT_CUBES, columns_of(dimensions))
    assert "{deviceCategory, pagePath}" in str(info.value)
    assert info.value.field == "dimensions"


def _days(zone: ZoneInfo, first: date, last: date) -> tuple[datetime, datetime]:
    return day_window(first, zone)[0], day_window(last, zone)[1]


def test_whole_days_read_day_rows_only() -> None:
    start, end = _days(KOLKATA, date(2026, 1, 1), date(2026, 1, 30))
    assert segments(start, end, KOLKATA, hourly=False) == [Segment(Grain.DAY, start, end)]


def test_hourly_reads_hour_rows_only() -> None:
    start, end = _days(KOLKATA, date(2026, 1, 1), date(2026, 1, 30))
    assert segments(start, end, KOLKATA, hourly=True) == [Segment(Grain.HOUR, start, end)]


def test_partial_days_read_hour_rows_at_the_edges() -> None:
    midnight1, _ = day_window(date(2026, 1, 2), KOLKATA)
    midnight2, _ = day_window(date(2026, 1, 4), KOLKATA)
    start = midnight1 - timedelta(hours=5)
    end = midnight2 + timedelta(hours=3)
    assert segments(start, end, KOLKATA, hourly=False) == [
        Segment(Grain.HOUR, start, midnight1),
        Segment(Grain.DAY, midnight1, midnight2),
        Segment(Grain.HOUR, midnight2, end),
    ]


def test_less_than_a_day_reads_hours_and_empty_ranges_read_nothing() -> None:
    midnight, _ = day_window(date(2026, 1, 2), KOLKATA)
    start, end = midnight + timedelta(hours=2), midnight + timedelta(hours=9)
    assert segments(start, end, KOLKATA, hourly=False) == [Segment(Grain.HOUR, start, end)]
    assert segments(end, start, KOLKATA, hourly=False) == []


def test_dst_days_are_whole_days() -> None:
    start, end = _days(NEW_YORK, date(2026, 3, 7), date(2026, 3, 9))
    assert segments(start, end, NEW_YORK, hourly=False) == [Segment(Grain.DAY, start, end)]
    assert end - start == timedelta(hours=71)


def test_pushdown_only_when_every_cube_dimension_is_pinned_exactly() -> None:
    page = DEFAULT_CUBES.get("page")
    exact = StringMatch("pagePath", MatchType.EXACT, "/a", case_sensitive=True)
    assert pushdown_dims(page, exact) == Pushdown((("/a",),))
    assert pushdown_dims(page, InList("pagePath", ("/b", "/a"), case_sensitive=True)) == Pushdown((("/a",), ("/b",)))
    assert pushdown_dims(page, StringMatch("pagePath", MatchType.CONTAINS, "/a", True)) is None
    assert pushdown_dims(page, Or((exact, exact))) is None
    assert pushdown_dims(page, None) is None
    both = And((exact, InList("pagePath", ("/a", "/c"), True)))
    assert pushdown_dims(page, both) == Pushdown((("/a",),))
    country_device = DEFAULT_CUBES.get("country_device")
    pinned = And(
        (
            InList("country", ("India", "Nepal"), True),
            StringMatch("deviceCategory", MatchType.EXACT, "mobile", True),
        )
    )
    assert pushdown_dims(country_device, pinned) == Pushdown((("India", "mobile"), ("Nepal", "mobile")))
    assert pushdown_dims(country_device, pinned.items[0]) is None  # device not pinned
    assert pushdown_dims(DEFAULT_CUBES.get("total"), exact) is None


def test_a_case_insensitive_pin_folds_every_pinned_value() -> None:
    """One case-insensitive pin makes the read fold case: all pinned values lower-cased (a superset of the
    matching rows, narrowed by the report's filter)."""
    page = DEFAULT_CUBES.get("page")
    assert pushdown_dims(page, StringMatch("pagePath", MatchType.EXACT, "/A")) == Pushdown((("/a",),), True)
    assert pushdown_dims(page, InList("pagePath", ("/B", "/a"))) == Pushdown((("/a",), ("/b",)), True)
    mixed = And((InList("pagePath", ("/A", "/c"), True), StringMatch("pagePath", MatchType.EXACT, "/a")))
    assert pushdown_dims(page, mixed) == Pushdown((("/a",),), True)
    country_device = DEFAULT_CUBES.get("country_device")
    pinned = And((InList("country", ("India",), True), StringMatch("deviceCategory", MatchType.EXACT, "Mobile")))
    assert pushdown_dims(country_device, pinned) == Pushdown((("india", "mobile"),), True)


def test_segments_are_utc() -> None:
    start, end = _days(KOLKATA, date(2026, 1, 1), date(2026, 1, 1))
    (segment,) = segments(start, end, KOLKATA, hourly=False)
    assert segment.start == datetime(2025, 12, 31, 18, 30, tzinfo=UTC)
