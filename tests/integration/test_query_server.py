"""QueryService over real gRPC on 127.0.0.1 (port 0), against rollup rows written into the embedded SQLite store
and (marked `engines`) Cassandra. Every number is checked against an independent computation over the same
rows (plain Python sums and set unions of the user ids each row's sketch was built from).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pandas as pd
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from aggregator import frame as f
from aggregator.eventstore import DAY, EventStore, SqliteEventStore, day_number
from aggregator.timezones import to_us
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups import Grain, RollupRow, RollupStore, VersionRegistry, day_window
from gnomon.rollups.cql_engine import CqlEngine
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings
from gnomon.telemetry import Exporter, Telemetry, TelemetrySettings, setup_telemetry
from gnomon.v1 import query_pb2 as q
from query_svc.metrics import CACHE_LOOKUPS, LATENCY
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import RunningQuery, bearer, rollup_row, running_query_server
from tests.conftest import RealEngines

ZONE = "Asia/Kolkata"
TZ = ZoneInfo(ZONE)
NOW = datetime(2026, 2, 15, 6, 0, 30, tzinfo=UTC)  # 11:30:30 in Kolkata
DAYS = [date(2026, 1, 26) + timedelta(days=i) for i in range(14)]  # Mon 26 Jan .. Sun 8 Feb
PAGES = [f"/p/{i:02d}" for i in range(25)]
COUNTRIES = ["India", "Nepal", "Germany", "United States"]
DEVICES = ["desktop", "mobile", "tablet"]
COUNTERS = ("events", "pageviews", "sessions", "engaged_sessions", "bounces", "session_duration_ms", "revenue_micros",
            "key_events")  # fmt: skip


# ------------------------------------------------------------------------------------------ backends


@dataclass
class Backend:
    name: str
    store: RollupStore
    registry: VersionRegistry
    events: EventStore


@pytest.fixture(scope="module")
def cql_engine(real_engines: RealEngines) -> Iterator[CqlEngine]:
    cql = replace(real_engines.settings.cql, replication_factor=1)
    engine = CqlEngine(cql, keyspace=f"gnomon_query_test_{uuid.uuid4().hex[:10]}")
    try:
        yield engine
    finally:
        engine.drop_keyspace()
        engine.close()


@pytest.fixture(params=["sqlite", pytest.param("cql", marks=pytest.mark.engines)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "cql":
        from aggregator.eventstore.cql_store import CqlEventStore
        from gnomon.rollups.cql_store import CqlRollupStore
        from gnomon.rollups.cql_versions import CqlVersionRegistry

        engine: CqlEngine = request.getfixturevalue("cql_engine")
        yield Backend("cql", CqlRollupStore(engine), CqlVersionRegistry(engine), CqlEventStore(engine))
        return
    path = tmp_path / "rollups.sqlite3"
    backend = Backend(
        "sqlite",
        SqliteRollupStore(path, synchronous="OFF"),
        SqliteVersionRegistry(path, synchronous="OFF"),
        SqliteEventStore(tmp_path / "eventstore.sqlite3"),
    )
    yield backend
    backend.events.close()
    backend.registry.close()
    backend.store.close()


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Fact:
    """One rollup row as written: what an independent computation sums and unites."""

    cube: str
    grain: Grain
    window_start: datetime
    dims: tuple[str, ...]
    counters: dict[str, int]
    users: frozenset[str]
    new_users: frozenset[str]

    def row(self, merchant: str) -> RollupRow:
        c = self.counters
        return rollup_row(
            merchant, self.cube, self.grain, self.window_start, self.dims, users=sorted(self.users),
            new_users=sorted(self.new_users), events=c["events"], pageviews=c["pageviews"], sessions=c["sessions"],
            engaged_sessions=c["engaged_sessions"], bounces=c["bounces"],
            session_duration_ms=c["session_duration_ms"], revenue_micros=c["revenue_micros"],
            key_events=c["key_events"],
        )  # fmt: skip


def _counters(rnd: random.Random, scale: int) -> dict[str, int]:
    sessions = rnd.randint(0, 5 * scale)
    engaged = rnd.randint(0, sessions)
    return {
        "events": rnd.randint(0, 40 * scale),
        "pageviews": rnd.randint(0, 20 * scale),
        "sessions": sessions,
        "engaged_sessions": engaged,
        "bounces": sessions - engaged,
        "session_duration_ms": rnd.randint(0, 600_000 * max(sessions, 1)),
        "revenue_micros": rnd.randint(-2_000_000, 90_000_000),
        "key_events": rnd.randint(0, 3),
    }


def _users(rnd: random.Random, pool: int, k: int) -> frozenset[str]:
    return frozenset(f"u{rnd.randrange(pool)}" for _ in range(k))


def make_facts(seed: int) -> list[Fact]:
    rnd = random.Random(seed)
    facts: list[Fact] = []
    for day in DAYS:
        start, end = day_window(day, TZ)
        hour_users: list[frozenset[str]] = []
        hour_counters: list[dict[str, int]] = []
        for h in range(int((end - start).total_seconds() // 3600)):
            users = _users(rnd, 300, rnd.randint(0, 12))
            counters = _counters(rnd, 1)
            hour_users.append(users)
            hour_counters.append(counters)
            facts.append(Fact("total", Grain.HOUR, start + timedelta(hours=h), (), counters, users, users & {"u1"}))
        day_counters = {c: sum(hc[c] for hc in hour_counters) for c in COUNTERS}
        day_users = frozenset().union(*hour_users)
        facts.append(Fact("total", Grain.DAY, start, (), day_counters, day_users, day_users & {"u1", "u2"}))
        for page in PAGES:
            if rnd.random() < 0.8:
                users = _users(rnd, 300, rnd.randint(1, 30))
                facts.append(Fact("page", Grain.DAY, start, (page,), _counters(rnd, 3), users, frozenset()))
        for country in COUNTRIES:
            for device in DEVICES:
                users = _users(rnd, 300, rnd.randint(0, 20))
                facts.append(
                    Fact("country_device", Grain.DAY, start, (country, device), _counters(rnd, 2), users, frozenset())
                )
        for source, medium in (("google", "organic"), ("google", "cpc"), ("(direct)", "(none)"), ("bing", "organic")):
            users = _users(rnd, 300, rnd.randint(0, 20))
            facts.append(
                Fact("source_medium", Grain.DAY, start, (source, medium), _counters(rnd, 2), users, frozenset())
            )
    return facts


@dataclass
class Expected:
    """Independent answers over facts (no query_svc code)."""

    facts: list[Fact]
    days: dict[datetime, date] = field(init=False)

    def __post_init__(self) -> None:
        self.days = {day_window(d, TZ)[0]: d for d in DAYS}

    def select(self, cube: str, grain: Grain, first: date, last: date) -> list[Fact]:
        lo, hi = day_window(first, TZ)[0], day_window(last, TZ)[1]
        return [x for x in self.facts if x.cube == cube and x.grain == grain and lo <= x.window_start < hi]

    @staticmethod
    def metrics(facts: Sequence[Fact]) -> dict[str, Any]:
        c = {name: sum(x.counters[name] for x in facts) for name in COUNTERS}
        users = frozenset().union(*(x.users for x in facts))
        new_users = frozenset().union(*(x.new_users for x in facts))
        sessions = c["sessions"]
        return {
            "eventCount": c["events"],
            "screenPageViews": c["pageviews"],
            "sessions": sessions,
            "engagedSessions": c["engaged_sessions"],
            "bounces": c["bounces"],
            "keyEvents": c["key_events"],
            "totalRevenue": f"{c['revenue_micros'] / 1_000_000:.6f}",
            "engagementRate": c["engaged_sessions"] / sessions if sessions else 0.0,
            "bounceRate": c["bounces"] / sessions if sessions else 0.0,
            "averageSessionDuration": c["session_duration_ms"] / 1000 / sessions if sessions else 0.0,
            "totalUsers": len(users),
            "activeUsers": len(users),
            "newUsers": len(new_users),
        }


def values(row: q.Row, headers: Sequence[q.MetricHeader], comparison: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for header, value in zip(headers, row.comparison_values if comparison else row.metric_values, strict=True):
        kind = value.WhichOneof("value")
        out[header.name] = getattr(value, kind) if kind else None
    return out


def assert_metrics(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in got.items():
        want = expected[name]
        if isinstance(want, float):
            assert value == pytest.approx(want, rel=1e-9, abs=1e-12), name
        elif name in ("totalUsers", "activeUsers", "newUsers"):
            # HLL sketches of at most a few hundred ids are exact or within a fraction of a percent
            assert abs(value - want) <= max(1, 0.02 * want), (name, value, want)
        else:
            assert value == want, name


# ---------------------------------------------------------------------------------------------- env


@dataclass
class Env:
    backend: Backend
    control: SqliteControlStore
    telemetry: Telemetry
    settings: QuerySettings
    merchant: str
    other: str
    token: str
    other_token: str
    write_key: str
    expected: Expected

    def deps(self, store: RollupStore | None = None) -> QueryDeps:
        return QueryDeps(
            store=store or self.backend.store,
            registry=self.backend.registry,
            control=self.control,
            telemetry=self.telemetry,
            event_store=self.backend.events,
            clock=lambda: NOW,
        )


@pytest.fixture
def env(backend: Backend, tmp_path: Path) -> Iterator[Env]:
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    suffix = uuid.uuid4().hex[:10]
    merchant = control.create_merchant("A", ZONE, "INR", merchant_id=f"qa-{suffix}").merchant_id
    other = control.create_merchant("B", "Europe/Berlin", "EUR", merchant_id=f"qb-{suffix}").merchant_id
    facts = make_facts(seed=7)
    backend.store.write([x.row(merchant) for x in facts])
    backend.store.write([x.row(other) for x in make_facts(seed=8)])
    telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY))
    settings = QuerySettings(common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}), port=0)
    yield Env(
        backend,
        control,
        telemetry,
        settings,
        merchant,
        other,
        token=control.create_key(merchant, KeyKind.READ).secret,
        other_token=control.create_key(other, KeyKind.READ).secret,
        write_key=control.create_key(merchant, KeyKind.WRITE).secret,
        expected=Expected(facts),
    )
    control.close()
    telemetry.shutdown()


@pytest.fixture
def server(env: Env) -> Iterator[RunningQuery]:
    with running_query_server(env.settings, env.deps()) as running:
        yield running


def rng(start: date | str, end: date | str) -> q.DateRange:
    return q.DateRange(start_date=str(start), end_date=str(end))


# ------------------------------------------------------------------------------------------- reports

ALL_METRICS = ["activeUsers", "totalUsers", "newUsers", "sessions", "engagedSessions", "engagementRate",
               "bounceRate", "bounces", "averageSessionDuration", "screenPageViews", "eventCount", "keyEvents",
               "totalRevenue"]  # fmt: skip


def test_hourly_series_equals_the_rows_written(env: Env, server: RunningQuery) -> None:
    first, last = DAYS[2], DAYS[4]
    response = server.stub.TimeSeries(
        q.TimeSeriesRequest(date_range=rng(first, last), metrics=ALL_METRICS, granularity=q.GRANULARITY_HOUR),
        metadata=bearer(env.token),
    )
    hours = env.expected.select("total", Grain.HOUR, first, last)
    assert len(response.rows) == len(hours) == 72
    for row, fact in zip(response.rows, sorted(hours, key=lambda x: x.window_start), strict=True):
        local = fact.window_start.astimezone(TZ)
        assert row.dimension_values == [local.strftime("%Y%m%d%H")]
        assert_metrics(values(row, response.metric_headers), Expected.metrics([fact]))
    assert response.metadata.grains == ["hour"]
    assert response.metadata.time_zone == ZONE
    assert response.metadata.currency_code == "INR"
    # totals come from DAY rows; users over the 3 days are the union of every hour's users
    assert_metrics(values(response.totals, response.metric_headers), Expected.metrics(hours))


@pytest.mark.parametrize(
    ("granularity", "label"),
    [
        (q.GRANULARITY_DAY, lambda d: d.strftime("%Y%m%d")),
        (q.GRANULARITY_WEEK, lambda d: f"{d.isocalendar().year}{d.isocalendar().week:02d}"),
        (q.GRANULARITY_MONTH, lambda d: d.strftime("%Y%m")),
    ],
)
def test_day_week_month_series(
    env: Env, server: RunningQuery, granularity: q.Granularity.ValueType, label: Callable[[date], str]
) -> None:
    first, last = DAYS[0] - timedelta(days=3), DAYS[-1]  # three days without data at the start
    response = server.stub.TimeSeries(
        q.TimeSeriesRequest(date_range=rng(first, last), metrics=ALL_METRICS, granularity=granularity),
        metadata=bearer(env.token),
    )
    buckets: dict[str, list[Fact]] = defaultdict(list)
    day = first
    while day <= last:
        buckets.setdefault(label(day), [])
        day += timedelta(days=1)
    for fact in env.expected.select("total", Grain.DAY, first, last):
        buckets[label(env.expected.days[fact.window_start])].append(fact)
    assert [list(r.dimension_values) for r in response.rows] == [[k] for k in buckets]
    for row, facts in zip(response.rows, buckets.values(), strict=True):
        assert_metrics(values(row, response.metric_headers), Expected.metrics(facts))
    assert response.metadata.grains == ["day"]


def test_page_breakdown_top_n(env: Env, server: RunningQuery) -> None:
    first, last = DAYS[0], DAYS[-1]
    response = server.stub.Breakdown(
        q.BreakdownRequest(
            date_range=rng(first, last), dimensions=["pagePath"], metrics=["screenPageViews", "totalUsers", "sessions"],
            limit=10,
        ),
        metadata=bearer(env.token),
    )  # fmt: skip
    by_page: dict[str, list[Fact]] = defaultdict(list)
    for fact in env.expected.select("page", Grain.DAY, first, last):
        by_page[fact.dims[0]].append(fact)
    ranked = sorted(by_page, key=lambda p: (-Expected.metrics(by_page[p])["screenPageViews"], p))
    assert [r.dimension_values[0] for r in response.rows] == ranked[:10]
    for row in response.rows:
        assert_metrics(values(row, response.metric_headers), Expected.metrics(by_page[row.dimension_values[0]]))
    assert response.row_count == len(by_page)
    total = Expected.metrics(env.expected.select("total", Grain.DAY, first, last))
    assert_metrics(values(response.totals, response.metric_headers), total)
    assert response.metadata.cube == "page"


def test_pair_breakdown_with_filters_and_order(env: Env, server: RunningQuery) -> None:
    first, last = DAYS[3], DAYS[9]
    dimension_filter = q.FilterExpression(
        and_group=q.FilterExpressionList(
            expressions=[
                q.FilterExpression(
                    filter=q.Filter(field_name="country", in_list_filter=q.InListFilter(values=["india", "NEPAL"]))
                ),
                q.FilterExpression(
                    not_expression=q.FilterExpression(
                        filter=q.Filter(
                            field_name="deviceCategory",
                            string_filter=q.StringFilter(match_type=q.StringFilter.PARTIAL_REGEXP, value="^tab"),
                        )
                    )
                ),
            ]
        )
    )
    metric_filter = q.FilterExpression(
        filter=q.Filter(
            field_name="sessions",
            numeric_filter=q.NumericFilter(
                operation=q.NumericFilter.GREATER_THAN_OR_EQUAL, value=q.NumericValue(int64_value=1)
            ),
        )
    )
    response = server.stub.Breakdown(
        q.BreakdownRequest(
            date_range=rng(first, last),
            dimensions=["deviceCategory", "country"],
            metrics=["sessions", "engagementRate", "totalRevenue", "activeUsers"],
            dimension_filter=dimension_filter,
            metric_filter=metric_filter,
            order_bys=[q.OrderBy(metric_name="engagementRate", desc=True)],
        ),
        metadata=bearer(env.token),
    )
    groups: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for fact in env.expected.select("country_device", Grain.DAY, first, last):
        country, device = fact.dims
        if country in ("India", "Nepal") and device != "tablet":
            groups[(device, country)].append(fact)
    kept = {k: Expected.metrics(v) for k, v in groups.items() if Expected.metrics(v)["sessions"] >= 1}
    ranked = sorted(kept, key=lambda k: (-kept[k]["engagementRate"], k))
    assert [tuple(r.dimension_values) for r in response.rows] == ranked
    for row in response.rows:
        assert_metrics(values(row, response.metric_headers), kept[(row.dimension_values[0], row.dimension_values[1])])
    # totals: every row passing the dimension filter (the metric filter does not apply)
    assert_metrics(
        values(response.totals, response.metric_headers), Expected.metrics([x for v in groups.values() for x in v])
    )
    assert response.metadata.cube == "country_device"


def test_rolled_up_source(env: Env, server: RunningQuery) -> None:
    response = server.stub.Breakdown(
        q.BreakdownRequest(date_range=rng(DAYS[0], DAYS[-1]), dimensions=["sessionSource"], metrics=["sessions"]),
        metadata=bearer(env.token),
    )
    sources: dict[str, list[Fact]] = defaultdict(list)
    for fact in env.expected.select("source_medium", Grain.DAY, DAYS[0], DAYS[-1]):
        sources[fact.dims[0]].append(fact)
    assert {r.dimension_values[0]: values(r, response.metric_headers)["sessions"] for r in response.rows} == {
        s: Expected.metrics(v)["sessions"] for s, v in sources.items()
    }
    assert response.metadata.notes


def test_totals_with_comparison(env: Env, server: RunningQuery) -> None:
    response = server.stub.Totals(
        q.TotalsRequest(
            date_range=rng(DAYS[7], DAYS[13]),
            metrics=ALL_METRICS,
            comparison=q.Comparison(previous_period=q.Comparison.PreviousPeriod()),
        ),
        metadata=bearer(env.token),
    )
    this_week = Expected.metrics(env.expected.select("total", Grain.DAY, DAYS[7], DAYS[13]))
    last_week = Expected.metrics(env.expected.select("total", Grain.DAY, DAYS[0], DAYS[6]))
    assert_metrics(values(response.totals, response.metric_headers), this_week)
    assert_metrics(values(response.totals, response.metric_headers, comparison=True), last_week)
    assert len(response.rows) == 1
    assert_metrics(values(response.rows[0], response.metric_headers), this_week)
    assert response.comparison_range.start_date == str(DAYS[0])
    assert response.date_range.start_time.ToDatetime(tzinfo=UTC) == day_window(DAYS[7], TZ)[0]


def test_empty_range_answers_zeros(env: Env, server: RunningQuery) -> None:
    series = server.stub.TimeSeries(
        q.TimeSeriesRequest(date_range=rng("2025-06-01", "2025-06-03"), metrics=["sessions", "totalRevenue"]),
        metadata=bearer(env.token),
    )
    assert [r.dimension_values[0] for r in series.rows] == ["20250601", "20250602", "20250603"]
    assert all(values(r, series.metric_headers) == {"sessions": 0, "totalRevenue": "0.000000"} for r in series.rows)
    pages = server.stub.Breakdown(
        q.BreakdownRequest(date_range=rng("2025-06-01", "2025-06-03"), dimensions=["pagePath"], metrics=["sessions"]),
        metadata=bearer(env.token),
    )
    assert (list(pages.rows), pages.row_count) == ([], 0)


def test_cache_hit_second_time(env: Env, server: RunningQuery) -> None:
    request = q.BreakdownRequest(date_range=rng(DAYS[0], DAYS[5]), dimensions=["pagePath"], metrics=["sessions"])
    first = server.stub.Breakdown(request, metadata=bearer(env.token))
    second = server.stub.Breakdown(request, metadata=bearer(env.token))
    assert not first.metadata.from_cache
    assert second.metadata.from_cache
    assert list(second.rows) == list(first.rows)
    hits = {p.attributes["hit"]: p.value for p in env.telemetry.metric_points(CACHE_LOOKUPS)}
    assert hits == {"false": 1, "true": 1}
    latencies = {(p.attributes["rpc"], p.attributes["code"]): p.count for p in env.telemetry.metric_points(LATENCY)}
    assert latencies[("Breakdown", "OK")] == 2
    assert any(s.name == "gnomon.v1.QueryService/Breakdown" for s in env.telemetry.spans())
    assert any(s.name == "query.read" for s in env.telemetry.spans())


def test_huge_limit_is_capped_and_offset_pages(env: Env, server: RunningQuery) -> None:
    base = q.BreakdownRequest(date_range=rng(DAYS[0], DAYS[-1]), dimensions=["pagePath"], metrics=["sessions"])
    capped = server.stub.Breakdown(q.BreakdownRequest(**_fields(base), limit=10**15), metadata=bearer(env.token))
    assert capped.metadata.limit == 100_000
    assert len(capped.rows) == capped.row_count == 25
    pages = [
        server.stub.Breakdown(q.BreakdownRequest(**_fields(base), limit=10, offset=o), metadata=bearer(env.token))
        for o in (0, 10, 20)
    ]
    assert [r for p in pages for r in p.rows] == list(capped.rows)


def _fields(message: q.BreakdownRequest) -> dict[str, Any]:
    return {d.name: v for d, v in message.ListFields()}


# ------------------------------------------------------------------------------------------- realtime


def test_realtime(env: Env, server: RunningQuery) -> None:
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    bot = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    rows = [
        ("c1", 0.2, "page_view", chrome),
        ("c1", 0.5, "scroll", chrome),
        ("c2", 3.0, "page_view", chrome),
        ("c3", 29.5, "purchase", chrome),  # 29 minutes before the current minute began
        ("c4", 31.0, "page_view", chrome),  # outside
        ("b", 1.0, "page_view", bot),
    ]
    data: dict[str, list[Any]] = {c: [] for c in (*f.RAW_COLUMNS, DAY)}
    for i, (client, minutes, name, ua) in enumerate(rows):
        at = NOW - timedelta(minutes=minutes)
        row: dict[str, Any] = dict.fromkeys(f.RAW_COLUMNS, "")
        row.update({f.MERCHANT_ID: env.merchant, f.EVENT_ID: f"rt{i}", f.NAME: name, f.EVENT_TIME_US: to_us(at),
                    f.RECEIVED_TIME_US: to_us(at), f.CLIENT_ID: client, f.USER_AGENT: ua, f.REVENUE_MICROS: 0,
                    f.PAGE_PATH: "/rt", DAY: day_number(at.astimezone(TZ).date())})  # fmt: skip
        for column, target in data.items():
            target.append(row[column])
    env.backend.events.upsert(pd.DataFrame(data))
    response = server.stub.Realtime(
        q.RealtimeRequest(dimensions=["eventName"], metrics=["activeUsers", "eventCount"]), metadata=bearer(env.token)
    )
    assert (response.active_users, response.event_count) == (3, 4)
    assert len(response.minutes) == 30
    by_ago = {m.minutes_ago: (m.active_users, m.event_count) for m in response.minutes}
    assert by_ago[0] == (1, 2)
    assert by_ago[3] == (1, 1)  # 05:57:30 lies in the minute that began 3 minutes before the current one
    assert by_ago[29] == (1, 1)
    assert response.bots_excluded
    assert {r.dimension_values[0]: values(r, response.metric_headers)["eventCount"] for r in response.rows} == {
        "page_view": 2,
        "scroll": 1,
        "purchase": 1,
    }
    other = server.stub.Realtime(q.RealtimeRequest(), metadata=bearer(env.other_token))
    assert other.event_count == 0  # another merchant's events are not visible


# -------------------------------------------------------------------------------- metadata/compatibility


def test_metadata_and_compatibility(env: Env, server: RunningQuery) -> None:
    meta = server.stub.Metadata(q.MetadataRequest(), metadata=bearer(env.token))
    assert {m.api_name for m in meta.metrics} >= set(ALL_METRICS)
    assert {m.api_name: m.type for m in meta.metrics}["totalRevenue"] == q.METRIC_TYPE_CURRENCY
    assert "engagedSessions / sessions" in {m.expression for m in meta.metrics}
    assert {"country", "pagePath", "sessionDefaultChannelGroup"} <= {d.api_name for d in meta.dimensions}
    assert ["country", "deviceCategory"] in [list(c.dimensions) for c in meta.cubes]
    assert (meta.time_zone, meta.currency_code) == (ZONE, "INR")
    ok = server.stub.CheckCompatibility(
        q.CheckCompatibilityRequest(dimensions=["date", "country", "deviceCategory"], metrics=["sessions"]),
        metadata=bearer(env.token),
    )
    assert (ok.compatible, ok.cube) == (True, "country_device")
    bad = server.stub.CheckCompatibility(
        q.CheckCompatibilityRequest(dimensions=["pagePath", "eventName"], metrics=["sessions", "revenue"]),
        metadata=bearer(env.token),
    )
    assert not bad.compatible
    assert [c.compatibility for c in bad.dimension_compatibilities] == [q.INCOMPATIBLE, q.INCOMPATIBLE]
    assert [c.compatibility for c in bad.metric_compatibilities] == [q.COMPATIBLE, q.INCOMPATIBLE]
    assert "totalRevenue" in bad.metric_compatibilities[1].reason


# ------------------------------------------------------------------------------------- errors/isolation


def call_every_rpc(stub: Any, merchant_id: str, metadata: Any) -> dict[str, grpc.StatusCode]:
    """The status code of each RPC called for `merchant_id` with `metadata` (OK when it succeeds)."""
    date_range = rng(DAYS[0], DAYS[1])
    calls: dict[str, Callable[[], Any]] = {
        "TimeSeries": lambda: stub.TimeSeries(
            q.TimeSeriesRequest(merchant_id=merchant_id, date_range=date_range, metrics=["sessions"]), metadata=metadata
        ),
        "Breakdown": lambda: stub.Breakdown(
            q.BreakdownRequest(
                merchant_id=merchant_id, date_range=date_range, dimensions=["pagePath"], metrics=["sessions"]
            ),
            metadata=metadata,
        ),
        "Totals": lambda: stub.Totals(
            q.TotalsRequest(merchant_id=merchant_id, date_range=date_range, metrics=["sessions"]), metadata=metadata
        ),
        "Realtime": lambda: stub.Realtime(q.RealtimeRequest(merchant_id=merchant_id), metadata=metadata),
        "Metadata": lambda: stub.Metadata(q.MetadataRequest(merchant_id=merchant_id), metadata=metadata),
        "CheckCompatibility": lambda: stub.CheckCompatibility(
            q.CheckCompatibilityRequest(merchant_id=merchant_id, metrics=["sessions"]), metadata=metadata
        ),
    }
    codes: dict[str, grpc.StatusCode] = {}
    for name, call in calls.items():
        try:
            call()
            codes[name] = grpc.StatusCode.OK
        except grpc.RpcError as err:
            codes[name] = err.code()
    return codes


def test_a_token_of_a_reads_only_a(env: Env, server: RunningQuery) -> None:
    own = call_every_rpc(server.stub, env.merchant, bearer(env.token))
    assert set(own.values()) == {grpc.StatusCode.OK}
    assert set(call_every_rpc(server.stub, "", bearer(env.token)).values()) == {grpc.StatusCode.OK}
    other = call_every_rpc(server.stub, env.other, bearer(env.token))
    assert other == dict.fromkeys(own, grpc.StatusCode.PERMISSION_DENIED)
    unknown = call_every_rpc(server.stub, "not-a-merchant", bearer(env.token))
    assert set(unknown.values()) == {grpc.StatusCode.PERMISSION_DENIED}


def test_write_keys_missing_and_revoked_tokens(env: Env, server: RunningQuery) -> None:
    assert set(call_every_rpc(server.stub, env.merchant, bearer(env.write_key)).values()) == {
        grpc.StatusCode.PERMISSION_DENIED
    }
    assert set(call_every_rpc(server.stub, env.merchant, ()).values()) == {grpc.StatusCode.UNAUTHENTICATED}
    assert set(call_every_rpc(server.stub, env.merchant, bearer("gn_r_junk")).values()) == {
        grpc.StatusCode.UNAUTHENTICATED
    }
    created = env.control.create_key(env.merchant, KeyKind.READ)
    env.control.revoke_key(created.key.key_id)
    assert set(call_every_rpc(server.stub, env.merchant, bearer(created.secret)).values()) == {
        grpc.StatusCode.UNAUTHENTICATED
    }


def invalid(call: Callable[[], Any]) -> str:
    with pytest.raises(grpc.RpcError) as info:
        call()
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    status = rpc_status.from_call(err)
    assert status is not None
    assert any(d.Is(error_details_pb2.BadRequest.DESCRIPTOR) for d in status.details)
    return str(err.details())


def test_invalid_requests(env: Env, server: RunningQuery) -> None:
    s, md, r = server.stub, bearer(env.token), rng(DAYS[0], DAYS[1])
    message = invalid(lambda: s.Totals(q.TotalsRequest(date_range=r, metrics=["pageviews"]), metadata=md))
    assert "'pageviews'" in message
    assert "screenPageViews" in message  # the valid names are listed
    message = invalid(
        lambda: s.Breakdown(q.BreakdownRequest(date_range=r, dimensions=["page"], metrics=["sessions"]), metadata=md)
    )
    assert "'page'" in message
    assert "pagePath" in message
    regex = q.FilterExpression(
        filter=q.Filter(
            field_name="pagePath", string_filter=q.StringFilter(match_type=q.StringFilter.FULL_REGEXP, value="(/a")
        )
    )
    assert "regular expression" in invalid(
        lambda: s.Totals(q.TotalsRequest(date_range=r, metrics=["sessions"], dimension_filter=regex), metadata=md)
    )
    assert "together" in invalid(
        lambda: s.Breakdown(
            q.BreakdownRequest(date_range=r, dimensions=["pagePath", "eventName"], metrics=["sessions"]), metadata=md
        )
    )
    assert "date" in invalid(
        lambda: s.Totals(q.TotalsRequest(date_range=rng("yesterday", "2026-13-01"), metrics=["sessions"]), metadata=md)
    )
    assert "limit" in invalid(
        lambda: s.Breakdown(
            q.BreakdownRequest(date_range=r, dimensions=["pagePath"], metrics=["sessions"], limit=-5), metadata=md
        )
    )
    assert "minutes" in invalid(lambda: s.Realtime(q.RealtimeRequest(minutes=45), metadata=md))
    assert "empty filter" in invalid(
        lambda: s.Totals(
            q.TotalsRequest(date_range=r, metrics=["sessions"], metric_filter=q.FilterExpression(
                and_group=q.FilterExpressionList(expressions=[q.FilterExpression()])
            )),
            metadata=md,
        )
    )  # fmt: skip


class SlowStore:
    """A RollupStore whose reads take `delay_s`."""

    def __init__(self, inner: RollupStore, delay_s: float) -> None:
        self._inner = inner
        self._delay = delay_s

    def read(self, *args: Any, **kwargs: Any) -> list[RollupRow]:
        time.sleep(self._delay)
        return self._inner.read(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_deadline_exceeded(env: Env) -> None:
    slow: Any = SlowStore(env.backend.store, 0.3)
    with running_query_server(env.settings, env.deps(slow)) as running:
        with pytest.raises(grpc.RpcError) as info:
            running.stub.Breakdown(
                q.BreakdownRequest(date_range=rng(DAYS[0], DAYS[1]), dimensions=["pagePath"], metrics=["sessions"]),
                metadata=bearer(env.token),
                timeout=0.2,
            )
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        ok = running.stub.Totals(
            q.TotalsRequest(date_range=rng(DAYS[0], DAYS[1]), metrics=["sessions"]), metadata=bearer(env.token)
        )
        assert ok.row_count == 1


def test_health_and_reflection(env: Env, server: RunningQuery) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "gnomon.v1.QueryService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    (answer,) = list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert {"gnomon.v1.QueryService", "grpc.health.v1.Health"} <= names


def test_graceful_stop_reports_not_serving(env: Env) -> None:
    with running_query_server(env.settings, env.deps()) as running:
        health = health_pb2_grpc.HealthStub(running.channel)
        running.server.stop(5)
        statuses = []
        for _ in range(50):
            try:
                statuses.append(health.Check(health_pb2.HealthCheckRequest()).status)
            except grpc.RpcError:
                break
            if statuses[-1] != health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.02)
        request = q.TotalsRequest(date_range=rng(DAYS[0], DAYS[1]), metrics=["sessions"])
        with pytest.raises(grpc.RpcError):  # new calls are refused once stopping
            running.stub.Totals(request, metadata=bearer(env.token))


def test_window_cache_sees_rewritten_windows(env: Env) -> None:
    """With the result cache off, repeated breakdowns reuse closed windows until the aggregator rewrites one."""
    settings = replace(env.settings, cache_entries=0)
    request = q.BreakdownRequest(
        date_range=rng(DAYS[0], DAYS[-1]), dimensions=["pagePath"], metrics=["screenPageViews"]
    )
    with running_query_server(settings, env.deps()) as running:
        first = running.stub.Breakdown(request, metadata=bearer(env.token))
        second = running.stub.Breakdown(request, metadata=bearer(env.token))
        assert list(second.rows) == list(first.rows)
        stats = running.server.engine.window_cache_stats()
        assert stats.hits >= len(DAYS) - 1
        start = day_window(DAYS[3], TZ)[0]
        rewritten = [
            rollup_row(env.merchant, "page", Grain.DAY, start, ("/p/new",), pageviews=10**6,
                       computed_at=datetime(2026, 2, 20, tzinfo=UTC)),
        ]  # fmt: skip
        env.backend.store.replace_window(env.merchant, "page", Grain.DAY, start, 1, rewritten)
        third = running.stub.Breakdown(request, metadata=bearer(env.token))
    assert third.rows[0].dimension_values == ["/p/new"]
    assert third.rows[0].metric_values[0].int_value == 10**6
    others = {x.dims[0] for x in env.expected.select("page", Grain.DAY, DAYS[0], DAYS[-1]) if x.window_start != start}
    assert third.row_count == len(others | {"/p/new"})
    assert running.server.engine.window_cache_stats().invalidated >= 1
