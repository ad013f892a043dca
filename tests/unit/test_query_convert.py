"""gnomon.v1 QueryService messages <-> the engine's typed model; settings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gnomon.settings import SettingsError
from gnomon.v1 import query_pb2 as q
from query_svc import convert
from query_svc.errors import InvalidQuery
from query_svc.model import (
    And,
    Between,
    DateSpec,
    InList,
    MatchType,
    MetricHeader,
    MetricType,
    Not,
    NumericCompare,
    NumericOp,
    Or,
    OrderBy,
    PreviousPeriod,
    ReportResult,
    ResolvedRange,
    ResultMeta,
    ResultRow,
    StringMatch,
)
from query_svc.settings import QuerySettings


def leaf(name: str, **kwargs: object) -> q.FilterExpression:
    return q.FilterExpression(filter=q.Filter(field_name=name, **kwargs))  # type: ignore[arg-type]


def test_filter_expressions() -> None:
    message = q.FilterExpression(
        and_group=q.FilterExpressionList(
            expressions=[
                leaf("pagePath", string_filter=q.StringFilter(match_type=q.StringFilter.FULL_REGEXP, value="/a.*")),
                q.FilterExpression(
                    or_group=q.FilterExpressionList(
                        expressions=[
                            leaf("country", in_list_filter=q.InListFilter(values=["India"], case_sensitive=True)),
                            q.FilterExpression(not_expression=leaf("country", string_filter=q.StringFilter(value="x"))),
                        ]
                    )
                ),
            ]
        )
    )
    assert convert.filter_from_proto(message, "dimension_filter") == And(
        (
            StringMatch("pagePath", MatchType.FULL_REGEXP, "/a.*"),
            Or((InList("country", ("India",), True), Not(StringMatch("country", MatchType.EXACT, "x")))),
        )
    )
    numeric = leaf(
        "sessions",
        numeric_filter=q.NumericFilter(operation=q.NumericFilter.GREATER_THAN, value=q.NumericValue(int64_value=3)),
    )
    assert convert.filter_from_proto(numeric, "metric_filter") == NumericCompare("sessions", NumericOp.GREATER_THAN, 3)
    between = leaf(
        "engagementRate",
        between_filter=q.BetweenFilter(
            from_value=q.NumericValue(double_value=0.25), to_value=q.NumericValue(double_value=0.5)
        ),
    )
    assert convert.filter_from_proto(between, "metric_filter") == Between("engagementRate", 0.25, 0.5)


@pytest.mark.parametrize(
    "message",
    [
        q.FilterExpression(),
        leaf("pagePath"),
        leaf("", string_filter=q.StringFilter(value="x")),
        leaf("sessions", numeric_filter=q.NumericFilter()),
    ],
)
def test_malformed_filters(message: q.FilterExpression) -> None:
    with pytest.raises(InvalidQuery):
        convert.filter_from_proto(message, "dimension_filter")


def test_requests() -> None:
    series = convert.timeseries_request(
        q.TimeSeriesRequest(
            merchant_id="m1",
            date_range=q.DateRange(start_date="7daysAgo", end_date="today"),
            metrics=["sessions"],
            granularity=q.GRANULARITY_WEEK,
            comparison=q.Comparison(previous_period=q.Comparison.PreviousPeriod()),
            limit=5,
        )
    )
    assert series.dimensions == ("week",)
    assert series.fill_time_gaps
    assert series.comparison == PreviousPeriod()
    assert series.limit == 5
    assert series.dimension_filter is None
    breakdown = convert.breakdown_request(
        q.BreakdownRequest(
            merchant_id="m1",
            date_range=q.DateRange(start_date="2026-01-01", end_date="2026-01-31"),
            metrics=["screenPageViews"],
            dimensions=["pagePath"],
            order_bys=[q.OrderBy(dimension_name="pagePath", desc=True), q.OrderBy(metric_name="sessions")],
            comparison=q.Comparison(date_range=q.DateRange(start_date="2025-01-01", end_date="2025-01-31")),
        )
    )
    assert breakdown.order_bys == (OrderBy("pagePath", True, False), OrderBy("sessions", False, True))
    assert breakdown.comparison == DateSpec("2025-01-01", "2025-01-31")
    assert breakdown.limit is None
    with pytest.raises(InvalidQuery, match="dimension"):
        convert.breakdown_request(q.BreakdownRequest(metrics=["sessions"]))
    with pytest.raises(InvalidQuery, match="order_bys"):
        convert.breakdown_request(q.BreakdownRequest(dimensions=["pagePath"], order_bys=[q.OrderBy(desc=True)]))
    realtime = convert.realtime_request(q.RealtimeRequest(merchant_id="m1"))
    assert (realtime.minutes, realtime.metrics) == (30, ("activeUsers", "eventCount"))


def test_report_response_values() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rng = ResolvedRange(date(2026, 1, 1), date(2026, 1, 1), t0, t0)
    headers = (
        MetricHeader("sessions", MetricType.INTEGER),
        MetricHeader("engagementRate", MetricType.FLOAT),
        MetricHeader("totalRevenue", MetricType.CURRENCY),
    )
    result = ReportResult(
        dimension_headers=("pagePath",),
        metric_headers=headers,
        rows=(ResultRow(("/a",), (3, 0.5, Decimal(1_234_560).scaleb(-6)), (1, 0.0, Decimal(0).scaleb(-6))),),
        totals=ResultRow((), (3, 0.5, Decimal(-5).scaleb(-6))),
        row_count=1,
        date_range=rng,
        comparison_range=None,
        meta=ResultMeta("EUR", "Europe/Berlin", "page", ("day",), False, False, 10, 7),
    )
    response = convert.report_response(result)
    row = response.rows[0]
    assert row.dimension_values == ["/a"]
    assert [v.WhichOneof("value") for v in row.metric_values] == ["int_value", "double_value", "decimal_value"]
    assert row.metric_values[2].decimal_value == "1.234560"
    assert row.comparison_values[2].decimal_value == "0.000000"
    assert response.totals.metric_values[2].decimal_value == "-0.000005"
    assert response.metric_headers[2].type == q.METRIC_TYPE_CURRENCY
    assert response.date_range.start_date == "2026-01-01"
    assert not response.HasField("comparison_range")
    assert response.metadata.currency_code == "EUR"


def test_settings(tmp_path: Path) -> None:
    settings = QuerySettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)})
    assert (settings.host, settings.port, settings.max_limit) == ("127.0.0.1", 50052, 100_000)
    assert settings.address == "127.0.0.1:50052"
    custom = QuerySettings.from_env(
        {
            "GNOMON_DATA_DIR": str(tmp_path),
            "GNOMON_QUERY_PORT": "0",
            "GNOMON_QUERY_CACHE_ENTRIES": "0",
            "GNOMON_AGGREGATOR_KEY_EVENTS": "purchase, sign_up",
        }
    )
    assert (custom.port, custom.cache_entries, custom.key_events) == (0, 0, frozenset({"purchase", "sign_up"}))
    with pytest.raises(SettingsError, match="GNOMON_QUERY_PORT"):
        QuerySettings.from_env({"GNOMON_QUERY_PORT": "99999"})
    with pytest.raises(SettingsError, match="together"):
        QuerySettings.from_env({"GNOMON_TLS_CERT": str(tmp_path / "x.pem")})
