"""aggregator.timezones: local hour/day windows of a reporting zone, vectorized, equal to the model's definitions."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.timezones import (
    US_PER_HOUR,
    day_bounds_us,
    day_of_number,
    from_us,
    hour_window_index,
    hour_window_starts,
    local_day_numbers,
    local_hour_starts_us,
    number_of_day,
    to_us,
    utc_offsets_us,
    zone_info,
)
from gnomon.rollups.model import day_window, hour_window_start

ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe", "America/St_Johns")


def _us(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return to_us(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def test_kolkata_and_kathmandu_hours_start_at_half_and_quarter_past_utc() -> None:
    times = np.array([_us(2026, 5, 1, 10, 29, 59), _us(2026, 5, 1, 10, 30), _us(2026, 5, 1, 11, 14)], dtype=np.int64)
    kolkata = [from_us(int(x)) for x in local_hour_starts_us(times, "Asia/Kolkata")]
    assert kolkata == [datetime(2026, 5, 1, 9, 30, tzinfo=UTC), *[datetime(2026, 5, 1, 10, 30, tzinfo=UTC)] * 2]
    kathmandu = [from_us(int(x)) for x in local_hour_starts_us(times, "Asia/Kathmandu")]
    assert kathmandu == [
        datetime(2026, 5, 1, 10, 15, tzinfo=UTC),
        datetime(2026, 5, 1, 10, 15, tzinfo=UTC),
        datetime(2026, 5, 1, 10, 15, tzinfo=UTC),
    ]
    assert from_us(day_bounds_us(date(2026, 5, 1), "Asia/Kolkata")[0]) == datetime(2026, 4, 30, 18, 30, tzinfo=UTC)
    assert from_us(day_bounds_us(date(2026, 5, 1), "Asia/Kathmandu")[0]) == datetime(2026, 4, 30, 18, 15, tzinfo=UTC)


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25), (date(2026, 6, 1), 24)])
def test_new_york_dst_days_have_23_and_25_hour_windows(day: date, hours: int) -> None:
    starts = hour_window_starts(day, "America/New_York")
    assert len(starts) == hours
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(starts))
    start, end = day_window(day, "America/New_York")
    assert starts[0] == start and starts[-1] + timedelta(hours=1) == end
    # the windows of a dense grid of instants are exactly these
    grid = np.arange(to_us(start), to_us(end), 60_000_000, dtype=np.int64)
    index, unique = hour_window_index(grid, "America/New_York")
    assert [from_us(int(u)) for u in unique] == starts
    assert np.array_equal(unique[index], local_hour_starts_us(grid, "America/New_York"))


def test_repeated_fall_back_hour_is_two_windows() -> None:
    # 2026-11-01 01:30 EDT = 05:30 UTC and 01:30 EST = 06:30 UTC: same wall clock, two windows
    times = np.array([_us(2026, 11, 1, 5, 30), _us(2026, 11, 1, 6, 30)], dtype=np.int64)
    starts = [from_us(int(x)) for x in local_hour_starts_us(times, "America/New_York")]
    assert starts == [datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)]


def test_transition_inside_a_utc_hour_is_exact() -> None:
    # Lord Howe leaves DST (+11 -> +10:30) at 02:00 local = 2026-04-04 15:00 UTC; St John's (-2:30/-3:30) too
    for zone in ("Australia/Lord_Howe", "America/St_Johns"):
        base = _us(2026, 4, 4, 0) if zone.startswith("Australia") else _us(2026, 11, 1, 0)
        times = base + np.arange(0, 48 * US_PER_HOUR, 60_000_000 * 7, dtype=np.int64)
        expected = [to_us(hour_window_start(from_us(int(t)), zone)) for t in times]
        assert local_hour_starts_us(times, zone).tolist() == expected
        offsets = [from_us(int(t)).astimezone(zone_info(zone)).utcoffset() // timedelta(microseconds=1) for t in times]  # type: ignore[operator]
        assert utc_offsets_us(times, zone).tolist() == offsets


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.lists(st.integers(_us(1990, 1, 1), _us(2040, 1, 1)), min_size=1, max_size=40),
)
def test_vectorized_windows_equal_the_model(zone: str, instants: list[int]) -> None:
    times = np.asarray(instants, dtype=np.int64)
    starts = local_hour_starts_us(times, zone)
    assert starts.tolist() == [to_us(hour_window_start(from_us(t), zone)) for t in instants]
    days = local_day_numbers(times, zone)
    assert [day_of_number(int(d)) for d in days] == [from_us(t).astimezone(zone_info(zone)).date() for t in instants]
    index, unique = hour_window_index(times, zone)
    assert np.array_equal(unique[index], starts) and np.all(np.diff(unique) > 0)


def test_day_numbers_and_errors() -> None:
    assert day_of_number(number_of_day(date(2026, 3, 8))) == date(2026, 3, 8)
    assert number_of_day(date(1970, 1, 2)) == 1
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        zone_info("Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="naive"):
        to_us(datetime(2026, 1, 1))  # noqa: DTZ001
    assert utc_offsets_us(np.zeros(0, dtype=np.int64), "UTC").size == 0
    index, unique = hour_window_index(np.zeros(0, dtype=np.int64), "UTC")
    assert index.size == 0 and unique.size == 0
