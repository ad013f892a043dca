"""The GA4 Data API's access rules and refusals, through the official client over a real server (port 0):
merchant isolation on every RPC, authentication, and INVALID_ARGUMENT naming the exact field for every
unsupported or malformed part of a request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    BatchRunReportsRequest,
    CheckCompatibilityRequest,
    CohortSpec,
    Comparison,
    DateRange,
    Dimension,
    DimensionExpression,
    Filter,
    FilterExpression,
    FilterExpressionList,
    GetMetadataRequest,
    Metric,
    MetricAggregation,
    MinuteRange,
    NumericValue,
    OrderBy,
    RunPivotReportRequest,
    RunRealtimeReportRequest,
    RunReportRequest,
)
from google.api_core import exceptions

from aggregator.eventstore import SqliteEventStore
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups import Grain, day_window
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings
from gnomon.telemetry import Exporter, Telemetry, TelemetrySettings, setup_telemetry
from query_svc.ga4 import GA4_SERVICE
from query_svc.ga4.testing import RunningGa4, running_ga4_server
from query_svc.metrics import LATENCY
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import rollup_row

A = "m-ga4-access-a"
B = "m-ga4-access-b"
DAY = date(2026, 1, 20)
NOW = datetime(2026, 2, 1, tzinfo=UTC)


@dataclass
class Env:
    running: RunningGa4
    telemetry: Telemetry
    a: BetaAnalyticsDataClient  # A's read token
    write: BetaAnalyticsDataClient  # A's write key
    anonymous: BetaAnalyticsDataClient  # no token
    garbage: BetaAnalyticsDataClient  # a token that is no token


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("ga4_access")
    store = SqliteRollupStore(tmp / "rollups.sqlite3")
    registry = SqliteVersionRegistry(tmp / "rollups.sqlite3")
    start, _ = day_window(DAY, "UTC")
    for merchant, sessions in ((A, 5), (B, 7)):
        store.write([rollup_row(merchant, "total", Grain.DAY, start, sessions=sessions, events=sessions * 3)])
    events = SqliteEventStore(tmp / "eventstore.sqlite3")
    control = SqliteControlStore(tmp / "control.sqlite3")
    control.create_merchant("A", "UTC", "USD", merchant_id=A)
    control.create_merchant("B", "UTC", "EUR", merchant_id=B)
    telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY))
    settings = QuerySettings(common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp)}), port=0)
    deps = QueryDeps(
        store=store, registry=registry, control=control, telemetry=telemetry, event_store=events, clock=lambda: NOW
    )
    with running_ga4_server(settings, deps) as running:
        yield Env(
            running,
            telemetry,
            running.client(control.create_key(A, KeyKind.READ).secret),
            running.client(control.create_key(A, KeyKind.WRITE).secret),
            running.client(None),
            running.client("gn_r_0123456789abcdef_" + "x" * 43),
        )
    telemetry.shutdown()
    control.close()
    events.close()
    registry.close()
    store.close()


def one_range() -> list[DateRange]:
    return [DateRange(start_date=str(DAY), end_date=str(DAY))]


def sessions() -> list[Metric]:
    return [Metric(name="sessions")]


def every_rpc(prop: str) -> dict[str, Callable[[BetaAnalyticsDataClient], Any]]:
    """One call of every served RPC naming property `prop`."""
    report = RunReportRequest(property=prop, metrics=sessions(), date_ranges=one_range())
    return {
        "RunReport": lambda c: c.run_report(report),
        "BatchRunReports": lambda c: c.batch_run_reports(BatchRunReportsRequest(property=prop, requests=[report])),
        "RunRealtimeReport": lambda c: c.run_realtime_report(
            RunRealtimeReportRequest(property=prop, metrics=[Metric(name="activeUsers")])
        ),
        "GetMetadata": lambda c: c.get_metadata(GetMetadataRequest(name=f"{prop}/metadata")),
        "CheckCompatibility": lambda c: c.check_compatibility(
            CheckCompatibilityRequest(property=prop, dimensions=[Dimension(name="country")])
        ),
    }


def test_own_property_answers_every_rpc(env: Env) -> None:
    for rpc, call in every_rpc(f"properties/{A}").items():
        assert call(env.a) is not None, rpc
    response = env.a.run_report(
        RunReportRequest(property=f"properties/{A}", metrics=sessions(), date_ranges=one_range())
    )
    assert [r.metric_values[0].value for r in response.rows] == ["5"]  # A's row, never B's 7
    assert response.metadata.currency_code == "USD"


@pytest.mark.parametrize("rpc", list(every_rpc("x")))
def test_another_property_is_permission_denied(env: Env, rpc: str) -> None:
    with pytest.raises(exceptions.PermissionDenied) as raised:
        every_rpc(f"properties/{B}")[rpc](env.a)
    assert B in raised.value.message


@pytest.mark.parametrize("rpc", list(every_rpc("x")))
def test_without_a_valid_read_token_nothing_is_answered(env: Env, rpc: str) -> None:
    call = every_rpc(f"properties/{A}")[rpc]
    with pytest.raises(exceptions.Unauthenticated) as missing:
        call(env.anonymous)
    assert "authorization: Bearer" in missing.value.message
    with pytest.raises(exceptions.Unauthenticated):
        call(env.garbage)
    with pytest.raises(exceptions.PermissionDenied) as write:
        call(env.write)
    assert "write key" in write.value.message


def test_batch_isolation_and_consistency(env: Env) -> None:
    mine = RunReportRequest(property=f"properties/{A}", metrics=sessions(), date_ranges=one_range())
    theirs = RunReportRequest(property=f"properties/{B}", metrics=sessions(), date_ranges=one_range())
    with pytest.raises(exceptions.PermissionDenied):  # a report of B inside A's batch
        env.a.batch_run_reports(BatchRunReportsRequest(property=f"properties/{A}", requests=[mine, theirs]))
    with pytest.raises(exceptions.PermissionDenied):  # a batch of B holding A's report
        env.a.batch_run_reports(BatchRunReportsRequest(property=f"properties/{B}", requests=[mine]))


def test_malformed_and_universal_properties(env: Env) -> None:
    for prop in ("", A, f"properties/{A}/x", "property/1"):
        with pytest.raises(exceptions.InvalidArgument) as raised:
            env.a.run_report(RunReportRequest(property=prop, metrics=sessions(), date_ranges=one_range()))
        assert raised.value.details[0].field_violations[0].field == "property", prop
    with pytest.raises(exceptions.InvalidArgument):
        env.a.get_metadata(GetMetadataRequest(name=f"properties/{A}"))
    # properties/0: GA4's "common to every property" schema for metadata and compatibility, never data
    assert env.a.get_metadata(GetMetadataRequest(name="properties/0/metadata")).dimensions
    assert env.a.check_compatibility(CheckCompatibilityRequest(property="properties/0")).dimension_compatibilities
    with pytest.raises(exceptions.PermissionDenied):
        env.a.run_report(RunReportRequest(property="properties/0", metrics=sessions(), date_ranges=one_range()))


def test_pivots_are_unimplemented(env: Env) -> None:
    with pytest.raises(exceptions.MethodNotImplemented) as raised:
        env.a.run_pivot_report(RunPivotReportRequest(property=f"properties/{A}"))
    assert "RunReport" in raised.value.message


def test_calls_are_traced_and_timed(env: Env) -> None:
    env.a.get_metadata(GetMetadataRequest(name=f"properties/{A}/metadata"))
    assert f"{GA4_SERVICE}/GetMetadata" in {s.name for s in env.telemetry.spans()}
    rpcs = {(p.attributes["rpc"], p.attributes["code"]) for p in env.telemetry.metric_points(LATENCY)}
    assert ("GA4/GetMetadata", "OK") in rpcs


# -------------------------------------------------------------------------------------------- refusals


def _filter(field: str, **condition: Any) -> FilterExpression:
    return FilterExpression(filter=Filter(field_name=field, **condition))


def _string(value: str, match: int = Filter.StringFilter.MatchType.EXACT) -> Any:
    return Filter.StringFilter(value=value, match_type=match)


def _numeric(op: int, value: int) -> Filter.NumericFilter:
    return Filter.NumericFilter(operation=op, value=NumericValue(int64_value=value))


def _dim_order(name: str, kind: int) -> OrderBy:
    return OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=name, order_type=kind))


GT = Filter.NumericFilter.Operation.GREATER_THAN
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [  # case, RunReportRequest fields, field violation, message part
    ("cohorts", {"cohort_spec": CohortSpec(cohorts=[])}, "cohort_spec", "cohort reports are not supported"),
    ("comparisons", {"comparisons": [Comparison(comparison="x")]}, "comparisons", "comparisons are not supported"),
    ("currency", {"currency_code": "EUR"}, "currency_code", "currency conversion is not supported"),
    (
        "dimension expression",
        {
            "dimensions": [
                Dimension(
                    name="x",
                    dimension_expression=DimensionExpression(
                        lower_case=DimensionExpression.CaseExpression(dimension_name="country")
                    ),
                )
            ]
        },
        "dimensions[0].dimension_expression",
        "dimension expressions are not supported",
    ),
    (
        "metric expression",
        {"metrics": [Metric(name="spv", expression="screenPageViews/sessions")]},
        "metrics[0].expression",
        "custom metric expressions",
    ),
    ("unknown metric", {"metrics": [Metric(name="purchaseRevenue")]}, "metrics", "unknown metric 'purchaseRevenue'"),
    ("unknown dimension", {"dimensions": [Dimension(name="dayOfWeek")]}, "dimensions", "unknown dimension 'dayOfWeek'"),
    ("dateRange asked", {"dimensions": [Dimension(name="dateRange")]}, "dimensions", "added to the response by itself"),
    ("repeated metric", {"metrics": [Metric(name="sessions"), Metric(name="sessions")]}, "metrics", "twice"),
    ("no metric", {"metrics": []}, "metrics", "at least one metric"),
    (
        "pivot order",
        {"order_bys": [OrderBy(pivot=OrderBy.PivotOrderBy(metric_name="sessions"))]},
        "order_bys[0]",
        "pivot",
    ),
    (
        "case-insensitive order",
        {
            "dimensions": [Dimension(name="country")],
            "order_bys": [_dim_order("country", OrderBy.DimensionOrderBy.OrderType.CASE_INSENSITIVE_ALPHANUMERIC)],
        },
        "order_bys[0].dimension.order_type",
        "CASE_INSENSITIVE_ALPHANUMERIC is not supported",
    ),
    (
        "numeric order of text",
        {
            "dimensions": [Dimension(name="country")],
            "order_bys": [_dim_order("country", OrderBy.DimensionOrderBy.OrderType.NUMERIC)],
        },
        "order_bys[0].dimension.order_type",
        "'country' holds text",
    ),
    (
        "order by absent metric",
        {"order_bys": [OrderBy(metric=OrderBy.MetricOrderBy(metric_name="eventCount"))]},
        "order_bys[0].metric.metric_name",
        "'eventCount' is not one of the request's metrics",
    ),
    (
        "order by absent dimension",
        {"order_bys": [_dim_order("country", OrderBy.DimensionOrderBy.OrderType.ALPHANUMERIC)]},
        "order_bys[0].dimension.dimension_name",
        "'country' is not one of the request's dimensions",
    ),
    ("count", {"metric_aggregations": [MetricAggregation.COUNT]}, "metric_aggregations[0]", "COUNT is not supported"),
    (
        "time filter",
        {"dimension_filter": _filter("date", string_filter=_string("20260120"))},
        "dimension_filter.filter.field_name",
        "narrow date_ranges instead",
    ),
    (
        "unknown filter field",
        {
            "dimension_filter": FilterExpression(
                and_group=FilterExpressionList(
                    expressions=[
                        _filter("country", string_filter=_string("x")),
                        _filter("landingPage", string_filter=_string("/")),
                    ]
                )
            )
        },
        "dimension_filter.and_group.expressions[1].filter.field_name",
        "unknown dimension 'landingPage'",
    ),
    (
        "numeric filter on a dimension",
        {"dimension_filter": _filter("country", numeric_filter=_numeric(GT, 1))},
        "dimension_filter.filter",
        "numeric filters apply to metrics",
    ),
    (
        "string filter on a metric",
        {"metric_filter": _filter("sessions", string_filter=_string("1"))},
        "metric_filter.filter",
        "string filters apply to dimensions",
    ),
    (
        "no operation",
        {"metric_filter": _filter("sessions", numeric_filter=Filter.NumericFilter(value=NumericValue(int64_value=1)))},
        "metric_filter.filter.numeric_filter.operation",
        "set one of EQUAL",
    ),
    ("no condition", {"metric_filter": _filter("sessions")}, "metric_filter.filter", "has no condition"),
    (
        "empty group",
        {"dimension_filter": FilterExpression(or_group=FilterExpressionList())},
        "dimension_filter.or_group",
        "at least one expression",
    ),
    (
        "bad regex",
        {"dimension_filter": _filter("country", string_filter=_string("(", Filter.StringFilter.MatchType.FULL_REGEXP))},
        "dimension_filter",
        "invalid regular expression",
    ),
    ("no date range", {"date_ranges": []}, "date_ranges", "at least one date range"),
    ("five date ranges", {"date_ranges": one_range() * 5}, "date_ranges", "at most 4"),
    (
        "bad date",
        {"date_ranges": [DateRange(start_date="2026-02-30", end_date="2026-03-01")]},
        "date_ranges[0]",
        "not a valid calendar date",
    ),
    (
        "bad second date",
        {"date_ranges": [*one_range(), DateRange(start_date="2026-01-02", end_date="2026-01-01")]},
        "date_ranges[1]",
        "after end date",
    ),
    (
        "reserved range name",
        {"date_ranges": [DateRange(start_date="today", end_date="today", name="date_range_3")]},
        "date_ranges[0].name",
        "must not begin with",
    ),
    ("negative limit", {"limit": -1}, "limit", "limit must be >= 0"),
    (
        "incompatible",
        {"dimensions": [Dimension(name="pagePath"), Dimension(name="city")]},
        "dimensions",
        "together (plus the time dimensions date, dateHour, isoWeek, isoYear, isoYearIsoWeek, month, week, year,"
        " yearMonth, yearWeek)",
    ),
]


@pytest.mark.parametrize(("case", "fields", "field", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_the_field_named(env: Env, case: str, fields: dict[str, Any], field: str, message: str) -> None:
    request = RunReportRequest(property=f"properties/{A}", metrics=sessions(), date_ranges=one_range())
    for name, value in fields.items():
        setattr(request, name, value)
    with pytest.raises(exceptions.InvalidArgument) as raised:
        env.a.run_report(request)
    assert message in raised.value.message
    (violation,) = raised.value.details[0].field_violations
    assert violation.field == field
    # the same refusal inside a batch names the request
    batch = BatchRunReportsRequest(
        property=f"properties/{A}", requests=[RunReportRequest(metrics=sessions(), date_ranges=one_range()), request]
    )
    with pytest.raises(exceptions.InvalidArgument) as in_batch:
        env.a.batch_run_reports(batch)
    assert in_batch.value.details[0].field_violations[0].field == f"requests[1].{field}"


def test_same_currency_is_accepted(env: Env) -> None:
    request = RunReportRequest(
        property=f"properties/{A}", metrics=sessions(), date_ranges=one_range(), currency_code="USD"
    )
    assert env.a.run_report(request).metadata.currency_code == "USD"


def test_batch_limits(env: Env) -> None:
    report = RunReportRequest(metrics=sessions(), date_ranges=one_range())
    with pytest.raises(exceptions.InvalidArgument) as raised:
        env.a.batch_run_reports(BatchRunReportsRequest(property=f"properties/{A}", requests=[report] * 6))
    assert raised.value.details[0].field_violations[0].field == "requests"
    assert (
        len(env.a.batch_run_reports(BatchRunReportsRequest(property=f"properties/{A}", requests=[report] * 5)).reports)
        == 5
    )


REALTIME_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("two minute ranges", {"minute_ranges": [MinuteRange(), MinuteRange()]}, "minute_ranges"),
    (
        "older than 29 minutes",
        {"minute_ranges": [MinuteRange(start_minutes_ago=45)]},
        "minute_ranges[0].start_minutes_ago",
    ),
    ("inverted", {"minute_ranges": [MinuteRange(start_minutes_ago=3, end_minutes_ago=5)]}, "minute_ranges[0]"),
    ("not a realtime dimension", {"dimensions": [Dimension(name="country")]}, "dimensions"),
    ("not a realtime metric", {"metrics": [Metric(name="sessions")]}, "metrics"),
    ("count", {"metric_aggregations": [MetricAggregation.COUNT]}, "metric_aggregations[0]"),
]


@pytest.mark.parametrize(("case", "fields", "field"), REALTIME_REFUSED, ids=[r[0] for r in REALTIME_REFUSED])
def test_realtime_refused_with_the_field_named(env: Env, case: str, fields: dict[str, Any], field: str) -> None:
    request = RunRealtimeReportRequest(property=f"properties/{A}", metrics=[Metric(name="activeUsers")])
    for name, value in fields.items():
        setattr(request, name, value)
    with pytest.raises(exceptions.InvalidArgument) as raised:
        env.a.run_realtime_report(request)
    assert raised.value.details[0].field_violations[0].field == field
