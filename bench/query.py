"""Query benchmark from raw events: the query service over gRPC next to DuckDB over the same events, same run.

What: one merchant (Asia/Kolkata, INR) with `--days` (default 30) local days of synthetic raw events,
`--events-per-day` each (default 1M, so >= 30M events) over a site of `--pages` pages (default 12,000, so
>= 10k distinct pages are browsed every day; the distinct count per day is printed and checked). Two questions:

  (a) series: a 30-day hourly series (merchant-zone hours) of users + pageviews
      (TimeSeries, GRANULARITY_HOUR, activeUsers + screenPageViews);
  (b) top-10: the 30-day top-10 pages by pageviews with users and sessions
      (Breakdown by pagePath, screenPageViews + activeUsers + sessions, limit 10).
Plus, without a DESIGN target, the 30-day hourly pageviews of the top page filtered by pagePath: "page-h" with a
case-sensitive EXACT filter, "page-hi" with the page upper-cased and a case-insensitive one (GA4's default);
their answers must be equal (SQLite, or Cassandra with `--cql-all`: page HOUR rows are not loaded otherwise).

How:
1. Generation (cached): per day, `bench.aggregate_compute.synthetic_day` -> `aggregator.derive.derive` ->
   `aggregator.compute.aggregate_day` (the real aggregation path, DEFAULT_CUBES, default cap of 5,000 values
   per window and cube). Two worker processes (one per core) each build a day, keep the columns DuckDB needs
   of the DERIVED frame as Parquet (one file per day) and pickle the day's rollups; the parent writes them into
   an embedded SQLite rollup store. Everything lives in `~/.cache/gnomon/bench-query/<hash of the
   parameters>`, so a re-run reuses it (and says so).
2. DuckDB baseline over the Parquet files (threads = 2, `--duckdb-runs` runs each, p50 and min): the same
   questions from raw events, with the aggregator's rules: bots excluded; users = COUNT(DISTINCT client_id);
   pageviews = page_view events; sessions per client split after a gap > 30 min or at local midnight, and the
   sessions of a page are the distinct sessions with an event on it (the page cube is event-scoped).
3. Query service over gRPC (in-process server on a free port), result cache OFF so every call plans, reads
   through the closed-window cache, merges the HLL sketches and aggregates: the cold first call on a fresh
   server, then p50/p99 of `--calls` calls. Stores: the embedded SQLite store and/or Cassandra (`--engine cql`
   needs the engines running on the default ports; the rollups are loaded into a fresh keyspace
   `gnomon_bench_query_<token>`, replication factor 1, dropped at the end; only the partitions the two queries
   read, total hour/day and page day, since partitions are per cube and grain: `--cql-all` loads every row).
   The Cassandra calls start once no compaction of the freshly loaded keyspace runs (the wait is printed).
4. The answers are checked against DuckDB (pageviews and sessions exactly, users within HLL error: every
   value within 5 % = ~3 sigma of lg_k 12, and for the 720 hours at most 10 % beyond 3.2 % = the 95 % bound); a
   mismatch is printed loudly and the exit code is 1. The "(other)" row (pages capped by the aggregator) is
   not compared. Then a table: p50/p99 against the DESIGN.md targets (p99 <= 50 ms series, <= 150 ms top-10)
   and the ratio DuckDB p50 / service p50 against >= 5x.

    .venv/bin/python -m bench.query                                   # SQLite, 30 days x 1M events
    .venv/bin/python -m bench.query --engine both
    .venv/bin/python -m bench.query --days 3 --events-per-day 100000 --calls 50    # quick
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gc
import hashlib
import json
import multiprocessing
import os
import pickle
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.timing import percentile, timed_calls

if TYPE_CHECKING:
    from aggregator.rows import DayRollups
    from gnomon.rollups import RollupStore, VersionRegistry
    from gnomon.rollups.sqlite_store import SqliteRollupStore
    from gnomon.v1 import query_pb2

ZONE: Final = "Asia/Kolkata"
CURRENCY: Final = "INR"
MERCHANT: Final = "m-bench-query"
FIRST: Final = date(2026, 1, 1)
SITE_SEED: Final = 7
FORMAT: Final = 3  # bump when the cached files change meaning (3: rollup pickles hold CodedDims)
PARQUET_COLUMNS: Final = ("client_id", "name", "event_time_us", "page_path", "is_bot")
OTHER: Final = "(other)"
QUERIED_BLOCKS: Final = frozenset({("total", "hour"), ("total", "day"), ("page", "day")})  # (cube, grain) read
GAP_US: Final = 30 * 60 * 1_000_000
TARGET_P99_MS: Final = {"series": 50.0, "top-10": 150.0}
TARGET_RATIO: Final = 5.0
FILTERED_CALLS: Final = 20  # the filtered series take ~0.2-0.3 s a call
SETTLE_TIMEOUT_S: Final = 300.0
USERS_MAX_ERROR: Final = 0.05  # ~3 sigma of an lg_k 12 HLL (1.04 / sqrt(4096) = 1.6 %)
USERS_95_ERROR: Final = 0.032  # the sketches' documented 95 % bound
USERS_95_SHARE: Final = 0.10  # at most this share of the values may be beyond USERS_95_ERROR


@dataclass(frozen=True)
class Params:
    days: int
    events_per_day: int
    pages: int
    clients: int

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "format": FORMAT, "zone": ZONE, "first": str(FIRST)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def last(self) -> date:
        return FIRST + timedelta(days=self.days - 1)

    @property
    def closed_before(self) -> datetime:
        """Every window of the range is closed (final) before this instant."""
        return datetime.combine(self.last + timedelta(days=2), datetime.min.time(), tzinfo=UTC)


@dataclass(frozen=True)
class DayInfo:
    index: int
    events: int
    distinct_pages: int
    rows: int
    seconds: float


def _day_paths(cache: Path, index: int) -> tuple[Path, Path]:
    return cache / f"day-{index:03d}.parquet", cache / f"day-{index:03d}.rollups.pkl"


def build_day(index: int, params: Params, cache: Path) -> DayInfo:
    """(Worker process) generate + derive + aggregate one local day; Parquet of the derived events and a pickle
    of the day's rollups into `cache`."""
    from aggregator.compute import aggregate_day
    from aggregator.cubes import DEFAULT_CUBES
    from aggregator.derive import derive
    from bench.aggregate_compute import synthetic_day

    t0 = time.perf_counter()
    day = FIRST + timedelta(days=index)
    # one site for every day, as a real shop has (with a new site a day, yesterday's top page gets one view today,
    # is capped into "(other)" and the 30-day answers differ from DuckDB's by design)
    raw = synthetic_day(
        events=params.events_per_day, clients=params.clients, pages=params.pages, day=day, zone=ZONE,
        merchant_id=MERCHANT, currency=CURRENCY, seed=1_000 + index, site_seed=SITE_SEED,
    )  # fmt: skip
    derived = derive(raw)
    del raw
    parquet, rollups_path = _day_paths(cache, index)
    derived.loc[:, list(PARQUET_COLUMNS)].to_parquet(parquet.with_suffix(".tmp"), index=False)
    parquet.with_suffix(".tmp").rename(parquet)
    rollups = aggregate_day(
        derived, merchant_id=MERCHANT, zone=ZONE, day=day, key_events=frozenset({"purchase"}), cubes=DEFAULT_CUBES,
        currency=CURRENCY,
    )  # fmt: skip
    with rollups_path.with_suffix(".tmp").open("wb") as out:
        pickle.dump(rollups, out, protocol=pickle.HIGHEST_PROTOCOL)
    rollups_path.with_suffix(".tmp").rename(rollups_path)
    return DayInfo(index, len(derived), int(derived["page_path"].nunique()), len(rollups), time.perf_counter() - t0)


def load_rollups(cache: Path, index: int) -> DayRollups:
    with _day_paths(cache, index)[1].open("rb") as f:
        rollups: DayRollups = pickle.load(f)
    return rollups


def _stamp(params: Params) -> dict[str, Any]:
    return {
        "version": 1,
        "computed_at": params.closed_before - timedelta(hours=1),
        "closed_before": params.closed_before,
    }


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    )


def generate(params: Params, cache: Path, workers: int) -> dict[str, Any]:
    """Build (or reuse) the cache: Parquet + rollup pickles per day and the SQLite store. Returns its metadata."""
    meta_path = cache / "meta.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        print(f"reusing the generated data in {cache} (built in {meta['generation_seconds']:.0f} s)")
        return meta
    from gnomon.rollups.sqlite_store import SqliteRollupStore

    cache.mkdir(parents=True, exist_ok=True)
    db = cache / "rollups.sqlite3"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    store = SqliteRollupStore(db, synchronous="OFF")
    infos: list[DayInfo] = []
    t0 = time.perf_counter()
    write_s = 0.0
    todo = [i for i in range(params.days) if not all(p.exists() for p in _day_paths(cache, i))]
    done = [i for i in range(params.days) if i not in todo]
    try:
        with (
            _progress() as progress,
            cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool,
        ):
            task = progress.add_task("generate+derive+aggregate+write days", total=params.days)
            futures = [pool.submit(build_day, i, params, cache) for i in todo]
            for i in done:  # days built by an interrupted earlier run: only (re)write them
                infos.append(_write_day(store, cache, i, params))
                progress.advance(task)
            for future in cf.as_completed(futures):
                info = future.result()
                w0 = time.perf_counter()
                _write_day(store, cache, info.index, params)
                write_s += time.perf_counter() - w0
                infos.append(info)
                progress.advance(task)
    finally:
        store.close()
    infos.sort(key=lambda i: i.index)
    meta = {
        "params": asdict(params),
        "generation_seconds": time.perf_counter() - t0,
        "sqlite_write_seconds": write_s,
        "days": [asdict(i) for i in infos],
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def _write_day(store: SqliteRollupStore, cache: Path, index: int, params: Params) -> DayInfo:
    """Write a cached day's rollups into the SQLite store; its DayInfo (from the cached files)."""
    import pandas as pd

    rollups = load_rollups(cache, index)
    store.write_columns(rollups.columns(**_stamp(params)))
    paths = pd.read_parquet(_day_paths(cache, index)[0], columns=["page_path"])["page_path"]
    return DayInfo(index, len(paths), int(paths.nunique()), len(rollups), 0.0)


# ---------------------------------------------------------------------------------------------------- DuckDB


def _duckdb_sql(cache: Path) -> tuple[str, str]:
    files = f"'{cache}/day-*.parquet'"
    local = f"timezone('{ZONE}', CAST(make_timestamp(event_time_us) AS TIMESTAMPTZ))"
    series = f"""
        SELECT strftime({local}, '%Y%m%d%H') AS hour, COUNT(DISTINCT client_id) AS users,
               COUNT(*) FILTER (WHERE name = 'page_view') AS pageviews
        FROM read_parquet({files}) WHERE NOT is_bot GROUP BY hour ORDER BY hour
    """
    top = f"""
        WITH ev AS (
            SELECT client_id, page_path, name, event_time_us AS t, CAST({local} AS DATE) AS local_day
            FROM read_parquet({files}) WHERE NOT is_bot
        ), lagged AS (
            SELECT *, LAG(t) OVER (PARTITION BY client_id, local_day ORDER BY t) AS prev_t FROM ev
        ), sess AS (
            SELECT *, SUM(CASE WHEN prev_t IS NULL OR t - prev_t > {GAP_US} THEN 1 ELSE 0 END)
                      OVER (PARTITION BY client_id, local_day ORDER BY t RANGE UNBOUNDED PRECEDING) AS sess_no
            FROM lagged
        )
        SELECT page_path, COUNT(*) FILTER (WHERE name = 'page_view') AS pageviews,
               COUNT(DISTINCT client_id) AS users, COUNT(DISTINCT (client_id, local_day, sess_no)) AS sessions
        FROM sess GROUP BY page_path ORDER BY pageviews DESC, page_path LIMIT 11
    """
    return series, top


@dataclass
class Timing:
    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def min(self) -> float:
        return min(self.samples)


def duckdb_baseline(cache: Path, runs: int) -> tuple[dict[str, Timing], dict[str, list[tuple[Any, ...]]]]:
    import duckdb

    series_sql, top_sql = _duckdb_sql(cache)
    con = duckdb.connect(":memory:")
    timings: dict[str, Timing] = {}
    answers: dict[str, list[tuple[Any, ...]]] = {}
    try:
        con.execute("SET threads = 2")
        con.execute("SET TimeZone = 'UTC'")
        for name, sql in (("series", series_sql), ("top-10", top_sql)):
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                answers[name] = [tuple(r) for r in con.execute(sql).fetchall()]
                samples.append((time.perf_counter() - t0) * 1000)
            timings[name] = Timing(samples)
            print(f"duckdb {name:7s}: " + ", ".join(f"{s / 1000:.2f}" for s in samples) + " s")
    finally:
        con.close()
    return timings, answers


# ------------------------------------------------------------------------------------------------ the service


@dataclass
class ServiceRun:
    cold_ms: float
    timing: Timing
    cpu_ms: float
    answer: query_pb2.ReportResponse


def measure(call: Callable[[], query_pb2.ReportResponse], n: int) -> ServiceRun:
    """The cold first call (also the warm-up), then `n` timed calls; CPU = median process CPU per call."""
    t0 = time.perf_counter()
    answer = call()
    cold = (time.perf_counter() - t0) * 1000
    samples, cpu = timed_calls(call, n)
    return ServiceRun(cold, Timing(samples), statistics.median(cpu), answer)


@contextmanager
def open_backend(
    engine: str, cache: Path, params: Params, *, cql_all: bool
) -> Iterator[tuple[RollupStore, VersionRegistry]]:
    """The store and registry of `engine`; Cassandra: a fresh keyspace loaded from the cached rollups: the
    partitions the two queries read (QUERIED_BLOCKS), or every row with `cql_all` (slow: ~7k rows/s here)."""
    from gnomon.rollups import open_rollup_store, open_version_registry
    from gnomon.settings import CommonSettings

    if engine == "sqlite":
        settings = CommonSettings.from_env({"GNOMON_DATA_DIR": str(cache), "GNOMON_ENGINES": "embedded"})
    else:
        keyspace = f"gnomon_bench_query_{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "GNOMON_ENGINES": "real", "GNOMON_CQL_KEYSPACE": keyspace}
        settings = CommonSettings.from_env({**env, "GNOMON_CQL_REPLICATION_FACTOR": "1"})
    store = open_rollup_store(settings)
    registry = None
    try:
        registry = open_version_registry(settings)
        if engine != "sqlite":
            t0 = time.perf_counter()
            n_rows = 0
            with _progress() as progress:
                task = progress.add_task(
                    f"load rollups into Cassandra keyspace {settings.cql.keyspace}", total=params.days
                )
                for i in range(params.days):
                    rollups = load_rollups(cache, i)
                    if not cql_all:
                        blocks = tuple(b for b in rollups.blocks if (b.cube.name, b.grain.value) in QUERIED_BLOCKS)
                        rollups = replace(rollups, blocks=blocks)
                    rows = rollups.rows(**_stamp(params))
                    for start in range(0, len(rows), 20_000):
                        store.write(rows[start : start + 20_000])
                    n_rows += len(rows)
                    del rows
                    progress.advance(task)
            print(f"cql: wrote {n_rows:,} rows in {time.perf_counter() - t0:.0f} s")
            _await_compactions(store, settings.cql.keyspace)
        yield store, registry
    finally:
        if registry is not None:
            registry.close()
        if engine != "sqlite":
            from gnomon.rollups.cql_store import CqlRollupStore

            if isinstance(store, CqlRollupStore):
                store.engine.drop_keyspace()
        store.close()


def _await_compactions(store: RollupStore, keyspace: str) -> None:
    """Wait until Cassandra runs no compaction of `keyspace` (system_views.sstable_tasks), at most
    SETTLE_TIMEOUT_S; print how long it took."""
    from gnomon.rollups.cql_store import CqlRollupStore

    assert isinstance(store, CqlRollupStore)
    t0 = time.monotonic()
    while time.monotonic() - t0 < SETTLE_TIMEOUT_S:
        tasks = store.engine.execute("SELECT keyspace_name FROM system_views.sstable_tasks")
        if not any(task[0] == keyspace for task in tasks):
            print(f"cql: no compaction of {keyspace} running after {time.monotonic() - t0:.1f} s")
            return
        time.sleep(0.5)
    print(f"cql: still compacting {keyspace} after {SETTLE_TIMEOUT_S:.0f} s; measuring anyway")


def profile_engine(engine: Any, name: str, params: Params) -> None:
    """cProfile one warm in-process call of query `name` (no gRPC), the top 18 functions by cumulative time."""
    import cProfile
    import pstats

    from query_svc.model import DateSpec, ReportRequest

    spec = DateSpec(str(FIRST), str(params.last))
    request = (
        ReportRequest(MERCHANT, spec, ("activeUsers", "screenPageViews"), ("dateHour",), fill_time_gaps=True)
        if name == "series"
        else ReportRequest(MERCHANT, spec, ("screenPageViews", "activeUsers", "sessions"), ("pagePath",), limit=10)
    )
    engine.report(request)  # warm
    profile = cProfile.Profile()
    profile.runcall(engine.report, request)
    print(f"--- profile of one warm {name} call (in-process, no gRPC) ---")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(18)


def filtered_series(date_range: query_pb2.DateRange, page: str) -> dict[str, query_pb2.TimeSeriesRequest]:
    """The hourly pageviews of `page`: "page-h" filtered case-sensitively, "page-hi" case-insensitively by the
    page upper-cased."""
    from gnomon.v1 import query_pb2 as q

    def series(value: str, case_sensitive: bool) -> q.TimeSeriesRequest:
        match = q.StringFilter(match_type=q.StringFilter.EXACT, value=value, case_sensitive=case_sensitive)
        return q.TimeSeriesRequest(
            date_range=date_range,
            metrics=["screenPageViews"],
            granularity=q.GRANULARITY_HOUR,
            dimension_filter=q.FilterExpression(filter=q.Filter(field_name="pagePath", string_filter=match)),
        )

    return {"page-h": series(page, True), "page-hi": series(page.upper(), False)}


def run_service(
    engine: str, cache: Path, params: Params, calls: int, *, cql_all: bool, profile: bool
) -> dict[str, ServiceRun]:
    from gnomon.control import KeyKind, SqliteControlStore
    from gnomon.settings import CommonSettings
    from gnomon.telemetry import TelemetrySettings, setup_telemetry
    from gnomon.v1 import query_pb2 as q
    from query_svc.server import QueryDeps
    from query_svc.settings import QuerySettings
    from query_svc.testing import bearer, running_query_server

    date_range = q.DateRange(start_date=str(FIRST), end_date=str(params.last))
    series = q.TimeSeriesRequest(
        date_range=date_range, metrics=["activeUsers", "screenPageViews"], granularity=q.GRANULARITY_HOUR
    )
    top = q.BreakdownRequest(
        date_range=date_range, dimensions=["pagePath"], metrics=["screenPageViews", "activeUsers", "sessions"], limit=10
    )
    now = params.closed_before + timedelta(days=1)
    out: dict[str, ServiceRun] = {}
    with (
        tempfile.TemporaryDirectory(prefix="gnomon-bench-query-") as tmp,
        open_backend(engine, cache, params, cql_all=cql_all) as (
            store,
            registry,
        ),
    ):
        control = SqliteControlStore(Path(tmp) / "control.sqlite3")
        telemetry = setup_telemetry(TelemetrySettings())
        try:
            control.create_merchant("Bench", ZONE, CURRENCY, merchant_id=MERCHANT)
            token = control.create_key(MERCHANT, KeyKind.READ).secret
            gc.collect()
            gc.freeze()  # as `gnomon query serve` does
            deps = QueryDeps(store=store, registry=registry, control=control, telemetry=telemetry, clock=lambda: now)
            settings = QuerySettings(
                common=CommonSettings.from_env({"GNOMON_DATA_DIR": tmp}), port=0, cache_entries=0
            )  # result cache off; the closed-window cache at its default size
            with running_query_server(settings, deps) as running:
                stub, md = running.stub, bearer(token)
                print(f"{engine}: load average {os.getloadavg()[0]:.1f} before the gRPC calls")
                out["series"] = measure(partial(stub.TimeSeries, series, metadata=md), calls)
                out["top-10"] = measure(partial(stub.Breakdown, top, metadata=md), calls)
                if engine == "sqlite" or cql_all:
                    top_page = out["top-10"].answer.rows[0].dimension_values[0]
                    for name, request in filtered_series(date_range, top_page).items():
                        out[name] = measure(partial(stub.TimeSeries, request, metadata=md), FILTERED_CALLS)
                print(f"{engine}: load average {os.getloadavg()[0]:.1f} after the gRPC calls")
                if profile:
                    for name in ("series", "top-10"):
                        profile_engine(running.server.engine, name, params)
        finally:
            gc.unfreeze()
            telemetry.shutdown()
            control.close()
    return out


# ------------------------------------------------------------------------------------------------- checks


def _users_ok(errors: list[float]) -> tuple[bool, str]:
    """Every error within USERS_MAX_ERROR; with >= 50 values also at most USERS_95_SHARE of them beyond the
    95 % bound (not for the top-10: its pages share most of their users, so their sketches err alike)."""
    worst = max(errors, default=0.0)
    beyond = sum(e > USERS_95_ERROR for e in errors)
    ok = worst <= USERS_MAX_ERROR and (len(errors) < 50 or beyond <= USERS_95_SHARE * len(errors))
    return ok, f"users: max error {worst:.2%}, {beyond}/{len(errors)} beyond {USERS_95_ERROR:.1%}"


def _int(value: Any) -> int:
    return int(value.int_value)


def check(engine: str, runs: dict[str, ServiceRun], truth: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Differences between the service's answers and DuckDB's (empty = agree)."""
    problems: list[str] = []
    # (a) series: hour label -> (users, pageviews)
    expected = {str(h): (int(u), int(p)) for h, u, p in truth["series"]}
    got = {
        r.dimension_values[0]: (_int(r.metric_values[0]), _int(r.metric_values[1])) for r in runs["series"].answer.rows
    }
    errors = []
    for hour in sorted(set(expected) | set(got)):
        eu, ep = expected.get(hour, (0, 0))
        gu, gp = got.get(hour, (0, 0))
        if ep != gp:
            problems.append(f"{engine} series {hour}: pageviews {gp} != DuckDB {ep}")
        errors.append(abs(gu - eu) / max(eu, 1))
    ok, text = _users_ok(errors)
    print(f"check {engine} series: {len(got)} hours (DuckDB {len(expected)}), pageviews exact, {text}")
    if not ok:
        problems.append(f"{engine} series {text}")
    # (b) top-10: the pages other than "(other)", rank by rank
    rows = [r for r in runs["top-10"].answer.rows if r.dimension_values[0] != OTHER]
    others = len(runs["top-10"].answer.rows) - len(rows)
    errors = []
    for rank, (row, want) in enumerate(zip(rows, truth["top-10"], strict=False), 1):
        page, (pv, users, sessions) = row.dimension_values[0], (_int(v) for v in row.metric_values)
        if (page, pv, sessions) != (want[0], int(want[1]), int(want[3])):
            problems.append(
                f"{engine} top-10 #{rank}: service {page} pageviews {pv} sessions {sessions};"
                f" DuckDB {want[0]} pageviews {want[1]} sessions {want[3]}"
            )
        errors.append(abs(users - int(want[2])) / max(int(want[2]), 1))
        print(
            f"  #{rank} {page}: pageviews {pv} / DuckDB {want[1]}, sessions {sessions} / {want[3]},"
            f" users {users} / {want[2]} ({users / max(int(want[2]), 1) - 1:+.2%})"
        )
    ok, text = _users_ok(errors)
    print(f"check {engine} top-10: {len(rows)} pages (+{others} '{OTHER}' row), pages/pageviews/sessions exact, {text}")
    if not ok:
        problems.append(f"{engine} top-10 {text}")
    if len(rows) < 9:
        problems.append(f"{engine} top-10: only {len(rows)} pages")
    return problems


# --------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "cql", "both"), default="sqlite")
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pages", type=int, default=12_000, help="pages of the synthetic site")
    parser.add_argument("--clients", type=int, default=0, help="distinct clients a day (default events/day / 20)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--duckdb-runs", type=int, default=3)
    parser.add_argument("--cql-all", action="store_true", help="load every cube into Cassandra, not only the read ones")
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process call of each query")
    parser.add_argument("--workers", type=int, default=2, help="generation processes")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "gnomon" / "bench-query")
    args = parser.parse_args(argv)
    params = Params(args.days, args.events_per_day, args.pages, args.clients or max(1_000, args.events_per_day // 20))
    cache = args.cache_dir / params.key()
    print(f"params {asdict(params)}, cache {cache}, load average {os.getloadavg()[0]:.1f}")

    meta = generate(params, cache, args.workers)
    days = meta["days"]
    events = sum(d["events"] for d in days)
    distinct = [d["distinct_pages"] for d in days]
    print(
        f"data: {events:,} events in {len(days)} days, distinct pages a day min {min(distinct):,} max"
        f" {max(distinct):,}, {sum(d['rows'] for d in days):,} rollup rows;"
        f" generation {meta['generation_seconds']:.0f} s wall (SQLite writes {meta['sqlite_write_seconds']:.0f} s)"
    )

    print(f"DuckDB over {len(days)} Parquet files, threads 2, load average {os.getloadavg()[0]:.1f}")
    duck, truth = duckdb_baseline(cache, args.duckdb_runs)

    engines = ("sqlite", "cql") if args.engine == "both" else (args.engine,)
    results = {
        engine: run_service(engine, cache, params, args.calls, cql_all=args.cql_all, profile=args.profile)
        for engine in engines
    }

    problems = [p for engine in engines for p in check(engine, results[engine], truth)]
    print()
    header = (
        f"{'query':7s} {'store':6s} {'cold':>8s} {'p50':>8s} {'p99':>8s} {'cpu/call':>8s} {'target':>8s} {'':4s}"
        f" {'DuckDB p50':>10s} {'(min)':>8s} {'ratio':>7s} {'':4s}"
    )
    print(header)
    print("-" * len(header))
    for engine in engines:
        for name in ("series", "top-10"):
            run = results[engine][name]
            target = TARGET_P99_MS[name]
            ratio = duck[name].p50 / run.timing.p50
            print(
                f"{name:7s} {engine:6s} {run.cold_ms:6.1f}ms {run.timing.p50:6.1f}ms {run.timing.p99:6.1f}ms"
                f" {run.cpu_ms:6.1f}ms {'<=' + str(int(target)) + 'ms':>8s} {_verdict(run.timing.p99 <= target)}"
                f" {duck[name].p50:8.0f}ms {duck[name].min:6.0f}ms {ratio:6.1f}x {_verdict(ratio >= TARGET_RATIO)}"
            )
    for engine in engines:
        filtered = [name for name in ("page-h", "page-hi") if name in results[engine]]
        for name in filtered:
            run = results[engine][name]
            print(
                f"{name:7s} {engine:6s} {run.cold_ms:6.1f}ms {run.timing.p50:6.1f}ms {run.timing.p99:6.1f}ms"
                f" {run.cpu_ms:6.1f}ms  (filtered hourly series of the top page; no target)"
            )
        if filtered and not results[engine]["page-h"].answer.rows:
            problems.append(f"{engine}: the filtered series of the top page has no rows")
        if filtered and results[engine]["page-h"].answer.rows != results[engine]["page-hi"].answer.rows:
            problems.append(f"{engine}: the case-insensitive filter answered differently from the case-sensitive one")
    print(
        f"(ratio = DuckDB p50 / service p50, target >= {TARGET_RATIO:.0f}x; load average now {os.getloadavg()[0]:.1f})"
    )
    if problems:
        print("\n!!! MISMATCH (the query service against DuckDB, or the two filtered answers) !!!")
        for p in problems:
            print("  " + p)
        return 1
    return 0


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


if __name__ == "__main__":
    raise SystemExit(main())
