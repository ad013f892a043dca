"""Rollup model, window helpers, sketches and CQL partition buckets (pure code, no engine)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnomon.rollups import (
    EMPTY_SKETCH,
    Grain,
    Metrics,
    RollupInvalid,
    RollupKey,
    RollupRow,
    day_window,
    hour_window_start,
    merge_sketches,
    sketch_estimate,
    sketch_of,
)
from gnomon.rollups.buckets import DEFAULT_WIDE_CUBES, BucketPolicy
from gnomon.rollups.model import ceil_second, restore_row

T0 = datetime(2026, 5, 1, 10, 30, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instants(first_year: int, last_year: int) -> st.SearchStrategy[datetime]:
    """UTC-aware instants with microseconds between two years."""
    lo = datetime(first_year, 1, 1, tzinfo=UTC) - EPOCH
    hi = datetime(last_year, 1, 1, tzinfo=UTC) - EPOCH
    return st.timedeltas(min_value=lo, max_value=hi).map(lambda d: EPOCH + d)


# -- model ---------------------------------------------------------------------------------------------------------


def test_key_normalises_to_utc_and_coerces() -> None:
    key = RollupKey("m1", "page", "hour", T0.astimezone(IST), ["/a"], 2)  # type: ignore[arg-type]
    assert key.grain is Grain.HOUR
    assert key.window_start == T0 and key.window_start.tzinfo is UTC
    assert key.dims == ("/a",)
    assert hash(key) == hash(RollupKey("m1", "page", Grain.HOUR, T0, ("/a",), 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"merchant_id": ""}, "merchant_id"),
        ({"cube": ""}, "cube"),
        ({"grain": "week"}, "grain"),
        ({"window_start": datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
        ({"window_start": T0 + timedelta(microseconds=5)}, "whole second"),
        ({"window_start": "2026-01-01"}, "datetime"),
        ({"dims": ("a", 1)}, "dims"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
    ],
)
def test_key_validation(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "merchant_id": "m1",
        "cube": "total",
        "grain": Grain.HOUR,
        "window_start": T0,
        "dims": (),
        "version": 1,
    }
    fields.update(kwargs)
    with pytest.raises(RollupInvalid, match=message):
        RollupKey(**fields)  # type: ignore[arg-type]


def test_metrics_validation() -> None:
    assert Metrics().users == EMPTY_SKETCH
    assert Metrics(revenue_micros=-5).revenue_micros == -5
    with pytest.raises(RollupInvalid, match="events"):
        Metrics(events=1.5)  # type: ignore[arg-type]
    with pytest.raises(RollupInvalid, match="64-bit"):
        Metrics(pageviews=2**63)
    with pytest.raises(RollupInvalid, match="bytes"):
        Metrics(users="abc")  # type: ignore[arg-type]


def test_row_truncates_computed_at_to_milliseconds() -> None:
    key = RollupKey("m1", "total", Grain.HOUR, T0)
    r = RollupRow(key, Metrics(), True, datetime(2026, 5, 1, 11, 0, 0, 123456, tzinfo=IST))
    assert r.computed_at == datetime(2026, 5, 1, 5, 30, 0, 123000, tzinfo=UTC)
    assert r.computed_at.tzinfo is UTC
    with pytest.raises(RollupInvalid):
        RollupRow(key, Metrics(), 1, T0)  # type: ignore[arg-type]


def test_restore_row_equals_validated_row() -> None:
    r = RollupRow(RollupKey("m1", "page", Grain.DAY, T0, ("/a",), 3), Metrics(1, 2, 3, 4, 5, 6, 7, 8), False, T0)
    m = r.metrics
    values = (m.events, m.pageviews, m.sessions, m.engaged_sessions, m.bounces, m.session_duration_ms,
              m.revenue_micros, m.key_events, m.users, m.new_users)  # fmt: skip
    assert restore_row("m1", "page", Grain.DAY, T0, ("/a",), 3, values, False, T0) == r


def test_ceil_second() -> None:
    assert ceil_second(T0) == T0
    assert ceil_second(T0 + timedelta(microseconds=1)) == T0 + timedelta(seconds=1)
    assert ceil_second(T0 - timedelta(microseconds=1)) == T0


# -- windows -------------------------------------------------------------------------------------------------------


def test_hour_windows_of_half_and_quarter_hour_zones() -> None:
    assert hour_window_start(datetime(2026, 5, 1, 10, 29, 59, tzinfo=UTC), "Asia/Kolkata") == datetime(
        2026, 5, 1, 9, 30, tzinfo=UTC
    )
    assert hour_window_start(datetime(2026, 5, 1, 10, 30, tzinfo=UTC), "Asia/Kolkata") == T0  # start inclusive
    assert hour_window_start(datetime(2026, 5, 1, 10, 14, tzinfo=UTC), "Asia/Kathmandu") == datetime(
        2026, 5, 1, 9, 15, tzinfo=UTC
    )
    assert hour_window_start(datetime(2026, 5, 1, 10, 59, tzinfo=UTC), "UTC") == datetime(2026, 5, 1, 10, tzinfo=UTC)


def test_day_windows_including_dst_days() -> None:
    assert day_window(date(2026, 3, 15), "Asia/Kolkata") == (
        datetime(2026, 3, 14, 18, 30, tzinfo=UTC),
        datetime(2026, 3, 15, 18, 30, tzinfo=UTC),
    )
    ny = ZoneInfo("America/New_York")
    start, end = day_window(date(2026, 3, 8), ny)
    assert end - start == timedelta(hours=23)
    start, end = day_window(date(2026, 11, 1), ny)
    assert end - start == timedelta(hours=25)
    hours = {hour_window_start(start + timedelta(minutes=m), ny) for m in range(0, 25 * 60, 10)}
    assert len(hours) == 25  # the repeated 01:00 hour is two windows
    # America/Santiago springs forward at midnight: the day starts at 01:00 local, the transition instant
    start, end = day_window(date(2026, 9, 6), "America/Santiago")
    assert (start, end - start) == (datetime(2026, 9, 6, 4, tzinfo=UTC), timedelta(hours=23))
    assert day_window(date(2026, 9, 5), "America/Santiago")[1] == start


@given(instants(1980, 2100), st.sampled_from(
    ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Europe/Berlin", "America/New_York", "Australia/Adelaide"]
))  # fmt: skip
def test_an_instant_lies_in_its_hour_window(instant: datetime, zone: str) -> None:
    start = hour_window_start(instant, zone)
    assert start <= instant < start + timedelta(hours=1)
    assert start.astimezone(ZoneInfo(zone)).minute == 0


# -- sketches ------------------------------------------------------------------------------------------------------


def test_merge_estimates_the_union_not_the_sum() -> None:
    a = sketch_of(range(0, 10_000))
    b = sketch_of(range(5_000, 15_000))
    merged = merge_sketches([a, b, EMPTY_SKETCH, b""])
    assert abs(merged.estimate - 15_000) <= 15_000 * 0.05
    assert abs(sketch_estimate(a) - 10_000) <= 10_000 * 0.05
    assert merge_sketches([]).estimate == 0
    assert sketch_estimate(b"") == 0
    assert sketch_estimate(sketch_of(["x", "x", "y"])) == pytest.approx(2, abs=0.01)
    assert len(sketch_of(range(100_000))) < 2200  # compact HLL_4


def test_merge_rejects_garbage() -> None:
    with pytest.raises(RollupInvalid, match="HLL"):
        merge_sketches([b"not a sketch"])
    whole = sketch_of(range(1000))
    for cut in (3, 100, len(whole) - 1):
        with pytest.raises(RollupInvalid, match="HLL"):
            sketch_estimate(whole[:cut])


# -- buckets -------------------------------------------------------------------------------------------------------


def test_bucket_spans() -> None:
    p = BucketPolicy()
    ws = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert "total" in DEFAULT_WIDE_CUBES and "page" not in DEFAULT_WIDE_CUBES
    assert p.bucket_of("total", Grain.HOUR, ws) == datetime(2026, 1, 31, tzinfo=UTC)
    assert p.bucket_of("page", Grain.HOUR, ws) == datetime(2026, 1, 31, 18, tzinfo=UTC)
    assert p.bucket_of("total", Grain.DAY, ws) == datetime(2026, 1, 1, tzinfo=UTC)
    assert p.bucket_of("page", Grain.DAY, ws) == datetime(2026, 1, 31, tzinfo=UTC)
    assert p.next_bucket("total", Grain.DAY, datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert list(p.buckets_between("total", Grain.DAY, ws, ws)) == []
    end = datetime(9999, 12, 31, 23, tzinfo=UTC)
    assert len(list(p.buckets_between("total", Grain.DAY, datetime(9999, 1, 1, tzinfo=UTC), end))) == 12


@given(
    instants(1990, 2090),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=200)),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.sampled_from(["total", "page"]),
    st.sampled_from(list(Grain)),
)
def test_buckets_between_covers_every_window_in_range(
    start: datetime, length: timedelta, where: float, cube: str, grain: Grain
) -> None:
    p = BucketPolicy()
    end = start + length
    buckets = list(p.buckets_between(cube, grain, start, end))
    assert buckets == sorted(set(buckets))
    if length:
        inside = start + length * where
        assert p.bucket_of(cube, grain, inside) in buckets


@pytest.mark.parametrize(("cube", "grain", "bound"), [("total", Grain.HOUR, 24), ("page", Grain.HOUR, 6),
                                                      ("total", Grain.DAY, 31), ("page", Grain.DAY, 2)])  # fmt: skip
def test_windows_per_bucket_are_bounded(cube: str, grain: Grain, bound: int) -> None:
    p = BucketPolicy()
    counts: dict[datetime, int] = {}
    for zone in ("Asia/Kolkata", "America/New_York", "Asia/Kathmandu"):
        for d in range(366):
            day = date(2026, 1, 1) + timedelta(days=d)
            lo, hi = day_window(day, zone)
            starts = (
                [lo]
                if grain is Grain.DAY
                else [lo + timedelta(hours=h) for h in range((hi - lo) // timedelta(hours=1))]
            )
            for s in starts:
                key = p.bucket_of(cube, grain, s)
                counts[key] = counts.get(key, 0) + 1
        assert max(counts.values()) <= bound
        counts.clear()
