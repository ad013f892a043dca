"""Combining engine reports into one GA4 report (several date ranges, calendar dimensions, paging), checked
against a brute-force computation straight from the generated rollup rows. Real QueryEngine over an embedded
SQLite RollupStore in a temporary directory; no network."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, OrderBy, RunReportRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnomon.control import SqliteControlStore
from gnomon.rollups import Grain, day_window
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from query_svc.engine import EngineConfig, QueryEngine
from query_svc.errors import InvalidQuery
from query_svc.ga4.calendar import LABELS
from query_svc.ga4.run import run_report
from query_svc.ga4.translate import report_plan
from query_svc.testing import rollup_row

MERCHANT = "m-run"
FIRST = date(2026, 1, 27)
DAYS = [FIRST + timedelta(days=i) for i in range(12)]  # Tue 27 Jan .. Sat 7 Feb: a month and two week changes
COUNTRIES = ["Austria", "Brazil", "Chile", "Denmark", "Egypt", "France"]


@dataclass
class Data:
    engine: QueryEngine
    facts: dict[tuple[date, str], tuple[int, int]]  # (day, country) -> (sessions, events)
    small: QueryEngine  # the same stores, at most 3 rows per engine report


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    tmp: Path = tmp_path_factory.mktemp("ga4_run")
    store = SqliteRollupStore(tmp / "rollups.sqlite3")
    registry = SqliteVersionRegistry(tmp / "rollups.sqlite3")
    control = SqliteControlStore(tmp / "control.sqlite3")
    control.create_merchant("Run", "UTC", "USD", merchant_id=MERCHANT)
    rnd = random.Random(5)
    facts: dict[tuple[date, str], tuple[int, int]] = {}
    rows = []
    for day in DAYS:
        start, _ = day_window(day, "UTC")
        for country in rnd.sample(COUNTRIES, 4):
            sessions, events = rnd.randint(0, 4), rnd.randint(0, 5)  # small: many ties and some all-zero rows
            facts[day, country] = (sessions, events)
            rows.append(rollup_row(MERCHANT, "country", Grain.DAY, start, (country,), sessions=sessions, events=events))
        day_sessions = sum(v[0] for (d, _), v in facts.items() if d == day)
        day_events = sum(v[1] for (d, _), v in facts.items() if d == day)
        rows.append(rollup_row(MERCHANT, "total", Grain.DAY, start, sessions=day_sessions, events=day_events))
    store.write(rows)

    def engine(max_limit: int) -> QueryEngine:
        return QueryEngine(
            store,
            registry,
            control,
            config=EngineConfig(max_limit=max_limit, cache_entries=0),
            clock=lambda: datetime(2026, 3, 1, tzinfo=UTC),
        )

    yield Data(engine(1_000), facts, engine(3))
    control.close()
    registry.close()
    store.close()


def brute(
    data: Data,
    dims: list[str],
    metrics: list[str],
    ranges: list[tuple[date, date]],
    orders: list[tuple[str, bool, bool]],
) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """Every GA4 row (keep_empty_rows=false) in GA4 order, from the generated facts."""
    sums: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    for i, (start, end) in enumerate(ranges):
        for (day, country), (sessions, events) in data.facts.items():
            if start <= day <= end:
                key = [country if d == "country" else LABELS[d](day) for d in dims]
                if len(ranges) > 1:
                    key.append(f"date_range_{i}")
                total = sums[tuple(key)]
                total[0] += sessions
                total[1] += events
    index = {"sessions": 0, "eventCount": 1}
    rows = [(k, tuple(v[index[m]] for m in metrics)) for k, v in sums.items() if any(v[index[m]] for m in metrics)]
    names = [*dims, "dateRange"] if len(ranges) > 1 else dims
    rows.sort(key=lambda r: r[0])  # the tie-break: every dimension ascending
    if not orders and "country" in dims:
        orders = [(metrics[0], True, True)]
    for name, desc, is_metric in reversed(orders):  # stable sorts, last key first
        if is_metric:
            rows.sort(key=metric_key(metrics.index(name)), reverse=desc)
        else:
            rows.sort(key=dimension_key(names.index(name)), reverse=desc)
    return rows


Row = tuple[tuple[str, ...], tuple[int, ...]]


def metric_key(j: int) -> Callable[[Row], int]:
    return lambda row: row[1][j]


def dimension_key(j: int) -> Callable[[Row], str]:
    return lambda row: row[0][j]


CALENDAR_CHOICES = [[], ["month"], ["week"], ["isoWeek"], ["yearWeek", "month"]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    calendar=st.sampled_from(CALENDAR_CHOICES),
    with_country=st.booleans(),
    metrics=st.sampled_from([["sessions"], ["eventCount", "sessions"]]),
    n_ranges=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    order_kind=st.sampled_from(["default", "metric asc", "dimension desc", "calendar then metric"]),
    limit=st.integers(1, 12),
    offset=st.integers(0, 30),
)
def test_combined_reports_equal_brute_force(
    data: Data,
    calendar: list[str],
    with_country: bool,
    metrics: list[str],
    n_ranges: int,
    seed: int,
    order_kind: str,
    limit: int,
    offset: int,
) -> None:
    rnd = random.Random(seed)
    dims = [*calendar, "country"] if with_country else list(calendar)
    if not dims:
        dims = ["country"]
    ranges = []
    for _ in range(n_ranges):
        a, b = sorted(rnd.sample(range(len(DAYS)), 2))
        ranges.append((DAYS[a], DAYS[b]))
    orders: list[tuple[str, bool, bool]] = []
    if order_kind == "metric asc":
        orders = [(metrics[-1], False, True)]
    elif order_kind == "dimension desc":
        orders = [(dims[-1], True, False)]
    elif order_kind == "calendar then metric" and calendar:
        orders = [(calendar[0], True, False), (metrics[0], True, True)]
    request = RunReportRequest(
        property=f"properties/{MERCHANT}",
        dimensions=[Dimension(name=d) for d in dims],
        metrics=[Metric(name=m) for m in metrics],
        date_ranges=[DateRange(start_date=str(s), end_date=str(e)) for s, e in ranges],
        order_bys=[
            OrderBy(metric=OrderBy.MetricOrderBy(metric_name=n), desc=desc)
            if is_metric
            else OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=n), desc=desc)
            for n, desc, is_metric in orders
        ],
        limit=limit,
        offset=offset,
    )
    expected = brute(data, dims, metrics, ranges, orders)
    result = run_report(data.engine, report_plan(request, MERCHANT, "USD"))
    got = [(r.dimensions, tuple(int(v) for v in r.values)) for r in result.rows]
    assert got == expected[offset : offset + limit]
    assert result.row_count == len(expected)


def test_rows_past_the_engine_limit_are_refused(data: Data) -> None:
    def request(limit: int, offset: int, aggregations: list[int] | None = None) -> RunReportRequest:
        return RunReportRequest(
            property=f"properties/{MERCHANT}",
            dimensions=[Dimension(name="country")],
            metrics=[Metric(name="eventCount")],
            date_ranges=[
                DateRange(start_date=str(DAYS[0]), end_date=str(DAYS[3])),
                DateRange(start_date=str(DAYS[4]), end_date=str(DAYS[-1])),
            ],
            limit=limit,
            offset=offset,
            metric_aggregations=aggregations or [],
        )

    # the first 3 rows of each date range are enough for the first 3 rows of the combination ...
    first = run_report(data.small, report_plan(request(3, 0), MERCHANT, "USD"))
    full = run_report(data.engine, report_plan(request(100, 0), MERCHANT, "USD"))
    assert first.rows == full.rows[:3] and first.row_count == full.row_count > 6
    # ... but rows past the engine's limit cannot be combined, and MINIMUM/MAXIMUM need every row
    for limit, offset, aggregations in ((2, 2, None), (3, 0, [6])):
        with pytest.raises(InvalidQuery) as raised:
            run_report(data.small, report_plan(request(limit, offset, aggregations), MERCHANT, "USD"))
        assert raised.value.field == "date_ranges[0]"
        assert "more than 3 rows" in str(raised.value)
