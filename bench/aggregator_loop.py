"""The live aggregator's sustained throughput: a backlog of events in the log, drained by `gnomon aggregator`.

Publishes `--events` realistic events (bench.reprocess's templates: sessions of ~8 events, 2,000 Zipf pages,
8 user agents with ~2 % bots, random IPs, purchases) of `--merchants` merchants (UTC, the last one Asia/Kolkata)
over the `--days` local days before today into the events stream of an isolated deployment (embedded: a temp
data dir; real: a topic suffix and a fresh keyspace, dropped afterwards). Then starts the aggregator
(`python -m gnomon.cli.aggregator_cmd`: its own process, with its Dask LocalCluster of GNOMON_DASK_WORKERS
processes) and follows its cycle log until every published event is stored and its rollups are written and
committed. Prints events/s from the aggregator's ready line to the cycle that completes the backlog (the loop
end to end: poll, decode, event-store upsert, recompute of each touched merchant-day on Dask, window writes,
commit), the number of cycles, and the load average (the engines share the 2 cores).

    .venv/bin/python -m bench.aggregator_loop                         # embedded, 1M events
    .venv/bin/python -m bench.aggregator_loop --engines real          # Pulsar + Cassandra (`gnomon engines up`)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
from rich.console import Console

from bench.freshness import engines
from bench.reprocess import BATCH, TEMPLATES_PER_DAY, payloads, pick_merchants, publish, template_batch
from gnomon.control import open_control_store
from gnomon.eventlog import Stream

CYCLE = re.compile(r"cycle: (\d+) records, (\d+) events")


class CycleLog(threading.Thread):
    """Reads the aggregator's log lines; sets `done` (and stamps `done_at`) once the cycles' events reach
    `total`."""

    def __init__(self, stream: Iterable[str], total: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.total = total
        self.events = 0
        self.cycles = 0
        self.done = threading.Event()
        self.done_at = 0.0

    def run(self) -> None:
        for line in self.stream:
            found = CYCLE.search(line)
            if not found:
                continue
            self.cycles += 1
            self.events += int(found.group(2))
            if self.events >= self.total and not self.done.is_set():
                self.done_at = time.monotonic()
                self.done.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.aggregator_loop", description=__doc__.split("\n")[0])
    parser.add_argument("--engines", choices=("embedded", "real"), default="embedded")
    parser.add_argument("--events", type=int, default=1_000_000, help="events to publish (multiple of 500)")
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--days", type=int, default=2, help="local days before today that the events fall on")
    parser.add_argument("--flush-interval", type=float, default=2.0, help="the aggregator's --flush-interval")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    token = uuid.uuid4().hex[:8]
    with engines(args.engines, keep=False) as (env, common, log):
        control = open_control_store(common)
        try:
            merchants = pick_merchants(args.merchants, log.partition_count(Stream.EVENTS), token)
            zones = {m: ("Asia/Kolkata", "INR") if i == len(merchants) - 1 and i > 0 else ("UTC", "EUR")
                     for i, m in enumerate(merchants)}  # fmt: skip
            for merchant_id, (zone, currency) in zones.items():
                control.create_merchant(merchant_id, zone, currency, merchant_id)
        finally:
            control.close()
        today = datetime.now(UTC).date()
        days = [today - timedelta(days=d) for d in range(args.days, 0, -1)]
        rng = np.random.default_rng(7)
        templates = [
            (m, template_batch(rng, m, i, zones[m][0], zones[m][1], day, t))
            for i, m in enumerate(merchants)
            for day in days
            for t in range(TEMPLATES_PER_DAY)
        ]
        batches = max(1, args.events // BATCH)
        total = publish(log, payloads(templates, batches), batches, console)
        console.print(f"published {total:,} events ({args.merchants} merchants x {args.days} days) [{args.engines}]")

        proc = subprocess.Popen(
            [sys.executable, "-m", "gnomon.cli.aggregator_cmd", "--flush-interval", str(args.flush_interval)],
            env={**env, "GNOMON_OTEL_EXPORTER": "none"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            cycles = CycleLog(proc.stderr, total)
            cycles.start()
            ready = proc.stdout.readline().strip()
            started = time.monotonic()
            console.print(f"aggregator: {ready}")
            finished = cycles.done.wait(args.timeout)
            load = os.getloadavg()
        finally:
            proc.terminate()
            proc.wait(120)
        if not finished:
            console.print(f"[red]only {cycles.events:,} of {total:,} events in {args.timeout:.0f} s[/red]")
            return 1
        seconds = cycles.done_at - started
        console.print(
            f"drained {total:,} events in {seconds:.1f} s over {cycles.cycles} cycles:"
            f" [bold]{total / seconds:,.0f} events/s[/bold] end to end (load average now {load[0]:.2f},"
            f" {os.cpu_count()} cores)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
