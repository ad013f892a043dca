"""End to end: raw events -> derive -> compute_day -> embedded RollupStore -> QueryService over gRPC, checked
against the independent DuckDB reference over the raw events (`aggregator.ground_truth`) and plain pandas
distinct counts for users across days (the rollups hold HLL sketches: users within 3 standard errors)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aggregator import frame as f
from aggregator.compute import compute_day
from aggregator.cubes import DEFAULT_CUBES
from aggregator.derive import derive
from aggregator.ground_truth import as_dict, ground_truth
from aggregator.timezones import to_us
from bench.aggregate_compute import synthetic_day
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups import day_window
from gnomon.rollups.sketches import SKETCH_LG_K
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import query_pb2 as q
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import RunningQuery, bearer, running_query_server

ZONE = "Asia/Kolkata"
MERCHANT = "m-e2e"
CURRENCY = "INR"
KEY_EVENTS = frozenset({"purchase"})
DAYS = (date(2026, 1, 20), date(2026, 1, 21))
NOW = datetime(2026, 2, 1, tzinfo=UTC)
RSE = 1.04 / math.sqrt(1 << SKETCH_LG_K)
Truth = dict[tuple[str, str, int, tuple[str, ...]], dict[str, int]]


@dataclass
class World:
    events: pd.DataFrame  # derived, both days
    truth: Truth
    running: RunningQuery
    token: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("query_e2e")
    frames = [
        derive(
            synthetic_day(
                events=15_000,
                clients=1_200,
                pages=200,
                day=day,
                zone=ZONE,
                merchant_id=MERCHANT,
                currency=CURRENCY,
                seed=i,
            )
        )
        for i, day in enumerate(DAYS)
    ]
    store = SqliteRollupStore(tmp / "rollups.sqlite3", synchronous="OFF")
    registry = SqliteVersionRegistry(tmp / "rollups.sqlite3", synchronous="OFF")
    for day, frame in zip(DAYS, frames, strict=True):
        store.write(
            compute_day(
                frame, merchant_id=MERCHANT, zone=ZONE, day=day, version=1, computed_at=NOW, key_events=KEY_EVENTS,
                closed_before=NOW, cubes=DEFAULT_CUBES, currency=CURRENCY,
            )
        )  # fmt: skip
    events = pd.concat(frames, ignore_index=True)
    truth = as_dict(ground_truth(events, zone=ZONE, key_events=KEY_EVENTS, currency=CURRENCY, cubes=DEFAULT_CUBES))
    control = SqliteControlStore(tmp / "control.sqlite3")
    control.create_merchant("E2E", ZONE, CURRENCY, merchant_id=MERCHANT)
    token = control.create_key(MERCHANT, KeyKind.READ).secret
    telemetry = setup_telemetry(TelemetrySettings())
    settings = QuerySettings(common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp)}), port=0)
    deps = QueryDeps(store=store, registry=registry, control=control, telemetry=telemetry, clock=lambda: NOW)
    with running_query_server(settings, deps) as running:
        yield World(events, truth, running, token)
    telemetry.shutdown()
    control.close()
    registry.close()
    store.close()


def truth_sum(world: World, cube: str, grain: str, dims: tuple[str, ...] | None = None) -> dict[str, int]:
    """Counters of the reference summed over every window of both days (of one value of `dims`)."""
    out: dict[str, int] = defaultdict(int)
    for (c, g, _, d), metrics in world.truth.items():
        if c == cube and g == grain and (dims is None or d == dims):
            for name, value in metrics.items():
                out[name] += value
    return out


def real_events(world: World) -> pd.DataFrame:
    return world.events.loc[~world.events[f.IS_BOT].astype(bool)]


def metrics(row: q.Row, headers: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for header, value in zip(headers, row.metric_values, strict=True):
        kind = value.WhichOneof("value")
        assert kind is not None
        out[header.name] = getattr(value, kind)
    return out


def assert_users(got: int, exact: int) -> None:
    assert abs(got - exact) <= 3 * RSE * exact + 1, (got, exact)


COUNTER_METRICS = {
    "eventCount": "events",
    "screenPageViews": "pageviews",
    "sessions": "sessions",
    "engagedSessions": "engaged_sessions",
    "bounces": "bounces",
    "keyEvents": "key_events",
}


def test_totals_over_two_days(world: World) -> None:
    response = world.running.stub.Totals(
        q.TotalsRequest(
            date_range=q.DateRange(start_date=str(DAYS[0]), end_date=str(DAYS[1])),
            metrics=[*COUNTER_METRICS, "totalUsers", "newUsers", "totalRevenue", "averageSessionDuration"],
        ),
        metadata=bearer(world.token),
    )
    got = metrics(response.totals, response.metric_headers)
    reference = truth_sum(world, "total", "day")
    for metric, column in COUNTER_METRICS.items():
        assert got[metric] == reference[column], metric
    assert got["totalRevenue"] == f"{reference['revenue_micros'] / 1e6:.6f}"
    assert got["averageSessionDuration"] == pytest.approx(
        reference["session_duration_ms"] / 1000 / reference["sessions"]
    )
    real = real_events(world)
    assert_users(got["totalUsers"], real[f.CLIENT_ID].nunique())  # distinct over BOTH days, not a per-day sum
    assert_users(got["newUsers"], real.loc[real[f.NAME] == "first_visit", f.CLIENT_ID].nunique())


def test_hourly_series_of_one_day(world: World) -> None:
    response = world.running.stub.TimeSeries(
        q.TimeSeriesRequest(
            date_range=q.DateRange(start_date=str(DAYS[1]), end_date=str(DAYS[1])),
            metrics=["eventCount", "sessions", "totalUsers"],
            granularity=q.GRANULARITY_HOUR,
        ),
        metadata=bearer(world.token),
    )
    start, _ = day_window(DAYS[1], ZONE)
    assert len(response.rows) == 24
    for h, row in enumerate(response.rows):
        reference = world.truth.get(("total", "hour", to_us(start + timedelta(hours=h)), ()), defaultdict(int))
        got = metrics(row, response.metric_headers)
        assert (got["eventCount"], got["sessions"]) == (reference["events"], reference["sessions"]), h
        assert_users(got["totalUsers"], reference["users"])


def test_top_pages_over_two_days(world: World) -> None:
    response = world.running.stub.Breakdown(
        q.BreakdownRequest(
            date_range=q.DateRange(start_date=str(DAYS[0]), end_date=str(DAYS[1])),
            dimensions=["pagePath"],
            metrics=["screenPageViews", "sessions", "activeUsers"],
            limit=10,
        ),
        metadata=bearer(world.token),
    )
    per_page: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (cube, grain, _, dims), values in world.truth.items():
        if cube == "page" and grain == "day":
            for name, value in values.items():
                per_page[dims[0]][name] += value
    ranked = sorted(per_page, key=lambda p: (-per_page[p]["pageviews"], p))[:10]
    assert [r.dimension_values[0] for r in response.rows] == ranked
    real = real_events(world)
    users = real.groupby(f.PAGE_PATH)[f.CLIENT_ID].nunique()
    for row in response.rows:
        page = row.dimension_values[0]
        got = metrics(row, response.metric_headers)
        assert got["screenPageViews"] == per_page[page]["pageviews"]
        assert got["sessions"] == per_page[page]["sessions"]
        assert_users(got["activeUsers"], int(users[page]))


@pytest.mark.parametrize(
    ("dimension", "cube", "position"),
    [("country", "country", 0), ("deviceCategory", "device", 0), ("sessionSource", "source_medium", 0)],
)
def test_session_dimensions(world: World, dimension: str, cube: str, position: int) -> None:
    response = world.running.stub.Breakdown(
        q.BreakdownRequest(
            date_range=q.DateRange(start_date=str(DAYS[0]), end_date=str(DAYS[1])),
            dimensions=[dimension],
            metrics=["sessions", "engagedSessions", "eventCount"],
            limit=1000,
        ),
        metadata=bearer(world.token),
    )
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (c, grain, _, dims), values in world.truth.items():
        if c == cube and grain == "day":
            for name, value in values.items():
                expected[dims[position]][name] += value
    got = {r.dimension_values[0]: metrics(r, response.metric_headers) for r in response.rows}
    assert got == {
        k: {"sessions": v["sessions"], "engagedSessions": v["engaged_sessions"], "eventCount": v["events"]}
        for k, v in expected.items()
    }
    total = truth_sum(world, "total", "day")
    assert sum(v["sessions"] for v in got.values()) == total["sessions"]  # session scope: values sum to the total
