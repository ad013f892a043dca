"""GA4 requests -> engine plans, property names, and GA4 value formatting (pure, no server)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Filter,
    FilterExpression,
    FilterExpressionList,
    Metric,
    MetricAggregation,
    MinuteRange,
    NumericValue,
    OrderBy,
    RunRealtimeReportRequest,
    RunReportRequest,
)
from hypothesis import given
from hypothesis import strategies as st

from query_svc.errors import InvalidQuery, PermissionDenied
from query_svc.ga4.filters import Order, Scope, filter_expr
from query_svc.ga4.respond import format_value
from query_svc.ga4.service import metadata_merchant, property_merchant
from query_svc.ga4.translate import realtime_plan, report_plan, some_metric_nonzero
from query_svc.model import (
    And,
    Between,
    DateSpec,
    InList,
    MatchType,
    MetricType,
    Not,
    NumericCompare,
    NumericOp,
    Or,
    StringMatch,
)
from query_svc.model import (
    OrderBy as EngineOrder,
)


def request(**fields: object) -> RunReportRequest:
    base = RunReportRequest(
        property="properties/m-1",
        metrics=[Metric(name="sessions")],
        date_ranges=[DateRange(start_date="7daysAgo", end_date="today")],
    )
    for name, value in fields.items():
        setattr(base, name, value)
    return base


def test_plan_maps_names_and_keeps_ga4_defaults() -> None:
    plan = report_plan(
        request(dimensions=[Dimension(name="yearMonth"), Dimension(name="week"), Dimension(name="country")]),
        "m-1",
        "USD",
    )
    assert plan.engine_dimensions == ("month", "country")  # GA4 yearMonth is the engine's month; GA4 week is not
    assert plan.calendar_dimensions == ("week",)
    assert plan.orders == (Order("sessions", True, True),)  # the engine's default: first metric descending
    assert plan.metric_filter == some_metric_nonzero(["sessions"])  # keep_empty_rows=false
    assert plan.limit is None and plan.offset == 0
    engine = plan.engine_request(DateSpec("2026-01-01", "2026-01-31"), limit=10, offset=0)
    assert engine.dimensions == ("month", "country") and not engine.fill_time_gaps
    assert engine.order_bys == (EngineOrder("sessions", True, True),)


def test_engine_order_never_falls_back_to_a_different_default() -> None:
    order = OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name="week"), desc=True)
    plan = report_plan(
        request(dimensions=[Dimension(name="week"), Dimension(name="country")], order_bys=[order]), "m-1", "USD"
    )
    # within one calendar run the week is a constant: the engine is told "country ascending", not its default
    assert plan.engine_orders() == (EngineOrder("country", False, False),)
    dated = report_plan(request(dimensions=[Dimension(name="date")]), "m-1", "USD")
    assert dated.orders == () and dated.engine_orders() == ()  # time order


def test_keep_empty_rows_fills_a_single_time_dimension() -> None:
    plan = report_plan(
        request(dimensions=[Dimension(name="month"), Dimension(name="date")], keep_empty_rows=True), "m-1", "USD"
    )
    assert plan.metric_filter is None
    assert plan.engine_request(DateSpec("2026-01-01", "2026-01-31"), limit=None, offset=0).fill_time_gaps
    breakdown = report_plan(request(dimensions=[Dimension(name="country")], keep_empty_rows=True), "m-1", "USD")
    assert not breakdown.engine_request(DateSpec("2026-01-01", "2026-01-31"), limit=None, offset=0).fill_time_gaps


def test_date_ranges_and_aggregations() -> None:
    plan = report_plan(
        request(
            date_ranges=[
                DateRange(start_date="2026-01-01", end_date="2026-01-07", name="launch"),
                DateRange(start_date="yesterday", end_date="today"),
            ],
            metric_aggregations=[MetricAggregation.MAXIMUM, MetricAggregation.TOTAL],
            metrics=[Metric(name="sessions"), Metric(name="eventCount", invisible=True)],
        ),
        "m-1",
        "USD",
    )
    assert [(r.spec, r.name, r.field) for r in plan.ranges] == [
        (DateSpec("2026-01-01", "2026-01-07"), "launch", "date_ranges[0]"),
        (DateSpec("yesterday", "today"), "date_range_1", "date_ranges[1]"),
    ]
    assert plan.header_dimensions == ("dateRange",)
    assert (plan.aggregations.totals, plan.aggregations.minimums, plan.aggregations.maximums) == (True, False, True)
    assert plan.visible == (True, False)


def leaf(field: str, **condition: object) -> FilterExpression:
    return FilterExpression(filter=Filter(field_name=field, **condition))


def test_filters_convert_every_kind() -> None:
    dims = Scope(dimensions=("country", "pagePath"))
    expression = FilterExpression(
        and_group=FilterExpressionList(
            expressions=[
                leaf(
                    "country",
                    string_filter=Filter.StringFilter(value="In", match_type=Filter.StringFilter.MatchType.BEGINS_WITH),
                ),
                FilterExpression(
                    or_group=FilterExpressionList(
                        expressions=[
                            leaf(
                                "pagePath", in_list_filter=Filter.InListFilter(values=["/a", "/b"], case_sensitive=True)
                            ),
                            FilterExpression(not_expression=leaf("pagePath", empty_filter=Filter.EmptyFilter())),
                        ]
                    )
                ),
            ]
        )
    )
    assert filter_expr(expression, dims, "dimension_filter") == And(
        (
            StringMatch("country", MatchType.BEGINS_WITH, "In", False),
            Or((InList("pagePath", ("/a", "/b"), True), Not(InList("pagePath", ("", "(not set)"), True)))),
        )
    )
    metrics = Scope(metrics=("sessions", "totalRevenue"))
    gt = leaf(
        "sessions",
        numeric_filter=Filter.NumericFilter(
            operation=Filter.NumericFilter.Operation.GREATER_THAN, value=NumericValue(int64_value=3)
        ),
    )
    assert filter_expr(gt, metrics, "metric_filter") == NumericCompare("sessions", NumericOp.GREATER_THAN, 3.0)
    inside = leaf(
        "totalRevenue",
        between_filter=Filter.BetweenFilter(
            from_value=NumericValue(double_value=1.5), to_value=NumericValue(int64_value=9)
        ),
    )
    assert filter_expr(inside, metrics, "metric_filter") == Between("totalRevenue", 1.5, 9.0)
    no_value = leaf("sessions", between_filter=Filter.BetweenFilter(from_value=NumericValue(double_value=1.5)))
    with pytest.raises(InvalidQuery) as raised:
        filter_expr(no_value, metrics, "metric_filter")
    assert raised.value.field == "metric_filter.filter.between_filter.to_value"


def test_realtime_minute_ranges() -> None:
    def realtime(*ranges: MinuteRange) -> RunRealtimeReportRequest:
        return RunRealtimeReportRequest(
            property="properties/m-1", metrics=[Metric(name="activeUsers")], minute_ranges=list(ranges)
        )

    assert realtime_plan(realtime(), "m-1").minutes == 30
    assert realtime_plan(realtime(), "m-1").dimension_filter is None
    recent = realtime_plan(realtime(MinuteRange(start_minutes_ago=4)), "m-1")
    assert (recent.minutes, recent.dimension_filter) == (5, None)
    plan = realtime_plan(realtime(MinuteRange(start_minutes_ago=12, end_minutes_ago=10)), "m-1")
    assert plan.minutes == 13
    assert plan.dimension_filter == InList("minutesAgo", ("10", "11", "12"), True)
    assert realtime_plan(realtime(MinuteRange(start_minutes_ago=0)), "m-1").minutes == 1  # an explicit 0 is set
    assert realtime_plan(realtime(MinuteRange(end_minutes_ago=0)), "m-1").minutes == 30  # start unset: 29


def test_properties() -> None:
    assert property_merchant("properties/m-1", "m-1") == "m-1"
    with pytest.raises(PermissionDenied):
        property_merchant("properties/m-2", "m-1")
    with pytest.raises(PermissionDenied):
        property_merchant("properties/0", "m-1")
    assert property_merchant("properties/0", "m-1", universal=True) == "m-1"
    for bad in ("", "m-1", "properties/", "properties/m-1/x"):
        with pytest.raises(InvalidQuery):
            property_merchant(bad, "m-1")
    assert metadata_merchant("properties/m-1/metadata", "m-1") == "m-1"
    assert metadata_merchant("properties/0/metadata", "m-1") == "m-1"
    with pytest.raises(PermissionDenied):
        metadata_merchant("properties/m-2/metadata", "m-1")


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (123, MetricType.INTEGER, "123"),
        (0, MetricType.INTEGER, "0"),
        (0.5, MetricType.FLOAT, "0.5"),
        (0.0, MetricType.FLOAT, "0"),
        (1.0, MetricType.FLOAT, "1"),
        (1 / 3, MetricType.FLOAT, "0.3333333333333333"),
        (1e-7, MetricType.FLOAT, "0.0000001"),
        (272.7274752891693, MetricType.SECONDS, "272.7274752891693"),
        (Decimal(12_500_000).scaleb(-6), MetricType.CURRENCY, "12.5"),
        (Decimal(100_000_000).scaleb(-6), MetricType.CURRENCY, "100"),
        (Decimal(0).scaleb(-6), MetricType.CURRENCY, "0"),
        (Decimal(1).scaleb(-6), MetricType.CURRENCY, "0.000001"),
        (Decimal(-2_250_000).scaleb(-6), MetricType.CURRENCY, "-2.25"),
    ],
)
def test_values_as_ga4_writes_them(value: int | float | Decimal, kind: MetricType, text: str) -> None:
    assert format_value(value, kind) == text


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_float_values_read_back_exactly(value: float) -> None:
    text = format_value(value, MetricType.FLOAT)
    assert "e" not in text and float(text) == value


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_currency_values_are_exact(micros: int) -> None:
    text = format_value(Decimal(micros).scaleb(-6), MetricType.CURRENCY)
    assert "e" not in text.lower() and Decimal(text) * 1_000_000 == micros
