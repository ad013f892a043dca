"""Query latency: a 30-day hourly series and a 30-day top-10 pages breakdown over gRPC, p50/p99 of N calls.

Synthetic rollup rows are written straight into the store (no aggregator): per local day of a merchant in
Asia/Kolkata, 24 `total` HOUR rows, one `total` DAY row and `--pages` `page` DAY rows (default 10,000), each
with a realistic HLL user sketch. Then the query service answers the two queries `--calls` times each, with
the result cache off (every call reads and aggregates: the cold path) and on (repeat calls are cache hits).

    python -m bench.query_latency                    # embedded SQLite store
    python -m bench.query_latency --engine cql       # Cassandra (needs `gnomon engines up`)
    python -m bench.query_latency --profile          # also cProfile one cold call of each query in-process
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.timing import percentile, timed_calls
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups import Grain, Metrics, RollupKey, RollupRow, RollupStore, VersionRegistry, day_window, sketch_of
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import query_pb2 as q
from query_svc.model import DateSpec, ReportRequest
from query_svc.server import QueryDeps
from query_svc.settings import QuerySettings
from query_svc.testing import bearer, running_query_server

ZONE = "Asia/Kolkata"
FIRST = date(2026, 1, 1)
DAYS = 30
NOW = datetime(2026, 3, 1, tzinfo=UTC)
COMPUTED = datetime(2026, 2, 1, tzinfo=UTC)


def synthetic_rows(merchant: str, pages: int, seed: int = 0) -> list[list[RollupRow]]:
    """One list of rows per day."""
    rng = np.random.default_rng(seed)
    palette = [sketch_of([f"u{i}-{j}" for j in range(k)]) for i, k in enumerate([1, 1, 2, 3, 5, 8, 13, 40, 200])]
    weights = 1.0 / np.arange(1, pages + 1)  # Zipf-like page popularity
    out: list[list[RollupRow]] = []
    for d in range(DAYS):
        start, _ = day_window(FIRST + timedelta(days=d), ZONE)
        rows: list[RollupRow] = []
        views = rng.poisson(weights * 200_000 / weights.sum() + 1)
        day_users = sketch_of([f"d{d}-{j}" for j in range(5_000)])
        for h in range(24):
            hour_users = sketch_of([f"d{d}-{j}" for j in range(h * 200, h * 200 + 400)])
            rows.append(
                RollupRow(
                    RollupKey(merchant, "total", Grain.HOUR, start + timedelta(hours=h)),
                    Metrics(events=int(views.sum() // 24), pageviews=int(views.sum() // 24), sessions=500 + h,
                            engaged_sessions=300, bounces=200 + h, session_duration_ms=9_000_000, users=hour_users),
                    False, COMPUTED,
                )
            )  # fmt: skip
        rows.append(
            RollupRow(
                RollupKey(merchant, "total", Grain.DAY, start),
                Metrics(events=int(views.sum()), pageviews=int(views.sum()), sessions=12_000, engaged_sessions=7_000,
                        bounces=5_000, session_duration_ms=216_000_000, users=day_users),
                False, COMPUTED,
            )
        )  # fmt: skip
        for p in range(pages):
            v = int(views[p])
            rows.append(
                RollupRow(
                    RollupKey(merchant, "page", Grain.DAY, start, (f"/section-{p % 37}/page-{p}",)),
                    Metrics(events=v + 2, pageviews=v, sessions=max(1, v // 2), engaged_sessions=v // 3,
                            bounces=max(1, v // 2) - v // 3, session_duration_ms=v * 30_000,
                            users=palette[min(len(palette) - 1, int(np.log2(v + 1)))]),
                    False, COMPUTED,
                )
            )  # fmt: skip
        out.append(rows)
    return out


def write_synthetic_rows(store: RollupStore, merchant: str, pages: int) -> int:
    """Write `synthetic_rows(merchant, pages)` into `store` in chunks; returns the rows written."""
    n_rows = 0
    for rows in synthetic_rows(merchant, pages):
        for i in range(0, len(rows), 20_000):
            store.write(rows[i : i + 20_000])
        n_rows += len(rows)
    return n_rows


def measure(call: Callable[[], Any], n: int) -> dict[str, float]:
    """Wall-clock p50/p99/max of `n` calls, and the median CPU time the process (client and server threads)
    spent per call, which does not grow when other processes compete for the cores."""
    call()  # warm-up (connections, prepared statements, first UA/zone caches)
    samples, cpu = timed_calls(call, n)
    return {
        "p50": statistics.median(samples),
        "p99": percentile(samples, 99),
        "max": max(samples),
        "cpu": statistics.median(cpu),
    }


def open_backend(engine: str, tmp: Path) -> tuple[RollupStore, VersionRegistry, Callable[[], None]]:
    if engine == "sqlite":
        from gnomon.rollups.sqlite_store import SqliteRollupStore
        from gnomon.rollups.sqlite_versions import SqliteVersionRegistry

        store = SqliteRollupStore(tmp / "rollups.sqlite3", synchronous="OFF")
        registry = SqliteVersionRegistry(tmp / "rollups.sqlite3", synchronous="OFF")

        def close() -> None:
            registry.close()
            store.close()

        return store, registry, close
    from gnomon.rollups.cql_engine import CqlEngine
    from gnomon.rollups.cql_store import CqlRollupStore
    from gnomon.rollups.cql_versions import CqlVersionRegistry

    cql = replace(CommonSettings.from_env({"GNOMON_ENGINES": "real"}).cql, replication_factor=1)
    engine_ = CqlEngine(cql, keyspace=f"gnomon_query_bench_{uuid.uuid4().hex[:8]}")

    def close_cql() -> None:
        engine_.drop_keyspace()
        engine_.close()

    return CqlRollupStore(engine_), CqlVersionRegistry(engine_), close_cql


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.query_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "cql"), default="sqlite")
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cold-calls", type=int, default=20, help="calls of the uncached top-10 (seconds each)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store, registry, close = open_backend(args.engine, tmp)
        control = SqliteControlStore(tmp / "control.sqlite3")
        merchant = control.create_merchant("Bench", ZONE, "INR").merchant_id
        token = control.create_key(merchant, KeyKind.READ).secret
        t0 = time.perf_counter()
        n_rows = write_synthetic_rows(store, merchant, args.pages)
        print(f"{args.engine}: wrote {n_rows:,} rows in {time.perf_counter() - t0:.1f} s")
        gc.collect()
        gc.freeze()  # as `gnomon query serve` does: the long-lived heap is not scanned by every collection
        telemetry = setup_telemetry(TelemetrySettings())
        date_range = q.DateRange(start_date=str(FIRST), end_date=str(FIRST + timedelta(days=DAYS - 1)))
        hourly = q.TimeSeriesRequest(
            date_range=date_range, metrics=["activeUsers", "sessions", "screenPageViews", "engagementRate"],
            granularity=q.GRANULARITY_HOUR,
        )  # fmt: skip
        top10 = q.BreakdownRequest(
            date_range=date_range, dimensions=["pagePath"], metrics=["screenPageViews", "activeUsers", "sessions"],
            limit=10,
        )  # fmt: skip
        deps = QueryDeps(store=store, registry=registry, control=control, telemetry=telemetry, clock=lambda: NOW)
        results: dict[str, dict[str, float]] = {}
        try:
            modes = (
                ("no cache", 0, 0),
                ("window cache", 0, 2_000_000),
                ("result cache", 2_000, 2_000_000),
            )
            for label, cache_entries, window_rows in modes:
                settings = QuerySettings(
                    common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp)}),
                    port=0,
                    cache_entries=cache_entries,
                    window_cache_rows=window_rows,
                )
                with running_query_server(settings, deps) as running:
                    stub, md = running.stub, bearer(token)
                    calls = args.calls if cache_entries or window_rows else min(args.calls, args.cold_calls)
                    results[f"hourly 30 d, {label}"] = measure(
                        partial(stub.TimeSeries, hourly, metadata=md), args.calls
                    )
                    results[f"top-10 pages 30 d, {label}"] = measure(partial(stub.Breakdown, top10, metadata=md), calls)
                    if args.profile and cache_entries == 0:
                        engine = running.server.engine
                        end = date_range.end_date
                        for name, request in (
                            ("hourly", ReportRequest(merchant, DateSpec(str(FIRST), end), tuple(hourly.metrics),
                                                     ("dateHour",), fill_time_gaps=True)),
                            ("top10", ReportRequest(merchant, DateSpec(str(FIRST), end), tuple(top10.metrics),
                                                    ("pagePath",), limit=10)),
                        ):  # fmt: skip
                            profile = cProfile.Profile()
                            profile.runcall(engine.report, request)
                            print(f"--- profile of one {name} call, {label} ---")
                            pstats.Stats(profile).sort_stats("cumulative").print_stats(14)
        finally:
            telemetry.shutdown()
            control.close()
            close()
    for name, r in results.items():
        print(
            f"{args.engine:7s} {name:34s} p50 {r['p50']:8.1f} ms   p99 {r['p99']:8.1f} ms   max {r['max']:8.1f} ms"
            f"   cpu/call {r['cpu']:7.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
