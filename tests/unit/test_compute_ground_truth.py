"""compute_day against the independent DuckDB reference (aggregator.ground_truth): a realistic derived day and
random small event sets (hypothesis). Counters must be equal; users within the HLL error bound."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import frame as f
from aggregator.cubes import DEFAULT_CUBES
from aggregator.derive import derive
from aggregator.ground_truth import as_dict, ground_truth
from aggregator.timezones import day_bounds_us
from bench.aggregate_compute import synthetic_day
from gnomon.rollups.sketches import SKETCH_LG_K
from tests.unit.test_compute import DEFAULTS, KEY_EVENTS, MERCHANT, metrics_of, run

RSE = 1.04 / math.sqrt(1 << SKETCH_LG_K)  # HLL relative standard error at lg_k 12: ~1.6 %
EXACT_BELOW = 100  # HLL coupon (list/set) mode: the rounded estimate is the exact count for small sets


def assert_close_to_truth(rows_metrics: dict[Any, dict[str, int]], truth: dict[Any, dict[str, int]]) -> None:
    assert rows_metrics.keys() == truth.keys()
    for key, expected in truth.items():
        got = rows_metrics[key]
        for name, value in expected.items():
            if name in ("users", "new_users"):
                if value < EXACT_BELOW:
                    assert got[name] == value, (key, name, got[name], value)
                else:
                    assert abs(got[name] - value) <= 3 * RSE * value + 1, (key, name, got[name], value)
            else:
                assert got[name] == value, (key, name, got[name], value)


@pytest.fixture(scope="module")
def derived_day() -> pd.DataFrame:
    raw = synthetic_day(
        events=20_000, clients=1_500, pages=300, day=date(2026, 11, 1), zone="America/New_York", merchant_id=MERCHANT
    )
    return derive(raw)


@pytest.mark.parametrize("max_values", [5_000, 25])
def test_synthetic_day_matches_the_reference(derived_day: pd.DataFrame, max_values: int) -> None:
    assert bool(derived_day[f.IS_BOT].any()) and (derived_day[f.NAME] == "first_visit").any()
    rows = run(derived_day, date(2026, 11, 1), "America/New_York", max_values=max_values)
    truth = as_dict(
        ground_truth(
            derived_day,
            zone="America/New_York",
            key_events=KEY_EVENTS,
            currency="USD",
            cubes=DEFAULT_CUBES,
            max_values=max_values,
        )
    )
    assert_close_to_truth(metrics_of(rows), truth)
    windows = {k[2] for k in truth if k[0] == "total" and k[1] == "hour"}
    assert len(windows) == 25  # the fall-back day
    if max_values == 25:
        assert any(k[3] == ("(other)",) for k in truth if k[0] == "page")
    assert max(v["users"] for v in truth.values()) > 500  # dense HLL sketches were compared too


ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York")
HYPO_CUBES = DEFAULT_CUBES.select(["total", "page", "device", "event_name", "country_device", "page_device"])


@st.composite
def merchant_days(draw: st.DrawFn) -> tuple[pd.DataFrame, str, date, int | None]:
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.sampled_from([date(2026, 3, 8), date(2026, 11, 1), date(2026, 6, 15)]))
    start_us, end_us = day_bounds_us(day, zone)
    n = draw(st.integers(1, 30))
    # times on a coarse grid (whole minutes, some exactly 30 min apart, some equal) plus rare microsecond offsets
    minutes = draw(st.lists(st.integers(0, (end_us - start_us) // 60_000_000 - 1), min_size=n, max_size=n))
    jitter = draw(st.lists(st.sampled_from([0, 0, 0, 1, 59_999_999]), min_size=n, max_size=n))
    records = []
    for i in range(n):
        name = draw(st.sampled_from(["page_view", "page_view", "scroll", "purchase", "first_visit"]))
        records.append(
            {
                **DEFAULTS,
                f.EVENT_ID: f"e{draw(st.integers(0, 10**6)):07d}-{i}",
                f.EVENT_TIME_US: start_us + minutes[i] * 60_000_000 + jitter[i],
                f.CLIENT_ID: draw(st.sampled_from(["a", "b", "c", "d"])),
                f.NAME: name,
                f.PAGE_PATH: draw(st.sampled_from(["/", "/x", "/y", None])),
                f.DEVICE_CATEGORY: draw(st.sampled_from(["desktop", "mobile"])),
                f.COUNTRY_NAME: draw(st.sampled_from(["India", "Nepal", "(other)"])),
                f.IS_BOT: draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans()),
                f.REVENUE_MICROS: draw(st.integers(-(10**6), 10**9)) if name == "purchase" else 0,
                f.CURRENCY: draw(st.sampled_from(["USD", "EUR"])) if name == "purchase" else "",
            }
        )
    cap = draw(st.sampled_from([None, 1, 2]))
    return pd.DataFrame.from_records(records), zone, day, cap


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(merchant_days())
def test_random_days_match_the_reference(case: tuple[pd.DataFrame, str, date, int | None]) -> None:
    events, zone, day, cap = case
    rows = run(events, day, zone, cubes=HYPO_CUBES, max_values=cap or 5_000)
    truth = ground_truth(events, zone=zone, key_events=KEY_EVENTS, currency="USD", cubes=HYPO_CUBES, max_values=cap)
    assert metrics_of(rows) == as_dict(truth)  # small sets: users exact too
    closed = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=400)
    assert all(not r.provisional for r in run(events, day, zone, cubes=HYPO_CUBES, closed_before=closed))
