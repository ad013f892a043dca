"""Dask's share of the aggregator's task time, with tasks of the size the loop plans (DESIGN.md: under 1%).

Each task is one merchant-day of `--events-per-day` events (default 200,000, the loop's `task_events`): derive ->
aggregate_day -> column write into that worker's embedded SQLite store (`bench.aggregate.run`, the whole-path
code). The days are generated ON the workers first and stay there as Dask data (like the aggregator's workers,
which read their days from the event store and keep them in their DayCache: no event data travels with a task).
Then `--rounds` rounds of one task per worker slot, on the LocalCluster the aggregator uses
(`gnomon.compute.dask_client`); per round, overhead = (round wall - the longest task's own time) / round wall,
the definition of the aggregator's `gnomon.aggregator.dask.overhead` gauge. Prints every round, the median, the
share over all rounds and PASS/MISS against 1%.

    .venv/bin/python -m bench.dask_overhead
    .venv/bin/python -m bench.dask_overhead --events-per-day 50000 --rounds 10    # smaller tasks
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.progress import Progress

TARGET = 0.01


def run_day(merchant: str, frame: pd.DataFrame, base_dir: str) -> tuple[float, int]:
    """One task: the whole aggregation path of one merchant-day on this worker; (its own seconds, rows written)."""
    from distributed import get_worker

    from bench.aggregate import Totals, run

    data_dir = Path(base_dir) / f"worker-{get_worker().name}"
    data_dir.mkdir(parents=True, exist_ok=True)
    stages = {name: Totals() for name in ("derive", "aggregate", "rows/columns", "write")}
    began = time.perf_counter()
    rows = run([(merchant, frame)], data_dir, stages, rows=False)
    return time.perf_counter() - began, rows


def measure(client: Any, events: int, rounds: int, base_dir: str) -> list[tuple[float, float]]:
    """(round wall, longest task) per round; the days are generated on their workers before the clock starts."""
    from distributed import wait

    from bench.aggregate_compute import synthetic_day

    slots = [w for w, threads in sorted(client.nthreads().items()) for _ in range(threads)]
    n_days = rounds * len(slots)
    frames = [
        client.submit(
            synthetic_day, events=events, clients=max(1000, events // 20), merchant_id=f"m-dask-{i}", seed=i,
            workers=[slots[i % len(slots)]], pure=False,
        )
        for i in range(n_days)
    ]  # fmt: skip
    warm = [
        client.submit(
            run_day, f"m-warm-{i}",
            client.submit(synthetic_day, events=2_000, clients=1000, merchant_id=f"m-warm-{i}", seed=10_000 + i,
                          workers=[w], pure=False),
            base_dir, workers=[w], pure=False,
        )
        for i, w in enumerate(slots)
    ]  # fmt: skip
    client.gather(warm)  # imports, the deriver's tables and the stores open on every worker before timing
    wait(frames)  # every day generated (and held by its worker) before the clock starts
    out: list[tuple[float, float]] = []
    with Progress() as progress:
        bar = progress.add_task("rounds", total=rounds)
        for r in range(rounds):
            began = time.perf_counter()
            futures = [
                client.submit(run_day, f"m-dask-{i}", frames[i], base_dir, workers=[slots[i % len(slots)]], pure=False)
                for i in range(r * len(slots), (r + 1) * len(slots))
            ]
            results = client.gather(futures)
            wall = time.perf_counter() - began
            out.append((wall, max(seconds for seconds, _ in results)))
            progress.update(bar, advance=1, description=f"round {r + 1}: {wall:.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events-per-day", type=int, default=200_000, help="events per task (merchant-day)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of one task per worker slot")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    args = parser.parse_args()

    from gnomon.compute import dask_client
    from gnomon.settings import DaskSettings

    settings = DaskSettings(scheduler_address=None, local_workers=args.workers, threads_per_worker=1)
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-dask-") as tmp, dask_client(settings) as client:
        rounds = measure(client, args.events_per_day, args.rounds, tmp)
    shares = [(wall - task) / wall for wall, task in rounds]
    for i, ((wall, task), share) in enumerate(zip(rounds, shares, strict=True), 1):
        print(f"round {i}: wall {wall:.3f} s, longest task {task:.3f} s, outside the tasks {share:.2%}")
    total_wall = sum(wall for wall, _ in rounds)
    overall = sum(wall - task for wall, task in rounds) / total_wall
    median = statistics.median(shares)
    print(
        f"{args.workers} workers, tasks of {args.events_per_day:,} events: Dask overhead median {median:.2%},"
        f" over all rounds {overall:.2%} ({total_wall - sum(t for _, t in rounds):.3f} s of {total_wall:.2f} s)"
    )
    print(f"{'PASS' if overall < TARGET else 'MISS'}: {overall:.2%} vs target < {TARGET:.0%}")


if __name__ == "__main__":
    main()
