"""GA4 RunReport end to end (see test_ga4_world): time series by date / dateHour, breakdowns with every kind of
filter, ordering and paging — each number equal to gnomon.v1.QueryService's and to the independent reference."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from google.analytics.data_v1beta.types import (
    FilterExpression,
    Metric,
    MetricAggregation,
    MetricType,
    OrderBy,
)

from aggregator import frame as f
from gnomon.v1 import query_pb2 as q
from tests.integration.test_ga4_world import (
    ALL_METRICS,
    CURRENCY,
    DAYS,
    OP,
    ZONE,
    M,
    World,
    all_of,
    any_of,
    assert_truth,
    between,
    dims,
    exact_users,
    expected,
    ga4_table,
    in_list,
    local_label,
    md,
    mets,
    negate,
    numeric,
    qrange,
    qs,
    qs_filter,
    qs_row,
    qs_table,
    real,
    report,
    rng,
    string_filter,
    truth_by,
    world_fixture,  # noqa: F401 (the `world` fixture)
)

# ------------------------------------------------------------------------------------------- time series


def test_daily_series_with_totals(world: World) -> None:
    response = report(
        world,
        dimensions=dims("date"),
        metrics=mets(*ALL_METRICS),
        date_ranges=[rng(DAYS[0], DAYS[2])],
        metric_aggregations=[MetricAggregation.TOTAL],
    )
    assert [h.name for h in response.dimension_headers] == ["date"]
    assert [(h.name, h.type_) for h in response.metric_headers][-4:] == [
        ("screenPageViews", MetricType.TYPE_INTEGER),
        ("eventCount", MetricType.TYPE_INTEGER),
        ("keyEvents", MetricType.TYPE_INTEGER),
        ("totalRevenue", MetricType.TYPE_CURRENCY),
    ]
    assert {h.name: h.type_ for h in response.metric_headers}["averageSessionDuration"] == MetricType.TYPE_SECONDS
    assert {h.name: h.type_ for h in response.metric_headers}["engagementRate"] == MetricType.TYPE_FLOAT
    assert (response.metadata.time_zone, response.metadata.currency_code) == (ZONE, CURRENCY)
    assert response.kind == "analyticsData#runReport"
    got = ga4_table(response)
    reference = qs(world).TimeSeries(
        q.TimeSeriesRequest(date_range=qrange(DAYS[0], DAYS[2]), metrics=ALL_METRICS, granularity=q.GRANULARITY_DAY),
        metadata=md(world),
    )
    assert got == qs_table(reference)
    assert response.row_count == reference.row_count == 3
    by_day = truth_by(world, "total", "day", lambda w, d: local_label(w, "%Y%m%d"))
    assert [k for k, _ in got] == [("20260130",), ("20260131",), ("20260201",)]
    for (key,), values in got:
        assert_truth(values, by_day[key])
    (totals,) = ga4_table(response, response.totals)
    assert totals[0] == ("RESERVED_TOTAL",)
    assert totals[1] == qs_row(reference.totals, reference.metric_headers)[1]
    assert_truth(totals[1], truth_by(world, "total", "day", lambda w, d: "all")["all"], exact_users(real(world)))


def test_hourly_series_and_keep_empty_rows(world: World) -> None:
    filled = report(
        world,
        dimensions=dims("dateHour"),
        metrics=mets("eventCount", "sessions", "keyEvents", "activeUsers"),
        date_ranges=[rng(DAYS[1], DAYS[1])],
        keep_empty_rows=True,
    )
    reference = qs(world).TimeSeries(
        q.TimeSeriesRequest(
            date_range=qrange(DAYS[1], DAYS[1]),
            metrics=["eventCount", "sessions", "keyEvents", "activeUsers"],
            granularity=q.GRANULARITY_HOUR,
        ),
        metadata=md(world),
    )
    got = ga4_table(filled)
    assert got == qs_table(reference)
    assert [k[0] for k, _ in got] == [f"20260131{h:02d}" for h in range(24)]
    by_hour = truth_by(world, "total", "hour", lambda w, d: local_label(w, "%Y%m%d%H"))
    for (key,), values in got:
        assert_truth(values, by_hour.get(key, defaultdict(int)))
    # keep_empty_rows=false (GA4's default): hours whose every metric is 0 are left out, also from row_count
    sparse = report(world, dimensions=dims("dateHour"), metrics=mets("keyEvents"), date_ranges=[rng(DAYS[1], DAYS[1])])
    with_purchases = sorted(k for k, c in by_hour.items() if k.startswith("20260131") and c["key_events"] > 0)
    assert [k[0] for k, _ in ga4_table(sparse)] == with_purchases
    assert 0 < sparse.row_count == len(with_purchases) < 24


def test_relative_dates(world: World) -> None:
    relative = report(
        world, dimensions=dims("date"), metrics=mets("sessions"), date_ranges=[rng("3daysAgo", "yesterday")]
    )
    explicit = report(world, dimensions=dims("date"), metrics=mets("sessions"), date_ranges=[rng(DAYS[0], DAYS[2])])
    assert ga4_table(relative) == ga4_table(explicit)
    today = report(world, metrics=mets("sessions"), date_ranges=[rng("today", "today")], keep_empty_rows=True)
    assert ga4_table(today) == [((), {"sessions": 0})]  # no rollups for today yet


# --------------------------------------------------------------------------------------------- breakdowns

DIMENSION_FILTERS: list[tuple[str, FilterExpression, Callable[[str], bool]]] = [
    ("exact", string_filter("pagePath", "/about", M.EXACT), lambda p: p == "/about"),
    ("exact-ci", string_filter("pagePath", "/ABOUT", M.EXACT), lambda p: p == "/about"),
    ("exact-cs", string_filter("pagePath", "/ABOUT", M.EXACT, True), lambda p: False),
    ("begins", string_filter("pagePath", "/p/", M.BEGINS_WITH), lambda p: p.startswith("/p/")),
    ("ends", string_filter("pagePath", "-12", M.ENDS_WITH), lambda p: p.endswith("-12")),
    ("contains-ci", string_filter("pagePath", "BAG", M.CONTAINS), lambda p: "bag" in p.lower()),
    ("contains-cs", string_filter("pagePath", "BAG", M.CONTAINS, True), lambda p: "BAG" in p),
    (
        "full-re",
        string_filter("pagePath", r"/p/\w+/.*-1\d", M.FULL_REGEXP),
        lambda p: bool(re.fullmatch(r"/p/\w+/.*-1\d", p)),
    ),
    (
        "partial-re",
        string_filter("pagePath", r"care|ship", M.PARTIAL_REGEXP),
        lambda p: bool(re.search("care|ship", p)),
    ),
    ("in-list", in_list("pagePath", ["/", "/about", "/nope"]), lambda p: p in ("/", "/about")),
    ("in-list-ci", in_list("pagePath", ["/ABOUT"]), lambda p: p == "/about"),
    ("in-list-cs", in_list("pagePath", ["/ABOUT"], True), lambda p: False),
    (
        "and-or-not",
        all_of(
            any_of(string_filter("pagePath", "/p/", M.BEGINS_WITH), string_filter("pagePath", "/blog", M.BEGINS_WITH)),
            negate(string_filter("pagePath", "shoe", M.CONTAINS)),
        ),
        lambda p: (p.startswith(("/p/", "/blog"))) and "shoe" not in p,
    ),
]


def per_page(world: World) -> dict[str, dict[str, int]]:
    return truth_by(world, "page", "day", lambda w, d: d[0])


@pytest.mark.parametrize(("case", "expression", "keep"), DIMENSION_FILTERS, ids=[c[0] for c in DIMENSION_FILTERS])
def test_dimension_filters(world: World, case: str, expression: FilterExpression, keep: Callable[[str], bool]) -> None:
    metrics = ("screenPageViews", "sessions", "activeUsers", "engagementRate")
    response = report(
        world,
        dimensions=dims("pagePath"),
        metrics=mets(*metrics),
        date_ranges=[rng(DAYS[0], DAYS[2])],
        dimension_filter=expression,
        limit=1000,
        metric_aggregations=[MetricAggregation.TOTAL],
    )
    reference = qs(world).Breakdown(
        q.BreakdownRequest(
            date_range=qrange(DAYS[0], DAYS[2]),
            dimensions=["pagePath"],
            metrics=metrics,
            dimension_filter=qs_filter(expression),
            limit=1000,
        ),
        metadata=md(world),
    )
    got = ga4_table(response)
    assert got == qs_table(reference)
    pages = per_page(world)
    wanted = {p for p, c in pages.items() if keep(p) and (c["pageviews"] or c["sessions"] or c["users"])}
    assert {k[0] for k, _ in got} == wanted
    assert response.row_count == len(wanted)
    users = real(world).groupby(f.PAGE_PATH)[f.CLIENT_ID].nunique()
    for (page,), values in got:
        assert_truth(values, pages[page], {"activeUsers": int(users[page])})
    (totals,) = ga4_table(response, response.totals)
    assert totals[1] == qs_row(reference.totals, reference.metric_headers)[1]


METRIC_FILTERS: list[tuple[str, FilterExpression, Callable[[dict[str, Any]], bool]]] = [
    ("gt", numeric("screenPageViews", OP.GREATER_THAN, 100), lambda v: v["screenPageViews"] > 100),
    ("ge", numeric("screenPageViews", OP.GREATER_THAN_OR_EQUAL, 100), lambda v: v["screenPageViews"] >= 100),
    ("lt", numeric("sessions", OP.LESS_THAN, 20), lambda v: v["sessions"] < 20),
    ("le-double", numeric("engagementRate", OP.LESS_THAN_OR_EQUAL, 0.75), lambda v: v["engagementRate"] <= 0.75),
    ("eq", numeric("keyEvents", OP.EQUAL, 0), lambda v: v["keyEvents"] == 0),
    ("between", between("averageSessionDuration", 100.0, 300.0), lambda v: 100 <= v["averageSessionDuration"] <= 300),
    ("revenue", numeric("totalRevenue", OP.GREATER_THAN, 50.5), lambda v: v["totalRevenue"] > Decimal("50.5")),
    (
        "or-not",
        any_of(numeric("sessions", OP.GREATER_THAN, 200), negate(numeric("eventCount", OP.GREATER_THAN, 10))),
        lambda v: v["sessions"] > 200 or not v["eventCount"] > 10,
    ),
]


@pytest.mark.parametrize(("case", "expression", "keep"), METRIC_FILTERS, ids=[c[0] for c in METRIC_FILTERS])
def test_metric_filters_order_and_paging(
    world: World, case: str, expression: FilterExpression, keep: Callable[[dict[str, Any]], bool]
) -> None:
    metrics = (
        "screenPageViews",
        "sessions",
        "engagementRate",
        "averageSessionDuration",
        "keyEvents",
        "eventCount",
        "totalRevenue",
    )
    base: dict[str, Any] = {
        "dimensions": dims("pagePath"),
        "metrics": mets(*metrics),
        "date_ranges": [rng(DAYS[0], DAYS[2])],
    }
    order = [OrderBy(metric=OrderBy.MetricOrderBy(metric_name="sessions"), desc=True)]
    everything = report(world, **base, metric_filter=expression, order_bys=order, limit=1000, keep_empty_rows=True)
    paged = report(world, **base, metric_filter=expression, order_bys=order, limit=5, offset=3, keep_empty_rows=True)
    reference = qs(world).Breakdown(
        q.BreakdownRequest(
            date_range=qrange(DAYS[0], DAYS[2]),
            dimensions=["pagePath"],
            metrics=metrics,
            metric_filter=qs_filter(expression),
            order_bys=[q.OrderBy(metric_name="sessions", desc=True)],
            limit=5,
            offset=3,
        ),
        metadata=md(world),
    )
    assert ga4_table(paged) == qs_table(reference)
    assert paged.row_count == everything.row_count == reference.row_count
    full = ga4_table(everything)
    assert ga4_table(paged) == full[3:8]
    pages = per_page(world)
    wanted = sorted(
        ((p, expected(c)) for p, c in pages.items() if keep(expected(c))), key=lambda pv: (-pv[1]["sessions"], pv[0])
    )
    assert [k[0] for k, _ in full] == [p for p, _ in wanted]
    for (page,), values in full:
        assert_truth(values, pages[page])


def test_dimension_order_types(world: World) -> None:
    base: dict[str, Any] = {"metrics": mets("sessions"), "date_ranges": [rng(DAYS[0], DAYS[2])], "limit": 1000}
    by_name = report(
        world,
        dimensions=dims("country"),
        order_bys=[
            OrderBy(
                dimension=OrderBy.DimensionOrderBy(
                    dimension_name="country", order_type=OrderBy.DimensionOrderBy.OrderType.ALPHANUMERIC
                ),
                desc=True,
            )
        ],
        **base,
    )
    names = [k[0] for k, _ in ga4_table(by_name)]
    assert names == sorted(names, reverse=True) and len(names) > 5
    by_date = report(
        world,
        dimensions=dims("date"),
        order_bys=[
            OrderBy(
                dimension=OrderBy.DimensionOrderBy(
                    dimension_name="date", order_type=OrderBy.DimensionOrderBy.OrderType.NUMERIC
                ),
                desc=True,
            )
        ],
        **base,
    )
    assert [k[0] for k, _ in ga4_table(by_date)] == ["20260201", "20260131", "20260130"]
    reference = qs(world).Breakdown(
        q.BreakdownRequest(
            date_range=qrange(DAYS[0], DAYS[2]),
            dimensions=["country"],
            metrics=["sessions"],
            order_bys=[q.OrderBy(dimension_name="country", desc=True)],
            limit=1000,
        ),
        metadata=md(world),
    )
    assert ga4_table(by_name) == qs_table(reference)


def test_session_dimensions_and_invisible_metrics(world: World) -> None:
    for dimension, cube, position in (
        ("country", "country", 0),
        ("deviceCategory", "device", 0),
        ("sessionSourceMedium", "source_medium", None),
        ("sessionDefaultChannelGroup", "channel", 0),
        ("city", "city", 2),
        ("eventName", "event_name", 0),
    ):
        response = report(
            world,
            dimensions=dims(dimension),
            date_ranges=[rng(DAYS[0], DAYS[2])],
            limit=1000,
            metrics=[
                Metric(name="sessions"),
                Metric(name="eventCount", invisible=True),
                Metric(name="engagedSessions"),
            ],
            order_bys=[OrderBy(metric=OrderBy.MetricOrderBy(metric_name="eventCount"), desc=True)],
        )
        assert [h.name for h in response.metric_headers] == ["sessions", "engagedSessions"]
        reference = qs(world).Breakdown(
            q.BreakdownRequest(
                date_range=qrange(DAYS[0], DAYS[2]),
                dimensions=[dimension],
                limit=1000,
                metrics=["sessions", "engagedSessions"],
                order_bys=[q.OrderBy(metric_name="eventCount", desc=True)],
            ),
            metadata=md(world),
        )
        got = ga4_table(response)
        assert got == qs_table(reference), dimension

        def key(w: int, d: tuple[str, ...], position: int | None = position) -> str:
            return " / ".join(d) if position is None else d[position]

        reference_counts = truth_by(world, cube, "day", key)
        assert {k[0]: v for k, v in got} == {
            k: {"sessions": c["sessions"], "engagedSessions": c["engaged_sessions"]}
            for k, c in reference_counts.items()
            if c["sessions"] or c["engaged_sessions"] or c["events"]
        }, dimension
        events = [reference_counts[k[0]]["events"] for k, _ in got]
        assert events == sorted(events, reverse=True), dimension  # ordered by the invisible metric
