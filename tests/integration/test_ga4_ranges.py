"""GA4 RunReport end to end (see test_ga4_world): several date ranges, totals / minimums / maximums, GA4's calendar
dimensions and BatchRunReports — each number equal to gnomon.v1.QueryService's and to the reference."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
from google.analytics.data_v1beta.types import (
    BatchRunReportsRequest,
    MetricAggregation,
    RunReportRequest,
)
from google.api_core import exceptions

from aggregator import frame as f
from gnomon.v1 import query_pb2 as q
from tests.integration.test_ga4_world import (
    DAYS,
    PROPERTY,
    TZ,
    ZONE,
    World,
    assert_truth,
    country_between,
    dims,
    exact_users,
    ga4_table,
    md,
    mets,
    qrange,
    qs,
    qs_row,
    qs_table,
    qs_totals,
    real,
    report,
    rng,
    truth_by,
    world_fixture,  # noqa: F401 (the `world` fixture)
)

# -------------------------------------------------------------------------------- date ranges, aggregations


def test_multiple_date_ranges(world: World) -> None:
    ranges = [rng(DAYS[0], DAYS[0], "friday"), rng(DAYS[1], DAYS[2])]
    base: dict[str, Any] = {
        "dimensions": dims("country"),
        "metrics": mets("sessions", "activeUsers", "bounceRate"),
        "date_ranges": ranges,
        "metric_aggregations": [MetricAggregation.TOTAL],
    }
    everything = report(world, **base, limit=10_000)
    assert [h.name for h in everything.dimension_headers] == ["country", "dateRange"]
    got = ga4_table(everything)
    per_range = {}
    for name, (start, end) in (("friday", (DAYS[0], DAYS[0])), ("date_range_1", (DAYS[1], DAYS[2]))):
        reference = qs(world).Breakdown(
            q.BreakdownRequest(
                date_range=qrange(start, end),
                dimensions=["country"],
                limit=10_000,
                metrics=["sessions", "activeUsers", "bounceRate"],
            ),
            metadata=md(world),
        )
        per_range[name] = reference
        mine = [(k[:1], v) for k, v in got if k[1] == name]
        assert sorted(mine) == sorted(qs_table(reference)), name
        truth = truth_by(world, "country", "day", country_between(start, end))
        for (country,), values in mine:
            assert_truth({"sessions": values["sessions"], "bounceRate": values["bounceRate"]}, truth[country])
    assert everything.row_count == sum(r.row_count for r in per_range.values()) == len(got)
    sessions = [v["sessions"] for _, v in got]
    assert sessions == sorted(sessions, reverse=True)  # one order over both ranges: first metric descending
    totals = ga4_table(everything, everything.totals)
    assert [k for k, _ in totals] == [("RESERVED_TOTAL", "friday"), ("RESERVED_TOTAL", "date_range_1")]
    for (_, name), values in totals:
        assert values == qs_row(per_range[name].totals, per_range[name].metric_headers)[1]
    paged = report(world, **base, limit=4, offset=5)
    assert ga4_table(paged) == got[5:9]
    assert paged.row_count == everything.row_count


def test_minimum_and_maximum(world: World) -> None:
    metrics = ("sessions", "engagementRate", "totalRevenue", "activeUsers")
    response = report(
        world,
        dimensions=dims("deviceCategory"),
        metrics=mets(*metrics),
        date_ranges=[rng(DAYS[0], DAYS[2])],
        metric_aggregations=[MetricAggregation.TOTAL, MetricAggregation.MINIMUM, MetricAggregation.MAXIMUM],
        limit=2,
    )
    reference = qs(world).Breakdown(
        q.BreakdownRequest(date_range=qrange(DAYS[0], DAYS[2]), dimensions=["deviceCategory"], metrics=metrics),
        metadata=md(world),
    )
    rows = [v for _, v in qs_table(reference)]
    assert len(ga4_table(response)) == 2 and response.row_count == len(rows) > 2
    ((min_key, minimum),) = ga4_table(response, response.minimums)
    ((max_key, maximum),) = ga4_table(response, response.maximums)
    assert (min_key, max_key) == (("RESERVED_MIN",), ("RESERVED_MAX",))
    assert minimum == {m: min(r[m] for r in rows) for m in metrics}
    assert maximum == {m: max(r[m] for r in rows) for m in metrics}
    ((_, totals),) = ga4_table(response, response.totals)
    totals_reference = qs(world).Totals(
        q.TotalsRequest(date_range=qrange(DAYS[0], DAYS[2]), metrics=metrics), metadata=md(world)
    )
    assert totals == qs_row(totals_reference.totals, totals_reference.metric_headers)[1]


# ------------------------------------------------------------------------------------- calendar dimensions


def local_day(events: pd.DataFrame) -> pd.Series[Any]:
    return pd.to_datetime(events[f.EVENT_TIME_US], unit="us", utc=True).dt.tz_convert(ZONE).dt.date


def day_between(start: date, end: date) -> Callable[[int, tuple[str, ...]], str | None]:
    def key(window_us: int, dims: tuple[str, ...]) -> str | None:
        day = datetime.fromtimestamp(window_us / 1e6, UTC).astimezone(TZ).date()
        return "in" if start <= day <= end else None

    return key


def test_calendar_dimensions(world: World) -> None:
    metrics = ("sessions", "activeUsers", "engagementRate", "totalRevenue")
    whole = [rng(DAYS[0], DAYS[2])]
    split = {  # GA4 semantics: month number, Sunday-first week of the year; 1 Feb 2026 is a Sunday
        "month": [("01", DAYS[0], DAYS[1]), ("02", DAYS[2], DAYS[2])],
        "week": [("05", DAYS[0], DAYS[1]), ("06", DAYS[2], DAYS[2])],
        "yearWeek": [("202605", DAYS[0], DAYS[1]), ("202606", DAYS[2], DAYS[2])],
        "isoWeek": [("05", DAYS[0], DAYS[2])],  # Mon 26 Jan .. Sun 1 Feb
        "isoYear": [("2026", DAYS[0], DAYS[2])],
        "year": [("2026", DAYS[0], DAYS[2])],
    }
    for dimension, parts in split.items():
        got = ga4_table(report(world, dimensions=dims(dimension), metrics=mets(*metrics), date_ranges=whole))
        assert got == [((label,), qs_totals(world, start, end, metrics)) for label, start, end in parts], dimension
        events = real(world)
        days = local_day(events)
        for (_, values), (_, start, end) in zip(got, parts, strict=True):  # and the independent reference
            within: pd.DataFrame = events.loc[(days >= start) & (days <= end)]
            counters = truth_by(world, "total", "day", day_between(start, end))["in"]
            assert_truth(values, counters, exact_users(within))
    for name, granularity in (("yearMonth", q.GRANULARITY_MONTH), ("isoYearIsoWeek", q.GRANULARITY_WEEK)):
        reference = qs(world).TimeSeries(
            q.TimeSeriesRequest(date_range=qrange(DAYS[0], DAYS[2]), metrics=metrics, granularity=granularity),
            metadata=md(world),
        )
        got = ga4_table(report(world, dimensions=dims(name), metrics=mets(*metrics), date_ranges=whole))
        assert got == qs_table(reference), name
    assert [k for k, _ in got] == [("202605",)]
    # a calendar dimension with a non-time one: one engine report per run, combined in one order
    combined = report(world, dimensions=dims("month", "country"), metrics=mets(*metrics), date_ranges=whole, limit=1000)
    rows = ga4_table(combined)
    for label, start, end in split["month"]:
        reference = qs(world).Breakdown(
            q.BreakdownRequest(date_range=qrange(start, end), dimensions=["country"], metrics=metrics, limit=1000),
            metadata=md(world),
        )
        assert sorted((k[1:], v) for k, v in rows if k[0] == label) == sorted(qs_table(reference))
    assert [v["sessions"] for _, v in rows] == sorted((v["sessions"] for _, v in rows), reverse=True)
    top = report(
        world, dimensions=dims("month", "country"), metrics=mets(*metrics), date_ranges=whole, limit=3, offset=1
    )
    assert ga4_table(top) == rows[1:4] and top.row_count == combined.row_count == len(rows)


def test_calendar_label_spanning_years_is_refused(world: World) -> None:
    with pytest.raises(exceptions.InvalidArgument) as raised:
        report(world, dimensions=dims("month"), metrics=mets("sessions"), date_ranges=[rng("2025-01-15", "2026-01-20")])
    assert "month='01'" in raised.value.message and "yearMonth" in raised.value.message
    assert raised.value.details[0].field_violations[0].field == "dimensions"


# -------------------------------------------------------------------------------------------------- batch


def test_batch_equals_single_reports(world: World) -> None:
    requests = [
        RunReportRequest(
            dimensions=dims("date"), metrics=mets("sessions", "totalRevenue"), date_ranges=[rng(DAYS[0], DAYS[2])]
        ),
        RunReportRequest(
            property=PROPERTY,
            dimensions=dims("deviceCategory"),
            metrics=mets("activeUsers"),
            date_ranges=[rng(DAYS[1], DAYS[1]), rng(DAYS[2], DAYS[2])],
            metric_aggregations=[MetricAggregation.TOTAL],
        ),
    ]
    batch = world.client.batch_run_reports(BatchRunReportsRequest(property=PROPERTY, requests=requests))
    assert batch.kind == "analyticsData#batchRunReports" and len(batch.reports) == 2
    for single, answered in zip(requests, batch.reports, strict=True):
        alone = world.client.run_report(RunReportRequest(single, property=PROPERTY))
        assert answered == alone
