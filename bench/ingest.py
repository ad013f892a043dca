"""Ingest benchmark: events/s and ack latency of Collect at batch sizes 1, 50, 500 against
(a) a no-op server with the same proto, (b) the collector on the embedded log, (c) the collector on Pulsar.

Servers and load generators run in separate processes on 127.0.0.1. Prints one row per (target, batch size) and
the ratios (b)/(a) and (c)/(a) next to the DESIGN.md targets:
  >= 200k events/s and >= 0.25 x no-op at 500-event batches on the embedded log; >= 100k events/s into Pulsar.

    .venv/bin/python -m bench.ingest                     # all targets (Pulsar needs `gnomon engines up`)
    .venv/bin/python -m bench.ingest --targets noop,embedded --seconds 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.load import LoadResult, run_load
from bench.timing import interpolated_percentile

TARGETS = ("noop", "embedded", "pulsar")


@contextmanager
def server(target: str) -> Iterator[tuple[str, str]]:
    """Start the target server process; yield (address, write key); stop it afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"gnomon-bench-{target}-") as tmp:
        out = Path(tmp) / "server.txt"
        env = {**os.environ, "GNOMON_DATA_DIR": tmp, "GNOMON_TELEMETRY_EXPORTER": "none"}
        if target == "noop":
            cmd = [sys.executable, "-m", "bench.noop_server", str(out)]
        else:
            env["GNOMON_ENGINES"] = "embedded" if target == "embedded" else "real"
            cmd = [sys.executable, "-m", "bench.collector_server", str(out)]
        proc = subprocess.Popen(cmd, env=env)
        try:
            deadline = time.monotonic() + 60
            while not out.exists() or not out.read_text().strip():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target} server did not start (exit code {proc.poll()})")
                time.sleep(0.1)
            port, _, key = out.read_text().partition(" ")
            yield f"127.0.0.1:{port}", key or "noop"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure(target: str, batch_size: int, clients: int, concurrency: int, seconds: float) -> LoadResult:
    with server(target) as (address, key), ProcessPoolExecutor(clients) as pool:
        run_load(address, key, batch_size, 2, 1.0, "warm")  # warm-up: connections, caches, JIT-free but lazy init
        jobs = [
            pool.submit(run_load, address, key, batch_size, concurrency, seconds, f"{target[:3]}{batch_size}c{i}")
            for i in range(clients)
        ]
        parts = [j.result() for j in jobs]
    errors: dict[str, int] = {}
    for p in parts:
        for k, v in p.errors.items():
            errors[k] = errors.get(k, 0) + v
    return LoadResult(
        events_acked=sum(p.events_acked for p in parts),
        batches=sum(p.batches for p in parts),
        errors=errors,
        latencies_ms=[x for p in parts for x in p.latencies_ms],
        seconds=max(p.seconds for p in parts),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: noop,embedded,pulsar")
    parser.add_argument("--batch-sizes", default="1,50,500")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--clients", type=int, default=1, help="load generator processes")
    parser.add_argument("--concurrency", type=int, default=32, help="outstanding calls per client process")
    args = parser.parse_args(argv)
    console = Console()
    results: dict[tuple[str, int], float] = {}
    table = Table(title=f"Collect ingest, {os.cpu_count()} cores, {args.clients} client process(es)")
    for col in ("target", "batch", "events/s", "batches/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(col)
    for target in args.targets.split(","):
        for size in (int(s) for s in args.batch_sizes.split(",")):
            console.print(f"running {target} at batch size {size} for {args.seconds:.0f} s ...")
            r = measure(target, size, args.clients, args.concurrency, args.seconds)
            eps = r.events_acked / r.seconds
            results[(target, size)] = eps
            table.add_row(
                target, str(size), f"{eps:,.0f}", f"{r.batches / r.seconds:,.0f}",
                f"{interpolated_percentile(r.latencies_ms, 50):.1f}",
                f"{interpolated_percentile(r.latencies_ms, 99):.1f}", str(r.errors or "-"),
            )  # fmt: skip
    console.print(table)
    for size in (int(s) for s in args.batch_sizes.split(",")):
        base = results.get(("noop", size))
        for target, goal in (("embedded", 0.25), ("pulsar", None)):
            if base and (target, size) in results:
                ratio = results[(target, size)] / base
                note = f" (target >= {goal})" if goal and size == 500 else ""
                console.print(f"batch {size}: {target} / no-op = {ratio:.2f}{note}")
    for target, goal in (("embedded", 200_000), ("pulsar", 100_000)):
        if (target, 500) in results:
            got = results[(target, 500)]
            verdict = "meets" if got >= goal else "MISSES"
            console.print(f"{target} at 500-event batches: {got:,.0f} events/s {verdict} the {goal:,} target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
