"""Whole aggregation path per core: derive + sessionize + sketch + write, next to a pandas groupby-count.

Generates `--events` realistic events (default 5M) as merchant-days of up to 1M events each
(`bench.aggregate_compute.synthetic_day`, one merchant per day), then on ONE process (= one core) runs, per
merchant-day: `aggregator.derive.derive` -> `aggregator.compute.compute_day` (sessionize, cubes, sketches,
RollupRows) -> `RollupStore.write` into the embedded SQLite store (`gnomon.rollups.open_rollup_store` over an
embedded `CommonSettings` in a temp dir). Prints CPU time (time.process_time: the machine is shared, CPU is the
steadier number) and wall, events/s per core, a plain pandas `groupby([hour, page_path]).size()` over the same
frame in the same run, the ratio, and PASS/MISS against the DESIGN.md target (>= 500k events/s per core).

    .venv/bin/python -m bench.aggregate
    .venv/bin/python -m bench.aggregate --events 1000000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pandas as pd

from aggregator import frame as f
from bench.aggregate_compute import synthetic_day

TARGET: int = 500_000
PER_DAY: int = 1_000_000
ZONE = "America/New_York"
DAY = date(2026, 3, 10)
T = TypeVar("T")


@dataclass
class Totals:
    wall: float = 0.0
    cpu: float = 0.0

    def add(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


def timed(fn: Callable[[], T], totals: Totals) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    totals.add(time.perf_counter() - wall, time.process_time() - cpu)
    return result


def generate(events: int) -> list[tuple[str, pd.DataFrame]]:
    """(merchant id, raw events of its day) per merchant-day of up to PER_DAY events."""
    days: list[tuple[str, pd.DataFrame]] = []
    left, i = events, 0
    while left > 0:
        n = min(PER_DAY, left)
        merchant = f"m-bench-{i}"
        days.append((merchant, synthetic_day(events=n, clients=max(1000, n // 20), merchant_id=merchant, seed=i)))
        left -= n
        i += 1
    return days


def run(days: list[tuple[str, pd.DataFrame]], data_dir: Path, stages: dict[str, Totals], *, rows: bool) -> int:
    """derive -> aggregate_day -> write every merchant-day; returns the number of rows written.

    Default: `DayRollups.columns` into `SqliteRollupStore.write_columns` (no object per row); `rows=True`:
    `DayRollups.rows` (= `compute_day`'s RollupRows) into the port's `write`."""
    from aggregator.compute import aggregate_day
    from aggregator.cubes import DEFAULT_CUBES
    from aggregator.derive import derive
    from gnomon.rollups import open_rollup_store
    from gnomon.rollups.sqlite_store import SqliteRollupStore
    from gnomon.settings import CommonSettings

    settings = CommonSettings.from_env({"GNOMON_DATA_DIR": str(data_dir), "GNOMON_ENGINES": "embedded"})
    store = open_rollup_store(settings)
    closed = datetime(2026, 3, 12, tzinfo=UTC)
    stamp = {"version": 1, "computed_at": closed - timedelta(hours=1), "closed_before": closed}
    n_rows = 0
    try:
        for merchant, raw in days:
            derived = timed(lambda raw=raw: derive(raw), stages["derive"])  # type: ignore[misc]
            rollups = timed(
                lambda merchant=merchant, derived=derived: aggregate_day(  # type: ignore[misc]
                    derived,
                    merchant_id=merchant,
                    zone=ZONE,
                    day=DAY,
                    key_events=frozenset({"purchase"}),
                    cubes=DEFAULT_CUBES,
                    currency="USD",
                ),
                stages["aggregate"],
            )
            if rows or not isinstance(store, SqliteRollupStore):
                objects = timed(lambda r=rollups: r.rows(**stamp), stages["rows/columns"])  # type: ignore[misc]
                timed(lambda o=objects: store.write(o), stages["write"])  # type: ignore[misc]
            else:
                blocks = timed(lambda r=rollups: r.columns(**stamp), stages["rows/columns"])  # type: ignore[misc]
                timed(lambda b=blocks, s=store: s.write_columns(b), stages["write"])  # type: ignore[misc]
            n_rows += len(rollups)
            del rollups, derived
    finally:
        store.close()
    return n_rows


def pandas_baseline(frame: pd.DataFrame) -> tuple[float, float, int]:
    """(wall, cpu, groups) of a plain groupby([hour, page_path]).size() over `frame`."""
    totals = Totals()
    sizes = timed(
        lambda: frame.groupby([frame[f.EVENT_TIME_US] // 3_600_000_000, frame[f.PAGE_PATH]], sort=False).size(),
        totals,
    )
    return totals.wall, totals.cpu, len(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the whole path, print the top 25")
    parser.add_argument("--rows", action="store_true", help="write RollupRow objects (compute_day) via write()")
    args = parser.parse_args()

    t0 = time.perf_counter()
    days = generate(args.events)
    n = sum(len(raw) for _, raw in days)
    print(f"generated {n:,} events in {len(days)} merchant-day(s) in {time.perf_counter() - t0:.1f} s")

    from aggregator.derive import derive

    derive(days[0][1].head(1000))  # build the deriver (regexes, geo database) outside the timing

    stages = {name: Totals() for name in ("derive", "aggregate", "rows/columns", "write")}
    profiler = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as tmp:
        if profiler:
            profiler.enable()
        n_rows = run(days, Path(tmp), stages, rows=args.rows)
        if profiler:
            profiler.disable()
    print(f"write path: {'RollupRow objects -> write()' if args.rows else 'column blocks -> write_columns()'}")
    cpu = sum(s.cpu for s in stages.values())
    wall = sum(s.wall for s in stages.values())
    for name, s in stages.items():
        print(f"  {name:12s} {s.cpu:6.2f} s CPU {s.wall:6.2f} s wall  ({n / s.cpu:,.0f} events/s per core)")
    rate = n / cpu
    print(f"aggregation: {n:,} events, {n_rows:,} rows: {cpu:.2f} s CPU, {wall:.2f} s wall")
    print(f"  = {rate:,.0f} events/s per core (CPU), {n / wall:,.0f} events/s (wall)")

    frame = pd.concat([raw for _, raw in days], ignore_index=True)
    b_wall, b_cpu, groups = pandas_baseline(frame)
    b_rate = n / b_cpu
    print(f"pandas groupby([hour, page_path]).size(): {groups:,} groups, {b_cpu:.2f} s CPU, {b_wall:.2f} s wall")
    print(f"  = {b_rate:,.0f} events/s per core")
    print(f"ratio aggregation / pandas groupby-count: {rate / b_rate:.3f} (pandas is {b_rate / rate:.1f}x faster)")
    verdict = "PASS" if rate >= TARGET else "MISS"
    print(f"{verdict}: {rate:,.0f} events/s per core vs target {TARGET:,}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
