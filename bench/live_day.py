"""The live aggregator's recompute of one big merchant-day, as its Dask task runs it, on the embedded SQLite store.

A merchant with `--events` events (default 1M) in one local day, evening of that day: the hours so far are closed
but the last one and the day are provisional. Two cycles, each `derive` -> `aggregate_day` ->
`loop_tasks.write_day` (window fingerprints from the columns, `replace_window_columns` of the windows that changed):
1. first cycle after start-up (nothing known: every window written);
2. the next cycle, after `--new` more events arrived in the open hour (only changed windows written).
In the same run, for the second cycle, what the loop did before it fingerprinted columns is timed as the
baseline: every row of the day built as a `RollupRow` and grouped by window (before any fingerprint), against
the fingerprints from the columns plus the columns of the changed windows; the ratio is printed. CPU seconds
(time.process_time).

    .venv/bin/python -m bench.live_day
    .venv/bin/python -m bench.live_day --events 200000 --new 500
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from aggregator import frame as f
from bench.aggregate_compute import synthetic_day

DAY = date(2026, 3, 10)
ZONE = "America/New_York"
MERCHANT = "m-live-bench"
CLOSED_BEFORE = datetime(2026, 3, 11, 2, tzinfo=UTC)  # 22:00 EDT: windows from 22:00 and the day stay open
OPEN_HOUR = datetime(2026, 3, 11, 2, 5, tzinfo=UTC)
KEY_EVENTS = frozenset({"purchase"})


def more_events(day: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` new events (fresh ids) of existing clients in the open hour."""
    extra = synthetic_day(events=n * 30, clients=2000, day=DAY, zone=ZONE, merchant_id=MERCHANT, seed=seed)
    extra = extra.iloc[:n].copy()
    start_us = int(OPEN_HOUR.timestamp() * 1_000_000)
    extra[f.EVENT_TIME_US] = start_us + np.sort(np.random.default_rng(seed).integers(0, 50 * 60 * 1_000_000, n))
    extra[f.EVENT_ID] = [f"live-{seed}-{i}" for i in range(n)]
    extra[f.CLIENT_ID] = day[f.CLIENT_ID].to_numpy()[: len(extra)]
    return pd.concat([day, extra], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=2_000, help="events arriving before the second cycle")
    args = parser.parse_args()

    from aggregator.compute import aggregate_day
    from aggregator.cubes import DEFAULT_CUBES
    from aggregator.derive import derive
    from aggregator.eventstore import open_event_store
    from aggregator.loop_prints import ColumnWindows, group_windows
    from aggregator.loop_tasks import DayJob, Resources, write_day
    from gnomon.rollups import open_rollup_store
    from gnomon.settings import CommonSettings

    first_day = synthetic_day(events=args.events, clients=max(1000, args.events // 20), day=DAY, zone=ZONE,
                              merchant_id=MERCHANT, seed=11)  # fmt: skip
    second_day = more_events(first_day, args.new, seed=12)
    derive(first_day.head(1000))  # build the deriver outside the timing
    computed_at = CLOSED_BEFORE
    with tempfile.TemporaryDirectory(prefix="gnomon-live-bench-") as tmp:
        common = CommonSettings.from_env({"GNOMON_DATA_DIR": str(Path(tmp)), "GNOMON_ENGINES": "embedded"})
        resources = Resources(open_event_store(common), open_rollup_store(common), aggregate_day, DEFAULT_CUBES)
        previous = None
        try:
            for cycle, raw in enumerate((first_day, second_day), start=1):
                clock = time.process_time
                t0 = clock()
                derived = derive(raw)
                t1 = clock()
                rollups = aggregate_day(
                    derived, merchant_id=MERCHANT, zone=ZONE, day=DAY, key_events=KEY_EVENTS, cubes=DEFAULT_CUBES,
                    currency="USD",
                )  # fmt: skip
                t2 = clock()
                job = DayJob(MERCHANT, DAY, ZONE, "USD", (1,), {1: previous})
                windows = ColumnWindows(rollups, 1, computed_at, CLOSED_BEFORE)
                written, _, previous = write_day(resources, job, 1, windows, previous)
                t3 = clock()
                total = t3 - t0
                print(
                    f"cycle {cycle}: {len(raw):,} events, {len(rollups):,} rows, {written} of {len(previous)} windows "
                    f"written: derive {t1 - t0:.2f} s, aggregate {t2 - t1:.2f} s, fingerprint + write "
                    f"{t3 - t2:.2f} s = {total:.2f} s CPU ({len(raw) / total:,.0f} events/s per core)"
                )
            t4 = clock()
            group_windows(rollups.rows(version=1, computed_at=computed_at, closed_before=CLOSED_BEFORE))
            baseline = clock() - t4
            t5 = clock()
            prints = windows.prints()
            windows.columns([key for key, (_, provisional) in prints.items() if provisional])
            columnar = clock() - t5
            print(
                f"cycle 2: fingerprints from the columns + columns of the open windows {columnar:.2f} s; every row "
                f"of the day as a RollupRow, grouped (the path before column fingerprints) {baseline:.2f} s; "
                f"ratio {baseline / columnar:.1f}x"
            )
        finally:
            resources.rollups.close()
            resources.events.close()


if __name__ == "__main__":
    main()
