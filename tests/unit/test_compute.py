"""aggregator.compute.compute_day on hand-made merchant-days: windows, sessions, scopes, capping, currencies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aggregator import compute
from aggregator import frame as f
from aggregator.compute import OTHER, aggregate_day, compute_day
from aggregator.cubes import DEFAULT_CUBES, CubeSet
from aggregator.ground_truth import METRICS, as_dict, ground_truth
from aggregator.timezones import hour_window_starts, to_us
from gnomon.rollups.model import Grain, RollupRow
from gnomon.rollups.sketches import EMPTY_SKETCH, sketch_estimate

MERCHANT = "m-1"
KEY_EVENTS = frozenset({"purchase"})
COMPUTED_AT = datetime(2030, 1, 1, tzinfo=UTC)
NEVER_CLOSED = datetime(2000, 1, 1, tzinfo=UTC)  # every window provisional
ALL_CLOSED = datetime(2100, 1, 1, tzinfo=UTC)

DEFAULTS: dict[str, Any] = {
    f.MERCHANT_ID: MERCHANT,
    f.NAME: "page_view",
    f.CLIENT_ID: "c1",
    f.PAGE_PATH: "/",
    f.REVENUE_MICROS: 0,
    f.CURRENCY: "",
    f.IS_BOT: False,
    f.DEVICE_CATEGORY: "desktop",
    f.BROWSER: "Chrome",
    f.OS: "Windows",
    f.COUNTRY_NAME: "United States",
    f.REGION: "California",
    f.CITY: "San Francisco",
    f.SOURCE: "(direct)",
    f.MEDIUM: "(none)",
    f.CHANNEL: "Direct",
}

Key = tuple[str, str, int, tuple[str, ...]]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_events(*rows: dict[str, Any]) -> pd.DataFrame:
    """Derived events: each row gives `t` (aware datetime) and overrides of DEFAULTS; event ids e000, e001..."""
    records = []
    for i, row in enumerate(rows):
        record = {**DEFAULTS, f.EVENT_ID: f"e{i:03d}", **{k: v for k, v in row.items() if k != "t"}}
        record[f.EVENT_TIME_US] = to_us(row["t"])
        records.append(record)
    return pd.DataFrame.from_records(records)


def run(
    events: pd.DataFrame,
    day: date,
    zone: str = "UTC",
    *,
    cubes: CubeSet = DEFAULT_CUBES,
    closed_before: datetime = ALL_CLOSED,
    currency: str = "USD",
    max_values: int = 5_000,
) -> list[RollupRow]:
    return compute_day(
        events,
        merchant_id=MERCHANT,
        zone=zone,
        day=day,
        version=3,
        computed_at=COMPUTED_AT,
        key_events=KEY_EVENTS,
        closed_before=closed_before,
        cubes=cubes,
        currency=currency,
        max_values=max_values,
    )


def metrics_of(rows: list[RollupRow]) -> dict[Key, dict[str, int]]:
    """Rows keyed like `ground_truth.as_dict`, users as rounded HLL estimates."""
    out: dict[Key, dict[str, int]] = {}
    for row in rows:
        k, m = row.key, row.metrics
        key = (k.cube, k.grain.value, to_us(k.window_start), k.dims)
        assert key not in out, f"duplicate row {key}"
        values = {name: getattr(m, name) for name in METRICS}
        values["users"] = round(sketch_estimate(m.users))
        values["new_users"] = round(sketch_estimate(m.new_users))
        out[key] = values
    return out


def pick(rows: list[RollupRow], cube: str, grain: str = "hour") -> dict[tuple[datetime, tuple[str, ...]], Any]:
    return {(r.key.window_start, r.key.dims): r.metrics for r in rows if r.key.cube == cube and r.key.grain == grain}


def assert_matches_truth(
    rows: list[RollupRow], events: pd.DataFrame, zone: str, *, cubes: CubeSet = DEFAULT_CUBES, **kw: Any
) -> None:
    truth = as_dict(ground_truth(events, zone=zone, key_events=KEY_EVENTS, currency="USD", cubes=cubes, **kw))
    assert metrics_of(rows) == truth


# ----------------------------------------------------------------------------------------------- sessions


def test_session_crossing_hours_counts_once_in_its_start_hour_with_full_duration() -> None:
    ev = make_events(
        {"t": utc(2026, 5, 1, 10, 50), f.PAGE_PATH: "/a"},
        {"t": utc(2026, 5, 1, 11, 5), f.PAGE_PATH: "/b"},
        {"t": utc(2026, 5, 1, 11, 20), f.PAGE_PATH: "/b"},
    )
    rows = run(ev, date(2026, 5, 1))
    total = pick(rows, "total")
    ten, eleven = total[utc(2026, 5, 1, 10), ()], total[utc(2026, 5, 1, 11), ()]
    assert (ten.events, ten.sessions, ten.session_duration_ms, ten.engaged_sessions) == (1, 1, 30 * 60_000, 1)
    assert (eleven.events, eleven.sessions, eleven.session_duration_ms) == (2, 0, 0)
    day = pick(rows, "total", "day")[utc(2026, 5, 1), ()]
    assert (day.events, day.pageviews, day.sessions, day.bounces, day.session_duration_ms) == (3, 3, 1, 0, 1_800_000)
    # event scope: page /b is reached at 11:05 by a session that started at 10:50 -> counted in the 10:00 row
    page = pick(rows, "page")
    assert (page[utc(2026, 5, 1, 10), ("/b",)].events, page[utc(2026, 5, 1, 10), ("/b",)].sessions) == (0, 1)
    assert (page[utc(2026, 5, 1, 11), ("/b",)].events, page[utc(2026, 5, 1, 11), ("/b",)].sessions) == (2, 0)
    assert page[utc(2026, 5, 1, 10), ("/b",)].users == EMPTY_SKETCH
    assert_matches_truth(rows, ev, "UTC")


def test_sessions_split_at_local_midnight() -> None:
    zone = "Asia/Kolkata"  # local midnight of 2026-05-02 = 2026-05-01 18:30 UTC
    before = {"t": utc(2026, 5, 1, 18, 20)}
    after = {"t": utc(2026, 5, 1, 18, 40)}  # 20 minutes later, but the next local day
    ev = make_events(before, after)
    with pytest.raises(ValueError, match="outside local day"):
        run(ev, date(2026, 5, 1), zone)
    first = run(ev.iloc[:1], date(2026, 5, 1), zone)
    second = run(ev.iloc[1:], date(2026, 5, 2), zone)
    assert pick(first, "total", "day")[utc(2026, 4, 30, 18, 30), ()].sessions == 1
    assert pick(second, "total", "day")[utc(2026, 5, 1, 18, 30), ()].sessions == 1
    truth = as_dict(ground_truth(ev, zone=zone, key_events=KEY_EVENTS, currency="USD", cubes=DEFAULT_CUBES))
    assert metrics_of(first + second) == truth  # the reference splits at midnight too


def test_thirty_minute_rule_at_30_00_and_30_01() -> None:
    start = utc(2026, 5, 1, 9)
    ev = make_events(
        {"t": start, f.CLIENT_ID: "exact"},
        {"t": start + timedelta(minutes=30), f.CLIENT_ID: "exact"},
        {"t": start, f.CLIENT_ID: "over"},
        {"t": start + timedelta(minutes=30, seconds=1), f.CLIENT_ID: "over"},
    )
    rows = run(ev, date(2026, 5, 1))
    assert pick(rows, "total")[start, ()].sessions == 3
    assert pick(rows, "total")[start, ()].session_duration_ms == 30 * 60_000
    assert_matches_truth(rows, ev, "UTC")


def test_engaged_and_bounce_rules() -> None:
    t = utc(2026, 5, 1, 9)
    ev = make_events(
        {"t": t, f.CLIENT_ID: "one_pageview"},
        {"t": t, f.CLIENT_ID: "two_pageviews"},
        {"t": t + timedelta(seconds=1), f.CLIENT_ID: "two_pageviews"},
        {"t": t, f.CLIENT_ID: "key_event", f.NAME: "purchase"},
        {"t": t, f.CLIENT_ID: "ten_seconds", f.NAME: "scroll"},
        {"t": t + timedelta(seconds=10), f.CLIENT_ID: "ten_seconds", f.NAME: "scroll"},
        {"t": t, f.CLIENT_ID: "short", f.NAME: "scroll"},
        {"t": t + timedelta(seconds=9, microseconds=999_999), f.CLIENT_ID: "short", f.NAME: "scroll"},
    )
    total = pick(run(ev, date(2026, 5, 1)), "total")[t, ()]
    assert (total.sessions, total.engaged_sessions, total.bounces, total.key_events) == (5, 3, 2, 1)
    assert total.session_duration_ms == 1_000 + 10_000 + 9_999


def test_bots_are_excluded_from_every_metric() -> None:
    human = {"t": utc(2026, 5, 1, 9, 10)}
    bots = [{"t": utc(2026, 5, 1, h), f.IS_BOT: True, f.CLIENT_ID: "bot"} for h in (9, 15)]
    rows = run(make_events(human, *bots), date(2026, 5, 1))
    assert metrics_of(rows) == metrics_of(run(make_events(human), date(2026, 5, 1)))
    assert {r.key.window_start for r in rows if r.key.grain is Grain.HOUR} == {utc(2026, 5, 1, 9)}
    assert run(make_events(*bots), date(2026, 5, 1)) == []


# ----------------------------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("zone", "hour_start", "day_start"),
    [
        ("Asia/Kolkata", utc(2026, 5, 1, 10, 30), utc(2026, 4, 30, 18, 30)),
        ("Asia/Kathmandu", utc(2026, 5, 1, 10, 15), utc(2026, 4, 30, 18, 15)),
    ],
)
def test_half_and_quarter_hour_zones(zone: str, hour_start: datetime, day_start: datetime) -> None:
    ev = make_events({"t": utc(2026, 5, 1, 10, 40)}, {"t": utc(2026, 5, 1, 11, 10)})
    rows = run(ev, date(2026, 5, 1), zone)
    hours = pick(rows, "total")
    assert hours[hour_start, ()].events == 2 and len(hours) == 1
    assert set(pick(rows, "total", "day")) == {(day_start, ())}
    assert_matches_truth(rows, ev, zone)


@pytest.mark.parametrize(("day", "n_windows"), [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25)])
def test_new_york_dst_days(day: date, n_windows: int) -> None:
    windows = hour_window_starts(day, "America/New_York")
    assert len(windows) == n_windows
    ev = make_events(*({"t": w + timedelta(minutes=59), f.CLIENT_ID: f"c{i}"} for i, w in enumerate(windows)))
    rows = run(ev, day, "America/New_York")
    hours = pick(rows, "total")
    assert sorted(ws for ws, _ in hours) == windows
    assert all(m.events == 1 and m.sessions == 1 for m in hours.values())
    if n_windows == 25:  # 01:00 EDT (05:00 UTC) and 01:00 EST (06:00 UTC) are two windows
        assert (utc(2026, 11, 1, 5), ()) in hours and (utc(2026, 11, 1, 6), ()) in hours
    day_rows = pick(rows, "total", "day")
    assert list(day_rows) == [(windows[0], ())] and day_rows[windows[0], ()].events == n_windows
    assert_matches_truth(rows, ev, "America/New_York")


def test_provisional_follows_closed_before() -> None:
    ev = make_events({"t": utc(2026, 5, 1, 9, 5)}, {"t": utc(2026, 5, 1, 10, 5)})
    rows = run(ev, date(2026, 5, 1), closed_before=utc(2026, 5, 1, 10))
    flags = {(r.key.grain, r.key.window_start): r.provisional for r in rows if r.key.cube == "total"}
    assert flags == {
        (Grain.HOUR, utc(2026, 5, 1, 9)): False,  # ends 10:00, not after closed_before
        (Grain.HOUR, utc(2026, 5, 1, 10)): True,
        (Grain.DAY, utc(2026, 5, 1)): True,
    }
    assert all(r.provisional for r in run(ev, date(2026, 5, 1), closed_before=NEVER_CLOSED))
    assert all(r.key.version == 3 and r.computed_at == COMPUTED_AT and r.key.merchant_id == MERCHANT for r in rows)


# ----------------------------------------------------------------------------------------------- metrics


def test_revenue_only_in_the_merchant_currency() -> None:
    t = utc(2026, 5, 1, 9)
    ev = make_events(
        {"t": t, f.NAME: "purchase", f.REVENUE_MICROS: 5_000_000, f.CURRENCY: "USD"},
        {"t": t, f.NAME: "purchase", f.REVENUE_MICROS: 7_000_000, f.CURRENCY: "EUR", f.CLIENT_ID: "c2"},
        {"t": t, f.NAME: "refund", f.REVENUE_MICROS: -1_000_000, f.CURRENCY: "USD", f.CLIENT_ID: "c3"},
    )
    total = pick(run(ev, date(2026, 5, 1)), "total")[t, ()]
    assert (total.revenue_micros, total.key_events, total.events) == (4_000_000, 2, 3)
    eur = pick(run(ev, date(2026, 5, 1), currency="EUR"), "total")[t, ()]
    assert eur.revenue_micros == 7_000_000


def test_new_users_come_from_first_visit_events() -> None:
    t = utc(2026, 5, 1, 9)
    ev = make_events(
        {"t": t, f.CLIENT_ID: "new", f.NAME: "first_visit", f.PAGE_PATH: "/landing"},
        {"t": t + timedelta(seconds=1), f.CLIENT_ID: "new", f.PAGE_PATH: "/landing"},
        {"t": t + timedelta(seconds=2), f.CLIENT_ID: "new", f.PAGE_PATH: "/other"},
        {"t": t, f.CLIENT_ID: "returning", f.PAGE_PATH: "/landing"},
    )
    rows = run(ev, date(2026, 5, 1))
    total = pick(rows, "total")[t, ()]
    assert (round(sketch_estimate(total.users)), round(sketch_estimate(total.new_users))) == (2, 1)
    page = pick(rows, "page")
    assert round(sketch_estimate(page[t, ("/landing",)].new_users)) == 1
    assert page[t, ("/other",)].new_users == EMPTY_SKETCH
    assert_matches_truth(rows, ev, "UTC")


def test_session_scope_uses_the_first_event_and_event_scope_every_value() -> None:
    t = utc(2026, 5, 1, 9)
    ev = make_events(
        {"t": t + timedelta(seconds=1), f.DEVICE_CATEGORY: "mobile", f.PAGE_PATH: "/b"},
        {"t": t, f.DEVICE_CATEGORY: "desktop", f.PAGE_PATH: "/a"},
        {"t": t + timedelta(seconds=2), f.DEVICE_CATEGORY: "mobile", f.PAGE_PATH: "/a"},
    )
    rows = run(ev, date(2026, 5, 1))
    device = pick(rows, "device")
    assert (device[t, ("desktop",)].sessions, device[t, ("desktop",)].events) == (1, 1)
    assert (device[t, ("mobile",)].sessions, device[t, ("mobile",)].events) == (0, 2)
    page = pick(rows, "page")
    assert (page[t, ("/a",)].sessions, page[t, ("/a",)].events, page[t, ("/b",)].sessions) == (1, 2, 1)
    assert_matches_truth(rows, ev, "UTC")


def test_ties_are_broken_by_event_id_whatever_the_input_order() -> None:
    t = utc(2026, 5, 1, 9)
    ev = make_events(
        {"t": t, f.DEVICE_CATEGORY: "tablet", f.CLIENT_ID: "x"},
        {"t": t, f.DEVICE_CATEGORY: "mobile", f.CLIENT_ID: "x"},
        {"t": t, f.DEVICE_CATEGORY: "desktop", f.CLIENT_ID: "y"},
        {"t": t + timedelta(minutes=1), f.DEVICE_CATEGORY: "mobile", f.CLIENT_ID: "y"},
    )
    rows = run(ev, date(2026, 5, 1))
    assert pick(rows, "device")[t, ("tablet",)].sessions == 1  # e000 < e001
    shuffled = ev.iloc[[3, 1, 2, 0]].reset_index(drop=True)
    assert set(run(shuffled, date(2026, 5, 1))) == set(rows)  # identical rows, sketch bytes included


# ----------------------------------------------------------------------------------------------- (other)


def test_values_beyond_the_cap_become_other() -> None:
    t = utc(2026, 5, 1, 9)
    spec = [("/a", "u1", 3), ("/b", "u2", 2), ("/c", "u3", 1), ("/d", "u3", 1), ("/e", "u4", 2)]
    rows_in: list[dict[str, Any]] = []
    for path, client, n in spec:
        rows_in += [{"t": t + timedelta(seconds=len(rows_in)), f.PAGE_PATH: path, f.CLIENT_ID: client}] * n
    ev = make_events(*rows_in)
    rows = run(ev, date(2026, 5, 1), max_values=2)
    page = pick(rows, "page")
    # kept: /a (3 events), then /b and /e tie at 2: dims ascending keeps /b
    assert set(page) == {(t, ("/a",)), (t, ("/b",)), (t, (OTHER,))}
    other = page[t, (OTHER,)]
    assert (other.events, other.pageviews, round(sketch_estimate(other.users))) == (4, 4, 2)
    assert other.sessions == 2  # u3's one session reached /c and /d: counted once (event scope), u4 once
    city = pick(rows, "city")
    assert set(city) == {(t, ("United States", "California", "San Francisco"))}  # one value: nothing capped
    assert_matches_truth(rows, ev, "UTC", max_values=2)


def test_cap_on_a_session_scoped_pair_cube_and_a_real_other_value() -> None:
    t = utc(2026, 5, 1, 9)
    rows_in = [
        {"t": t, f.CLIENT_ID: f"c{i}", f.COUNTRY_NAME: country, f.DEVICE_CATEGORY: device}
        for i, (country, device) in enumerate(
            [("FR", "mobile"), ("FR", "mobile"), ("DE", "desktop"), (OTHER, "tablet"), ("IT", "tv")]
        )
    ]
    rows_in.append({"t": t, f.CLIENT_ID: "c9", f.COUNTRY_NAME: OTHER, f.DEVICE_CATEGORY: OTHER})
    rows_in.append({"t": t, f.CLIENT_ID: "c8", f.COUNTRY_NAME: OTHER, f.DEVICE_CATEGORY: OTHER})
    ev = make_events(*rows_in)
    rows = run(ev, date(2026, 5, 1), max_values=2)
    pairs = pick(rows, "country_device")
    # the real ("(other)", "(other)") value has 2 events but folds into the "(other)" row
    assert set(pairs) == {(t, ("FR", "mobile")), (t, (OTHER, OTHER))}
    assert (pairs[t, (OTHER, OTHER)].events, pairs[t, (OTHER, OTHER)].sessions) == (5, 5)
    assert_matches_truth(rows, ev, "UTC", max_values=2)


# ----------------------------------------------------------------------------------------------- contract


def test_precondition_errors() -> None:
    ev = make_events({"t": utc(2026, 5, 1, 9)})
    with pytest.raises(ValueError, match="another merchant"):
        run(ev.assign(**{f.MERCHANT_ID: "m-2"}), date(2026, 5, 1))
    with pytest.raises(ValueError, match="missing column"):
        run(ev.drop(columns=[f.CITY]), date(2026, 5, 1))
    with pytest.raises(ValueError, match="outside local day"):
        run(ev, date(2026, 5, 2))
    with pytest.raises(ValueError, match="unknown IANA"):
        run(ev, date(2026, 5, 1), "Nowhere/City")
    with pytest.raises(ValueError, match="max_values"):
        run(ev, date(2026, 5, 1), max_values=0)
    with pytest.raises(ValueError, match="naive"):
        run(ev, date(2026, 5, 1), closed_before=datetime(2026, 1, 1))  # noqa: DTZ001
    assert run(ev.iloc[:0], date(2026, 5, 1)) == []


def test_missing_values_and_categoricals() -> None:
    t = utc(2026, 5, 1, 9)
    ev = make_events({"t": t, f.PAGE_PATH: None}, {"t": t, f.PAGE_PATH: "(not set)", f.CLIENT_ID: "c2"})
    categorical = ev.assign(**{f.BROWSER: ev[f.BROWSER].astype("category"), f.NAME: ev[f.NAME].astype("category")})
    rows = run(categorical, date(2026, 5, 1))
    assert pick(rows, "page")[t, ("(not set)",)].events == 2
    assert pick(rows, "browser")[t, ("Chrome",)].sessions == 2


def test_columns_and_rows_agree() -> None:
    ev = make_events({"t": utc(2026, 5, 1, 9)}, {"t": utc(2026, 5, 1, 12), f.CLIENT_ID: "c2"})
    rollups = aggregate_day(
        ev, merchant_id=MERCHANT, zone="UTC", day=date(2026, 5, 1), key_events=KEY_EVENTS, cubes=DEFAULT_CUBES,
        currency="USD",
    )  # fmt: skip
    rows = rollups.rows(version=3, computed_at=COMPUTED_AT, closed_before=ALL_CLOSED)
    assert len(rows) == len(rollups) == 14 * 3
    assert rows == run(ev, date(2026, 5, 1))
    assert {b.grain for b in rollups.blocks} == {Grain.HOUR, Grain.DAY}


def test_columns_written_by_write_columns_equal_rows_written_by_write(tmp_path: Path) -> None:
    from aggregator.derive import derive
    from bench.aggregate_compute import synthetic_day
    from gnomon.rollups.sqlite_store import SqliteRollupStore

    day, zone = date(2026, 3, 10), "America/New_York"
    ev = derive(synthetic_day(events=20_000, clients=2_000, pages=300, day=day, zone=zone, merchant_id=MERCHANT))
    rollups = aggregate_day(
        ev, merchant_id=MERCHANT, zone=zone, day=day, key_events=KEY_EVENTS, cubes=DEFAULT_CUBES, currency="USD",
        max_values=50,
    )  # fmt: skip
    stamp: dict[str, Any] = {
        "version": 2,
        "computed_at": COMPUTED_AT,
        "closed_before": datetime(2026, 3, 10, 18, tzinfo=UTC),
    }
    dumps = []
    span = (datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC))
    for name in ("rows", "columns"):
        store = SqliteRollupStore(tmp_path / f"{name}.sqlite3")
        try:
            if name == "rows":
                store.write(rollups.rows(**stamp))
            else:
                store.write_columns(rollups.columns(**stamp))
            with store._db.transaction() as conn:
                dumps.append(conn.execute("SELECT * FROM rollup_packs ORDER BY 1, 2, 3, 4, 5").fetchall())
            rows = [r for g in Grain for c in DEFAULT_CUBES.names for r in store.read(MERCHANT, c, g, *span, 2)]
            assert len(rows) == len(rollups)
        finally:
            store.close()
    assert {r.provisional for r in rows} == {False, True}  # provisional and closed windows both occur
    assert any(r.key.dims == ("(other)",) for r in rows)  # and capped values
    assert dumps[0] == dumps[1]  # byte for byte the same packs


def test_fallback_sketches_equal_the_vectorized_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    t0 = to_us(utc(2026, 5, 1))
    ev = make_events(
        *(
            {"t": utc(2026, 5, 1) + timedelta(microseconds=int(x)), f.CLIENT_ID: f"c{c}", f.PAGE_PATH: f"/p{p}"}
            for x, c, p in zip(
                rng.integers(0, 86_400_000_000, 3000), rng.integers(0, 900, 3000), rng.integers(0, 40, 3000),
                strict=True,
            )
        )
    )  # fmt: skip
    assert t0 <= int(ev[f.EVENT_TIME_US].min())
    cubes = DEFAULT_CUBES.select(["total", "page"])
    fast = run(ev, date(2026, 5, 1), cubes=cubes)
    fallback: Callable[[], None] = lambda: None  # noqa: E731
    monkeypatch.setattr(compute, "_hll_module", fallback)
    slow = run(ev, date(2026, 5, 1), cubes=cubes)
    assert metrics_of(fast) == metrics_of(slow)
    assert max(sketch_estimate(r.metrics.users) for r in slow) > 500  # dense HLL mode was exercised
