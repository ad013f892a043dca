"""Known traffic for the dashboard's browser tests, its first-paint benchmark and demos; a running stack.

- `generate_visits`: seeded, reproducible visits (one page per visit, so event- and session-scoped cubes agree).
- `visit_rollups`: those visits rolled up into HOUR and DAY rows of every default cube the visit attributes
  cover (total, page, country, device, browser, os, source_medium, channel and their pairs), written straight
  into a RollupStore — the aggregator's job, done exactly for this simple traffic.
- `raw_events`: an event frame for `EventStore.upsert` (what Realtime reads).
- `running_dashboard`: control store (a merchant, a read and a write token), rollup and event stores under one
  data dir, the gRPC query server and the web server sharing one QueryEngine.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from aggregator import frame as f
from aggregator.cubes import DEFAULT_CUBES, Cube
from aggregator.eventstore import DAY, EVENTSTORE_FILE_NAME, SqliteEventStore, day_number
from aggregator.timezones import to_us
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups import Grain, Metrics, RollupKey, RollupRow, day_window, hour_window_start, sketch_of
from gnomon.rollups.sqlite_store import ROLLUPS_FILE_NAME, SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings
from gnomon.telemetry import Exporter, TelemetrySettings, setup_telemetry
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import RunningQuery, running_query_server
from query_svc.web.server import WebServer, create_web_server
from query_svc.web.settings import WebSettings

COMPUTED_AT = datetime(2026, 1, 1, tzinfo=UTC)

CHROME_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.0 Mobile/15E148 Safari/604.1"
)

COUNTRIES = ("India", "United States", "Germany", "France", "Brazil", "Japan", "United Kingdom", "Canada")
DEVICES = (("desktop", "Chrome", "Windows"), ("mobile", "Safari", "iOS"), ("mobile", "Chrome Mobile", "Android"),
           ("desktop", "Firefox", "Linux"), ("tablet", "Safari", "iOS"), ("desktop", "Edge", "Windows"))  # fmt: skip
SOURCES = (("google", "organic", "Organic Search"), ("(direct)", "(none)", "Direct"),
           ("newsletter", "email", "Email"), ("facebook.com", "referral", "Organic Social"),
           ("bing", "organic", "Organic Search"), ("google", "cpc", "Paid Search"))  # fmt: skip

_ATTRIBUTE_OF_COLUMN = {
    f.PAGE_PATH: "page",
    f.COUNTRY_NAME: "country",
    f.DEVICE_CATEGORY: "device",
    f.BROWSER: "browser",
    f.OS: "os",
    f.SOURCE: "source",
    f.MEDIUM: "medium",
    f.CHANNEL: "channel",
}


@dataclass(frozen=True)
class Visit:
    """One session on one page: `pageviews` page_view events (+ a purchase when `revenue_micros` > 0)."""

    start: datetime  # UTC
    user: str
    page: str
    country: str
    device: str
    browser: str
    os: str
    source: str
    medium: str
    channel: str
    pageviews: int
    duration_ms: int
    revenue_micros: int = 0
    first_visit: bool = False

    @property
    def bounced(self) -> bool:
        return self.pageviews == 1 and self.duration_ms < 10_000 and not self.revenue_micros

    def attribute(self, column: str) -> str:
        value: str = getattr(self, _ATTRIBUTE_OF_COLUMN[column])
        return value


def _weighted(rng: random.Random, n: int) -> int:
    """An index in [0, n) with a Zipf-like skew (index 0 is the most frequent)."""
    return min(n - 1, int(n * rng.random() ** 2.2))


def generate_visits(
    zone: ZoneInfo,
    days: Sequence[date],
    now: datetime,
    *,
    visits_per_day: int,
    seed: int = 7,
    pages: int = 40,
    users: int = 2_000,
) -> list[Visit]:
    """Reproducible visits on the local `days` of `zone`, none at or after `now` (UTC)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test traffic, not secrets
    page_paths = ["/"] + [f"/products/item-{i:04d}" if i % 3 else f"/blog/post-{i:04d}" for i in range(1, pages)]
    seen: set[str] = set()
    visits: list[Visit] = []
    for day in days:
        start, end = day_window(day, zone)
        span = (end - start).total_seconds()
        for _ in range(visits_per_day):
            at = start + timedelta(seconds=int(rng.random() * span))
            if at >= now:
                continue
            user = f"user-{_weighted(rng, users):06d}"
            device, browser, os_name = DEVICES[_weighted(rng, len(DEVICES))]
            source, medium, channel = SOURCES[_weighted(rng, len(SOURCES))]
            pageviews = 1 + _weighted(rng, 6)
            buys = rng.random() < 0.04
            visits.append(
                Visit(
                    start=at.replace(microsecond=0),
                    user=user,
                    page=page_paths[_weighted(rng, len(page_paths))],
                    country=COUNTRIES[_weighted(rng, len(COUNTRIES))],
                    device=device,
                    browser=browser,
                    os=os_name,
                    source=source,
                    medium=medium,
                    channel=channel,
                    pageviews=pageviews,
                    duration_ms=0 if pageviews == 1 and rng.random() < 0.7 else rng.randrange(5_000, 900_000),
                    revenue_micros=rng.randrange(5, 400) * 250_000 if buys else 0,
                    first_visit=user not in seen,
                )
            )
            seen.add(user)
    return sorted(visits, key=lambda v: v.start)


@dataclass
class _Sums:
    events: int = 0
    pageviews: int = 0
    sessions: int = 0
    engaged: int = 0
    bounces: int = 0
    duration_ms: int = 0
    revenue_micros: int = 0
    key_events: int = 0
    users: set[str] = field(default_factory=set)
    new_users: set[str] = field(default_factory=set)

    def add(self, v: Visit) -> None:
        bought = 1 if v.revenue_micros else 0
        self.events += v.pageviews + bought + (1 if v.first_visit else 0)
        self.pageviews += v.pageviews
        self.sessions += 1
        self.bounces += 1 if v.bounced else 0
        self.engaged += 0 if v.bounced else 1
        self.duration_ms += v.duration_ms
        self.revenue_micros += v.revenue_micros
        self.key_events += bought
        self.users.add(v.user)
        if v.first_visit:
            self.new_users.add(v.user)


def dashboard_cubes() -> list[Cube]:
    """The default cubes whose every dimension is an attribute of `Visit`."""
    return [c for c in DEFAULT_CUBES if all(d in _ATTRIBUTE_OF_COLUMN for d in c.dimensions)]


def visit_rollups(
    merchant_id: str,
    zone: ZoneInfo,
    visits: Iterable[Visit],
    now: datetime,
    *,
    hour_cubes: Iterable[str] | None = None,
    version: int = 1,
) -> list[RollupRow]:
    """HOUR and DAY rows of every `dashboard_cubes()` cube (HOUR rows only for `hour_cubes`, default all).

    Rows of windows still open at `now` are provisional."""
    cubes = dashboard_cubes()
    hourly = {c.name for c in cubes} if hour_cubes is None else set(hour_cubes)
    sums: dict[tuple[str, Grain, datetime, tuple[str, ...]], _Sums] = defaultdict(_Sums)
    for v in visits:
        hour = hour_window_start(v.start, zone)
        day = day_window(v.start.astimezone(zone).date(), zone)[0]
        for cube in cubes:
            dims = tuple(v.attribute(d) for d in cube.dimensions)
            sums[(cube.name, Grain.DAY, day, dims)].add(v)
            if cube.name in hourly:
                sums[(cube.name, Grain.HOUR, hour, dims)].add(v)
    rows = []
    for (cube_name, grain, start, dims), s in sums.items():
        end = start + timedelta(hours=1) if grain is Grain.HOUR else day_window(start.astimezone(zone).date(), zone)[1]
        rows.append(
            RollupRow(
                RollupKey(merchant_id, cube_name, grain, start, dims, version),
                Metrics(
                    events=s.events,
                    pageviews=s.pageviews,
                    sessions=s.sessions,
                    engaged_sessions=s.engaged,
                    bounces=s.bounces,
                    session_duration_ms=s.duration_ms,
                    revenue_micros=s.revenue_micros,
                    key_events=s.key_events,
                    users=sketch_of(sorted(s.users)),
                    new_users=sketch_of(sorted(s.new_users)),
                ),
                end > now,
                COMPUTED_AT,
            )
        )
    return rows


@dataclass(frozen=True)
class RawEvent:
    client_id: str
    at: datetime  # UTC
    page_path: str
    name: str = "page_view"
    user_agent: str = CHROME_DESKTOP


def raw_events(merchant_id: str, zone: ZoneInfo, events: Sequence[RawEvent], prefix: str = "rt") -> pd.DataFrame:
    """An event frame (RAW_COLUMNS + DAY) for `EventStore.upsert`; event ids are `<prefix>-<i>`."""
    columns: dict[str, list[object]] = {c: [] for c in (*f.RAW_COLUMNS, DAY)}
    for i, e in enumerate(events):
        values: dict[str, object] = {c: "" for c in f.RAW_COLUMNS}
        values.update(
            {
                f.MERCHANT_ID: merchant_id,
                f.EVENT_ID: f"{prefix}-{i}",
                f.NAME: e.name,
                f.EVENT_TIME_US: to_us(e.at),
                f.RECEIVED_TIME_US: to_us(e.at),
                f.CLIENT_ID: e.client_id,
                f.USER_AGENT: e.user_agent,
                f.PAGE_PATH: e.page_path,
                f.PAGE_URL: f"https://shop.example{e.page_path}",
                f.REVENUE_MICROS: 0,
                DAY: day_number(e.at.astimezone(zone).date()),
            }
        )
        for c, column in columns.items():
            column.append(values[c])
    return pd.DataFrame(columns)


@dataclass
class Dashboard:
    """A running stack: `url` (the web app), `grpc` (the gRPC query server), tokens and stores."""

    merchant_id: str
    zone: ZoneInfo
    currency: str
    read_token: str
    write_token: str
    data_dir: Path
    web: WebServer
    grpc: RunningQuery
    rollups: SqliteRollupStore
    events: SqliteEventStore
    control: SqliteControlStore

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}/"


@contextmanager
def running_dashboard(
    data_dir: Path,
    *,
    zone: str = "Asia/Kolkata",
    currency: str = "INR",
    static_dir: Path | None = None,
    name: str = "Acme Shop",
    cors_origins: tuple[str, ...] = (),
    max_concurrent: int = 64,
) -> Iterator[Dashboard]:
    """Stores under `data_dir` (a merchant with a read and a write token), the gRPC query server and the web
    server (both on free ports, sharing one QueryEngine). Stops and closes everything on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    control = SqliteControlStore(data_dir / "control.sqlite3")
    merchant = control.create_merchant(name, zone, currency)
    read = control.create_key(merchant.merchant_id, KeyKind.READ, "dashboard").secret
    write = control.create_key(merchant.merchant_id, KeyKind.WRITE, "tests").secret
    rollups = SqliteRollupStore(data_dir / ROLLUPS_FILE_NAME)
    registry = SqliteVersionRegistry(data_dir / ROLLUPS_FILE_NAME)
    events = SqliteEventStore(data_dir / EVENTSTORE_FILE_NAME)
    telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY))
    common = CommonSettings.from_env({"GNOMON_DATA_DIR": str(data_dir)})
    query_settings = QuerySettings(common=common, port=0, workers=4)
    deps = QueryDeps(rollups, registry, control, telemetry, event_store=events)
    web_settings = WebSettings(query=query_settings, port=0, cors_origins=cors_origins, max_concurrent=max_concurrent)
    if static_dir is not None:
        web_settings = replace(web_settings, static_dir=static_dir)
    try:
        with running_query_server(query_settings, deps) as grpc_server:
            web, _ = create_web_server(web_settings, deps, engine=grpc_server.server.engine)
            web.start()
            try:
                yield Dashboard(
                    merchant.merchant_id, ZoneInfo(zone), currency, read, write, data_dir, web, grpc_server,
                    rollups, events, control,
                )  # fmt: skip
            finally:
                web.stop(0)
    finally:
        events.close()
        registry.close()
        rollups.close()
        control.close()
        telemetry.shutdown()
