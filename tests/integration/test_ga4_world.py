"""The world of the GA4 end-to-end tests (test_ga4_reports, test_ga4_ranges, test_ga4_realtime_meta); no tests.

The official client (`BetaAnalyticsDataClient`, unchanged, over a gRPC channel that adds the read token) against
raw events -> derive -> compute_day -> embedded RollupStore -> query server (port 0) serving BetaAnalyticsData
beside gnomon.v1.QueryService, plus raw realtime events in the embedded EventStore.

Every number is checked twice: equal to the same report from gnomon.v1.QueryService (exactly: same engine), and
equal to an independent computation — the DuckDB reference over the raw events (`aggregator.ground_truth`) for
counters and ratios, plain pandas distinct counts for users across windows (HLL: within 3 standard errors).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Filter,
    FilterExpression,
    FilterExpressionList,
    Metric,
    MetricType,
    NumericValue,
    RunReportRequest,
    RunReportResponse,
)
from google.protobuf import json_format

from aggregator import frame as f
from aggregator.compute import compute_day
from aggregator.cubes import DEFAULT_CUBES
from aggregator.derive import derive
from aggregator.eventstore import DAY, SqliteEventStore, day_number
from aggregator.ground_truth import as_dict, ground_truth
from aggregator.timezones import to_us
from bench.aggregate_compute import synthetic_day
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups.sketches import SKETCH_LG_K
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import query_pb2 as q
from query_svc.ga4.testing import RunningGa4, running_ga4_server
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import bearer

ZONE = "Asia/Kolkata"
TZ = ZoneInfo(ZONE)
MERCHANT = "m-ga4-a"
OTHER = "m-ga4-b"
PROPERTY = f"properties/{MERCHANT}"
CURRENCY = "INR"
KEY_EVENTS = frozenset({"purchase"})
DAYS = (date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1))  # Fri, Sat, Sun: a month and a GA4 week boundary
NOW = datetime(2026, 2, 2, 6, 0, 30, tzinfo=UTC)  # 11:30:30 on Mon 2 Feb in Kolkata
RSE = 1.04 / math.sqrt(1 << SKETCH_LG_K)
ALL_METRICS = (
    "activeUsers",
    "totalUsers",
    "newUsers",
    "sessions",
    "engagedSessions",
    "engagementRate",
    "bounceRate",
    "averageSessionDuration",
    "screenPageViews",
    "eventCount",
    "keyEvents",
    "totalRevenue",
)
USERS = frozenset({"activeUsers", "totalUsers", "newUsers"})
Truth = dict[tuple[str, str, int, tuple[str, ...]], dict[str, int]]
Table = list[tuple[tuple[str, ...], dict[str, Any]]]


@dataclass
class World:
    events: pd.DataFrame  # derived events of MERCHANT, every day
    truth: Truth
    realtime: pd.DataFrame  # raw realtime events of MERCHANT: client, minutes before NOW, name, page, bot
    running: RunningGa4
    token: str
    other_token: str
    client: BetaAnalyticsDataClient


MINUTE0 = NOW.replace(second=0, microsecond=0)  # the current minute began here


def _realtime_frame(merchant: str, rows: Sequence[tuple[str, int, str, str, bool]]) -> pd.DataFrame:
    """Raw events at the START of the minute `ago` minutes before the current one (-1: inside the current minute,
    12 s before NOW). Exact minute starts are "k minutes ago" under every bucketing convention."""
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    bot = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    data: dict[str, list[Any]] = {c: [] for c in (*f.RAW_COLUMNS, DAY)}
    for i, (client, ago, name, page, is_bot) in enumerate(rows):
        at = NOW - timedelta(seconds=12) if ago < 0 else MINUTE0 - timedelta(minutes=ago)
        row: dict[str, Any] = dict.fromkeys(f.RAW_COLUMNS, "")
        row.update(
            {
                f.MERCHANT_ID: merchant,
                f.EVENT_ID: f"rt-{merchant}-{i}",
                f.NAME: name,
                f.EVENT_TIME_US: to_us(at),
                f.RECEIVED_TIME_US: to_us(at),
                f.CLIENT_ID: client,
                f.USER_AGENT: bot if is_bot else chrome,
                f.REVENUE_MICROS: 0,
                f.PAGE_PATH: page,
                DAY: day_number(at.astimezone(TZ).date()),
            }
        )
        for column, target in data.items():
            target.append(row[column])
    frame = pd.DataFrame(data)
    frame["ago"] = [max(r[1], 0) for r in rows]  # the expected minutesAgo (ignored by the store)
    return frame


REALTIME_ROWS = [  # client, minutes ago (-1: the current minute), event name, page, bot
    *[(f"c{i % 7}", i - 1, "page_view", f"/rt/{i % 3}", False) for i in range(30)],
    *[(f"c{i % 4}", 2 * i, "scroll", "/rt/0", False) for i in range(12)],
    ("c9", 5, "purchase", "/rt/1", False),
    ("c1", 30, "page_view", "/rt/0", False),  # outside the 30 minutes
    ("bot", 1, "page_view", "/rt/0", True),  # excluded
]


@pytest.fixture(scope="module", name="world")
def world_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("ga4")
    store = SqliteRollupStore(tmp / "rollups.sqlite3", synchronous="OFF")
    registry = SqliteVersionRegistry(tmp / "rollups.sqlite3", synchronous="OFF")
    frames = []
    for i, day in enumerate(DAYS):
        frame = derive(
            synthetic_day(
                events=6_000, clients=700, pages=60, day=day, zone=ZONE, merchant_id=MERCHANT, currency=CURRENCY, seed=i
            )
        )
        store.write(
            compute_day(
                frame,
                merchant_id=MERCHANT,
                zone=ZONE,
                day=day,
                version=1,
                computed_at=NOW,
                key_events=KEY_EVENTS,
                closed_before=NOW,
                cubes=DEFAULT_CUBES,
                currency=CURRENCY,
            )
        )
        frames.append(frame)
    other = derive(
        synthetic_day(
            events=2_000,
            clients=100,
            pages=10,
            day=DAYS[1],
            zone="Europe/Berlin",
            merchant_id=OTHER,
            currency="EUR",
            seed=99,
        )
    )
    store.write(
        compute_day(
            other,
            merchant_id=OTHER,
            zone="Europe/Berlin",
            day=DAYS[1],
            version=1,
            computed_at=NOW,
            key_events=KEY_EVENTS,
            closed_before=NOW,
            cubes=DEFAULT_CUBES,
            currency="EUR",
        )
    )
    events = pd.concat(frames, ignore_index=True)
    truth = as_dict(ground_truth(events, zone=ZONE, key_events=KEY_EVENTS, currency=CURRENCY, cubes=DEFAULT_CUBES))
    event_store = SqliteEventStore(tmp / "eventstore.sqlite3")
    realtime = _realtime_frame(MERCHANT, REALTIME_ROWS)
    event_store.upsert(realtime.drop(columns="ago"))
    event_store.upsert(_realtime_frame(OTHER, [("o1", 1, "page_view", "/other", False)] * 3).drop(columns="ago"))
    control = SqliteControlStore(tmp / "control.sqlite3")
    control.create_merchant("A", ZONE, CURRENCY, merchant_id=MERCHANT)
    control.create_merchant("B", "Europe/Berlin", "EUR", merchant_id=OTHER)
    token = control.create_key(MERCHANT, KeyKind.READ).secret
    other_token = control.create_key(OTHER, KeyKind.READ).secret
    telemetry = setup_telemetry(TelemetrySettings())
    settings = QuerySettings(common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp)}), port=0)
    deps = QueryDeps(
        store=store,
        registry=registry,
        control=control,
        telemetry=telemetry,
        event_store=event_store,
        clock=lambda: NOW,
    )
    with running_ga4_server(settings, deps) as running:
        yield World(events, truth, realtime, running, token, other_token, running.client(token))
    telemetry.shutdown()
    event_store.close()
    control.close()
    registry.close()
    store.close()


# ------------------------------------------------------------------------------------------------ helpers


def dims(*names: str) -> list[Dimension]:
    return [Dimension(name=n) for n in names]


def mets(*names: str) -> list[Metric]:
    return [Metric(name=n) for n in names]


def rng(start: date | str, end: date | str, name: str = "") -> DateRange:
    return DateRange(start_date=str(start), end_date=str(end), name=name)


def qrange(start: date | str, end: date | str) -> q.DateRange:
    return q.DateRange(start_date=str(start), end_date=str(end))


def report(world: World, **fields: Any) -> RunReportResponse:
    return world.client.run_report(RunReportRequest(property=PROPERTY, **fields))


def _parse(value: str, kind: MetricType) -> Any:
    if kind == MetricType.TYPE_INTEGER:
        assert re.fullmatch(r"-?\d+", value), value  # integers as "123"
        return int(value)
    if kind == MetricType.TYPE_CURRENCY:
        assert "e" not in value.lower(), value
        return Decimal(value)
    assert kind in (MetricType.TYPE_FLOAT, MetricType.TYPE_SECONDS), kind
    return float(value)


def ga4_table(response: Any, rows: Any = None) -> Table:
    """(dimension values, {metric: typed value}) per row of a GA4 response (its `rows` unless given)."""
    headers = [(h.name, h.type_) for h in response.metric_headers]
    return [
        (
            tuple(d.value for d in row.dimension_values),
            {name: _parse(v.value, kind) for (name, kind), v in zip(headers, row.metric_values, strict=True)},
        )
        for row in (response.rows if rows is None else rows)
    ]


def _qs_value(value: q.MetricValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "decimal_value":
        return Decimal(value.decimal_value)
    assert kind is not None
    return getattr(value, kind)


def qs_row(row: q.Row, headers: Sequence[q.MetricHeader]) -> tuple[tuple[str, ...], dict[str, Any]]:
    return tuple(row.dimension_values), {h.name: _qs_value(v) for h, v in zip(headers, row.metric_values, strict=True)}


def qs_table(response: q.ReportResponse) -> Table:
    return [qs_row(row, response.metric_headers) for row in response.rows]


def qs_filter(expression: FilterExpression) -> q.FilterExpression:
    """The same filter as a gnomon.v1 message (the two protos share field names)."""
    as_json = json_format.MessageToDict(FilterExpression.pb(expression))
    return json_format.ParseDict(as_json, q.FilterExpression())


def qs(world: World) -> Any:
    return world.running.stub


def md(world: World) -> Any:
    return bearer(world.token)


def local_label(window_us: int, fmt: str) -> str:
    return datetime.fromtimestamp(window_us / 1e6, UTC).astimezone(TZ).strftime(fmt)


def truth_by(
    world: World, cube: str, grain: str, key: Callable[[int, tuple[str, ...]], str | None]
) -> dict[str, dict[str, int]]:
    """Reference counters of `cube`/`grain` summed per key(window_us, dims) (None: left out)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (c, g, window, d), values in world.truth.items():
        k = key(window, d) if c == cube and g == grain else None
        if k is not None:
            for name, value in values.items():
                out[k][name] += value
    return out


def expected(c: dict[str, int]) -> dict[str, Any]:
    """Metric values from reference counters (users left to the caller)."""
    sessions = c["sessions"]
    return {
        "sessions": sessions,
        "engagedSessions": c["engaged_sessions"],
        "engagementRate": c["engaged_sessions"] / sessions if sessions else 0.0,
        "bounceRate": c["bounces"] / sessions if sessions else 0.0,
        "averageSessionDuration": c["session_duration_ms"] / 1000 / sessions if sessions else 0.0,
        "screenPageViews": c["pageviews"],
        "eventCount": c["events"],
        "keyEvents": c["key_events"],
        "totalRevenue": Decimal(c["revenue_micros"]).scaleb(-6),
    }


def assert_truth(got: dict[str, Any], c: dict[str, int], users: dict[str, int] | None = None) -> None:
    """`got` equals the reference: counters exactly, ratios to 1e-12, users within the HLL error."""
    want = expected(c)
    for name, value in got.items():
        if name in USERS:
            exact = (users or {}).get(name, c["new_users" if name == "newUsers" else "users"])
            assert abs(value - exact) <= 3 * RSE * exact + 1, (name, value, exact)
        elif isinstance(want[name], float):
            assert value == pytest.approx(want[name], rel=1e-12, abs=1e-12), name
        else:
            assert value == want[name], name


def real(world: World) -> pd.DataFrame:
    return world.events.loc[~world.events[f.IS_BOT].astype(bool)]


def exact_users(events: pd.DataFrame) -> dict[str, int]:
    return {
        "activeUsers": int(events[f.CLIENT_ID].nunique()),
        "totalUsers": int(events[f.CLIENT_ID].nunique()),
        "newUsers": int(events.loc[events[f.NAME] == "first_visit", f.CLIENT_ID].nunique()),
    }


# ------------------------------------------------------------------------------------------ filters


def string_filter(field: str, value: str, match: int, case_sensitive: bool = False) -> Any:
    return FilterExpression(
        filter=Filter(
            field_name=field,
            string_filter=Filter.StringFilter(match_type=match, value=value, case_sensitive=case_sensitive),
        )
    )


def in_list(field: str, values: Sequence[str], case_sensitive: bool = False) -> FilterExpression:
    return FilterExpression(
        filter=Filter(
            field_name=field, in_list_filter=Filter.InListFilter(values=values, case_sensitive=case_sensitive)
        )
    )


def numeric(field: str, op: int, value: float | int) -> FilterExpression:
    number = NumericValue(int64_value=value) if isinstance(value, int) else NumericValue(double_value=value)
    return FilterExpression(
        filter=Filter(field_name=field, numeric_filter=Filter.NumericFilter(operation=op, value=number))
    )


def between(field: str, low: float, high: float) -> FilterExpression:
    return FilterExpression(
        filter=Filter(
            field_name=field,
            between_filter=Filter.BetweenFilter(
                from_value=NumericValue(double_value=low), to_value=NumericValue(double_value=high)
            ),
        )
    )


def all_of(*items: FilterExpression) -> FilterExpression:
    return FilterExpression(and_group=FilterExpressionList(expressions=items))


def any_of(*items: FilterExpression) -> FilterExpression:
    return FilterExpression(or_group=FilterExpressionList(expressions=items))


def negate(item: FilterExpression) -> FilterExpression:
    return FilterExpression(not_expression=item)


M = Filter.StringFilter.MatchType
OP = Filter.NumericFilter.Operation


def country_between(start: date, end: date) -> Callable[[int, tuple[str, ...]], str | None]:
    def key(window_us: int, dims: tuple[str, ...]) -> str | None:
        day = datetime.fromtimestamp(window_us / 1e6, UTC).astimezone(TZ).date()
        return dims[0] if start <= day <= end else None

    return key


def qs_totals(world: World, start: date, end: date, metrics: Sequence[str]) -> dict[str, Any]:
    response = qs(world).Totals(q.TotalsRequest(date_range=qrange(start, end), metrics=metrics), metadata=md(world))
    return qs_row(response.totals, response.metric_headers)[1]


def realtime_events(world: World, start: int = 29, end: int = 0) -> pd.DataFrame:
    """Independent: the non-bot events of minutes [end, start] ago (as written, not as the server buckets them)."""
    events = world.realtime
    bot = events[f.USER_AGENT].str.contains("bot")
    return events.loc[~bot & (events["ago"] >= end) & (events["ago"] <= start)]
