"""GA4 GetMetadata, CheckCompatibility and RunRealtimeReport end to end (see test_ga4_world), and a second property
seeing only its own data."""

from __future__ import annotations

import pytest
from google.analytics.data_v1beta.types import (
    CheckCompatibilityRequest,
    Compatibility,
    MetricAggregation,
    MetricType,
    MinuteRange,
    OrderBy,
    RunRealtimeReportRequest,
    RunReportRequest,
)
from google.api_core import exceptions

from aggregator import frame as f
from gnomon.v1 import query_pb2 as q
from query_svc.testing import bearer
from tests.integration.test_ga4_world import (
    ALL_METRICS,
    DAYS,
    KEY_EVENTS,
    OP,
    OTHER,
    PROPERTY,
    World,
    dims,
    ga4_table,
    in_list,
    md,
    mets,
    numeric,
    qrange,
    qs,
    qs_row,
    realtime_events,
    report,
    rng,
    world_fixture,  # noqa: F401 (the `world` fixture)
)

# ------------------------------------------------------------------------------------- metadata, compatibility


def test_metadata(world: World) -> None:
    for name in (f"{PROPERTY}/metadata", "properties/0/metadata"):
        metadata = world.client.get_metadata(name=name)
        assert metadata.name == name
        dimensions = {d.api_name: d for d in metadata.dimensions}
        required = (
            "date",
            "dateHour",
            "week",
            "month",
            "country",
            "region",
            "city",
            "deviceCategory",
            "browser",
            "operatingSystem",
            "pagePath",
            "sessionSource",
            "sessionMedium",
            "sessionSourceMedium",
            "sessionDefaultChannelGroup",
            "eventName",
            "yearMonth",
            "isoYearIsoWeek",
        )
        assert set(required) <= set(dimensions)
        assert "Sunday" in dimensions["week"].description
        metrics = {m.api_name: m for m in metadata.metrics}
        assert set(ALL_METRICS) <= set(metrics)
        assert metrics["totalRevenue"].type_ == MetricType.TYPE_CURRENCY
        assert metrics["averageSessionDuration"].type_ == MetricType.TYPE_SECONDS
        assert metrics["engagementRate"].expression == "engagedSessions / sessions"
        assert metrics["sessions"].type_ == MetricType.TYPE_INTEGER


def test_check_compatibility(world: World) -> None:
    response = world.client.check_compatibility(
        CheckCompatibilityRequest(property=PROPERTY, dimensions=dims("pagePath"), metrics=mets("sessions"))
    )
    dimensions = {d.dimension_metadata.api_name: d.compatibility for d in response.dimension_compatibilities}
    assert dimensions["deviceCategory"] == Compatibility.COMPATIBLE  # the page x device cube
    assert dimensions["country"] == Compatibility.INCOMPATIBLE  # pages are event-scoped: no page x country rollup
    assert dimensions["date"] == dimensions["week"] == dimensions["pagePath"] == Compatibility.COMPATIBLE
    assert {m.compatibility for m in response.metric_compatibilities} == {Compatibility.COMPATIBLE}
    assert {m.metric_metadata.api_name for m in response.metric_compatibilities} >= set(ALL_METRICS)
    # the engine agrees, one dimension at a time
    for name, compatibility in dimensions.items():
        if name in ("country", "deviceCategory", "city", "browser"):
            engine = qs(world).CheckCompatibility(
                q.CheckCompatibilityRequest(dimensions=["pagePath", name], metrics=["sessions"]), metadata=md(world)
            )
            assert engine.compatible == (compatibility == Compatibility.COMPATIBLE), name
    only = world.client.check_compatibility(
        CheckCompatibilityRequest(
            property="properties/0", dimensions=dims("pagePath"), compatibility_filter=Compatibility.INCOMPATIBLE
        )
    )
    assert {d.compatibility for d in only.dimension_compatibilities} == {Compatibility.INCOMPATIBLE}
    assert "country" in {d.dimension_metadata.api_name for d in only.dimension_compatibilities}
    assert not only.metric_compatibilities
    with pytest.raises(exceptions.InvalidArgument) as raised:
        world.client.check_compatibility(
            CheckCompatibilityRequest(property=PROPERTY, dimensions=dims("pagePath", "country"))
        )
    assert "pagePath" in raised.value.message and "country" in raised.value.message
    assert "isoYearIsoWeek" in raised.value.message and "week, month)" not in raised.value.message
    # a report the check calls incompatible fails the same way
    with pytest.raises(exceptions.InvalidArgument):
        report(
            world, dimensions=dims("pagePath", "country"), metrics=mets("sessions"), date_ranges=[rng(DAYS[0], DAYS[0])]
        )


# ----------------------------------------------------------------------------------------------- realtime


def test_realtime(world: World) -> None:
    metrics = ("activeUsers", "eventCount", "screenPageViews", "keyEvents")
    response = world.client.run_realtime_report(
        RunRealtimeReportRequest(
            property=PROPERTY,
            dimensions=dims("eventName"),
            metrics=mets(*metrics),
            metric_aggregations=[MetricAggregation.TOTAL],
        )
    )
    assert response.kind == "analyticsData#runRealtimeReport"
    reference = qs(world).Realtime(q.RealtimeRequest(dimensions=["eventName"], metrics=metrics), metadata=md(world))
    got = ga4_table(response)
    assert got == [qs_row(r, reference.metric_headers) for r in reference.rows]
    events = realtime_events(world)
    by_name = events.groupby(f.NAME).agg(
        activeUsers=(f.CLIENT_ID, "nunique"),
        eventCount=(f.CLIENT_ID, "size"),
        screenPageViews=(f.NAME, lambda s: int((s == "page_view").sum())),
        keyEvents=(f.NAME, lambda s: int(s.isin(KEY_EVENTS).sum())),
    )
    assert {k[0]: v for k, v in got} == {
        str(name): {m: int(row[m]) for m in metrics} for name, row in by_name.iterrows()
    }
    ((total_key, totals),) = ga4_table(response, response.totals)
    assert total_key == ("RESERVED_TOTAL",)
    assert totals == {
        "activeUsers": events[f.CLIENT_ID].nunique(),
        "eventCount": len(events),
        "screenPageViews": int((events[f.NAME] == "page_view").sum()),
        "keyEvents": 1,
    }
    assert totals["activeUsers"] == reference.active_users and totals["eventCount"] == reference.event_count
    # no dimensions: one row over the whole window; users are distinct over it, never summed by minute
    (only,) = ga4_table(
        world.client.run_realtime_report(RunRealtimeReportRequest(property=PROPERTY, metrics=mets(*metrics)))
    )
    assert only == ((), totals)


def test_realtime_minute_range_order_and_filters(world: World) -> None:
    response = world.client.run_realtime_report(
        RunRealtimeReportRequest(
            property=PROPERTY,
            dimensions=dims("pagePath"),
            metrics=mets("eventCount", "activeUsers"),
            minute_ranges=[MinuteRange(start_minutes_ago=20, end_minutes_ago=3)],
            order_bys=[OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name="pagePath"))],
            metric_filter=numeric("eventCount", OP.GREATER_THAN, 2),
        )
    )
    events = realtime_events(world, 20, 3)
    by_page = events.groupby(f.PAGE_PATH)[f.CLIENT_ID].agg(["size", "nunique"])
    assert ga4_table(response) == [
        ((str(page),), {"eventCount": int(row["size"]), "activeUsers": int(row["nunique"])})
        for page, row in by_page.sort_index().iterrows()
        if row["size"] > 2
    ]
    by_minute = world.client.run_realtime_report(
        RunRealtimeReportRequest(
            property=PROPERTY,
            dimensions=dims("minutesAgo"),
            metrics=mets("eventCount"),
            dimension_filter=in_list("minutesAgo", ["00", "01", "02"]),
            limit=2,
        )
    )
    counts = realtime_events(world, 2, 0).groupby("ago").size()
    expected_rows = sorted(((f"{k:02d}",), {"eventCount": int(v)}) for k, v in counts.to_dict().items())
    expected_rows.sort(key=lambda kv: -kv[1]["eventCount"])  # the engine's order: first metric descending
    assert ga4_table(by_minute) == expected_rows[:2] and by_minute.row_count == len(expected_rows)


def test_realtime_filter_on_a_metric_not_asked_for(world: World) -> None:
    response = world.client.run_realtime_report(
        RunRealtimeReportRequest(
            property=PROPERTY,
            dimensions=dims("pagePath"),
            metrics=mets("activeUsers"),
            metric_filter=numeric("eventCount", OP.GREATER_THAN_OR_EQUAL, 15),
        )
    )
    assert [h.name for h in response.metric_headers] == ["activeUsers"]
    by_page = realtime_events(world).groupby(f.PAGE_PATH)[f.CLIENT_ID].agg(["size", "nunique"])
    expected_rows = {(str(p),): {"activeUsers": int(r["nunique"])} for p, r in by_page.iterrows() if r["size"] >= 15}
    assert dict(ga4_table(response)) == expected_rows and 0 < len(expected_rows) < len(by_page)


def test_other_property_sees_only_its_data(world: World) -> None:
    other = world.running.client(world.other_token)
    response = other.run_report(
        RunReportRequest(
            property=f"properties/{OTHER}", metrics=mets("eventCount"), date_ranges=[rng(DAYS[0], DAYS[2])]
        )
    )
    (row,) = ga4_table(response)
    assert (
        row[1]["eventCount"]
        == qs(world)
        .Totals(
            q.TotalsRequest(date_range=qrange(DAYS[0], DAYS[2]), metrics=["eventCount"]),
            metadata=bearer(world.other_token),
        )
        .totals.metric_values[0]
        .int_value
    )
    assert (response.metadata.time_zone, response.metadata.currency_code) == ("Europe/Berlin", "EUR")
    realtime = other.run_realtime_report(
        RunRealtimeReportRequest(property=f"properties/{OTHER}", metrics=mets("eventCount"))
    )
    assert ga4_table(realtime) == [((), {"eventCount": 3})]
