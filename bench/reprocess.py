"""Reprocessing throughput on the real engines, and what it does to query latency meanwhile.

Measures `aggregator.reprocess.job.run_job` (what `gnomon reprocess` runs) on an isolated real deployment
(Pulsar topics with a random suffix, a fresh Cassandra keyspace and its `_history` twin; both dropped at the end,
also on failure):

1. `--events` realistic events (default 10M: many clients with sessions, 2,000 Zipf pages, 8 user agents with
   ~2 % bots, random IPs, purchases) of `--merchants` merchants (UTC, the last one Asia/Kolkata) over `--days`
   merchant-local days are published to the events stream as 500-event `LoggedBatch` payloads keyed by merchant
   (a few hundred distinct protobuf-built templates; each copy gets fresh event and client ids by a byte
   replace, so every event id is unique);
2. idle latency of a 30-day hourly TimeSeries (users + pageviews) over gRPC against a separate merchant's
   synthetic version-1 rollups, in-process query service, caches off (p50/p99 of `--calls` calls);
3. a reprocess job to version 2 of every published day and merchant (log window: the publish window +- 1 min)
   on a Dask LocalCluster (GNOMON_DASK_WORKERS processes x 1 thread), while a thread issues the same query
   continuously;
4. events scanned / kept, scan and rebuild seconds, events/s overall and per Dask thread, query p50/p99 idle vs
   during, the verification result (exit code 1 if any check failed) and the load average (a shared machine).

Needs Pulsar and Cassandra on the default ports (`gnomon engines up`).

    .venv/bin/python -m bench.reprocess                           # 10M events, 10 days, 4 merchants
    .venv/bin/python -m bench.reprocess --events 200000           # a quick run
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from aggregator.loop_days import day_bounds
from bench.query_latency import DAYS as QUERY_DAYS
from bench.query_latency import FIRST as QUERY_FIRST
from bench.query_latency import ZONE as QUERY_ZONE
from bench.query_latency import write_synthetic_rows
from bench.timing import percentile, timed_calls
from gnomon.eventlog import LogBackpressure, OutgoingMessage, Position, Stream
from gnomon.eventlog.port import partition_for_key
from gnomon.v1 import event_pb2
from gnomon.v1 import query_pb2 as q

BATCH = 500
TEMPLATES_PER_DAY = 16  # distinct protobuf-built batches per merchant-day; copies differ in event and client ids
TOKEN = "@@@@@@@@"  # 8 bytes, replaced in every copy (event ids and client ids)
FIRST_DAY = date(2026, 11, 1)
IN_FLIGHT = 200
PAGES = 2_000
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4"
    " Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile"
    " Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5"
    " Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    " Edg/131.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)
UA_WEIGHTS = np.array([30, 25, 12, 8, 12, 5, 6, 2], dtype=float) / 100
SOURCES = (("", ""), ("google", "cpc"), ("google", "organic"), ("newsletter", "email"), ("facebook", "social"))
LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "hi-IN", "es-ES")
SCREENS = ((1920, 1080), (390, 844), (1440, 900), (1366, 768), (412, 915), (820, 1180))


# ---- synthetic events -------------------------------------------------------------------------------------------


def template_batch(rng: np.random.Generator, merchant_id: str, m: int, zone: str, currency: str, day: date, t: int)\
        -> bytes:  # fmt: skip
    """One LoggedBatch of BATCH events of local `day`: sessions of ~8 events ~40 s apart by ~60 clients; ids and
    client ids contain TOKEN (replaced per copy)."""
    start, end = day_bounds(day, zone)
    span = (end - start).total_seconds()
    d = (day - FIRST_DAY).days
    events: list[event_pb2.Event] = []
    zipf = 1.0 / np.arange(1, PAGES + 1)
    zipf /= zipf.sum()
    while len(events) < BATCH:
        client = f"{TOKEN}-{m}-{t}-{int(rng.integers(0, 60))}"
        length = min(BATCH - len(events), int(rng.geometric(1 / 8)))
        at = float(rng.uniform(0, span - 3_600))
        ua = USER_AGENTS[int(rng.choice(len(USER_AGENTS), p=UA_WEIGHTS))]
        ip = f"{rng.integers(1, 224)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
        source, medium = SOURCES[int(rng.integers(0, len(SOURCES)))]
        locale = LOCALES[int(rng.integers(0, len(LOCALES)))]
        width, height = SCREENS[int(rng.integers(0, len(SCREENS)))]
        for _ in range(length):
            at = min(span - 1, at + float(rng.exponential(40.0)))
            page = int(rng.choice(PAGES, p=zipf))
            kind = float(rng.random())
            name = "page_view" if kind < 0.8 else "scroll" if kind < 0.9 else "add_to_cart" if kind < 0.97 else \
                "purchase"  # fmt: skip
            path = f"/section-{page % 37}/page-{page}"
            e = event_pb2.Event(
                event_id=f"{TOKEN}{m:02d}{d:03d}{t:04d}{len(events):05d}", name=name, client_id=client,
                page=event_pb2.Page(url=f"https://shop{m}.example.com{path}?ref={page % 7}", path=path,
                                    title=f"Page {page} | Shop {m}", referrer="https://www.google.com/"),
                user_agent=ua, ip=ip, locale=locale, screen=event_pb2.Screen(width=width, height=height),
                utm=event_pb2.Utm(source=source, medium=medium, campaign="winter" if source else ""),
            )  # fmt: skip
            if name == "purchase":
                e.revenue.micros, e.revenue.currency = int(rng.integers(5, 300)) * 1_000_000, currency
            e.event_time.FromDatetime(start + timedelta(seconds=at))
            events.append(e)
    batch = event_pb2.LoggedBatch(merchant_id=merchant_id, collector_id="bench-reprocess")
    newest = max(e.event_time.ToDatetime(tzinfo=UTC) for e in events)
    batch.received_time.FromDatetime(newest + timedelta(seconds=3))
    batch.events.extend(events)
    return batch.SerializeToString()


def pick_merchants(n: int, partitions: int, token: str) -> list[str]:
    """`n` merchant ids spread over the events stream's partitions (the scan runs one task per partition)."""
    out: list[str] = []
    used: dict[int, int] = {}
    k = 0
    while len(out) < n:
        candidate = f"bench-{token}-{k}"
        p = partition_for_key(candidate, partitions)
        if used.get(p, 0) <= min(used.get(i, 0) for i in range(partitions)):
            out.append(candidate)
            used[p] = used.get(p, 0) + 1
        k += 1
    return out


def payloads(templates: list[tuple[str, bytes]], batches: int) -> Iterator[tuple[str, bytes]]:
    """`batches` payloads: the templates round-robin, copy c with TOKEN replaced by c (unique ids)."""
    for i in range(batches):
        merchant_id, template = templates[i % len(templates)]
        copy = i // len(templates)
        yield merchant_id, template.replace(TOKEN.encode(), f"{copy:08x}".encode())


def publish(log: Any, items: Iterator[tuple[str, bytes]], total: int, console: Console) -> int:
    """Publish with at most IN_FLIGHT messages unacknowledged; returns the events published."""
    pending: deque[Future[Position]] = deque()
    columns = (TextColumn("publish "), BarColumn(), MofNCompleteColumn(), TextColumn("batches"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())  # fmt: skip
    done = 0
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("publish", total=total)
        for merchant_id, payload in items:
            while len(pending) >= IN_FLIGHT:
                pending.popleft().result(timeout=120)
                done += 1
                bar.update(task, completed=done)
            while True:
                try:
                    pending.extend(log.publish_many(Stream.EVENTS, [OutgoingMessage(merchant_id, payload)]))
                    break
                except LogBackpressure:
                    if pending:
                        pending.popleft().result(timeout=120)
                        done += 1
                    else:
                        time.sleep(0.05)
            if done % 20 == 0:
                bar.update(task, completed=done)
        while pending:
            pending.popleft().result(timeout=120)
            done += 1
        bar.update(task, completed=done)
    return done * BATCH


# ---- queries ----------------------------------------------------------------------------------------------------


class QueryLoad(threading.Thread):
    """Calls `call` back to back until stopped; keeps the latencies (ms) and the 1-minute load averages seen."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.samples: list[float] = []
        self.loads: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        last_load = 0.0
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                self.call()
            except Exception:  # an error is a result too; keep loading
                self.errors += 1
                continue
            self.samples.append((time.perf_counter() - t0) * 1000)
            if time.monotonic() - last_load > 5:
                self.loads.append(os.getloadavg()[0])
                last_load = time.monotonic()


def latency(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), percentile(samples, 99)


# ---- the deployment -----------------------------------------------------------------------------------------------


def deployment_env(token: str) -> dict[str, str]:
    env = {
        "GNOMON_ENGINES": "real",
        "GNOMON_CQL_KEYSPACE": f"gnomon_rpbench_{token}",
        "GNOMON_CQL_REPLICATION_FACTOR": "1",
        "GNOMON_AGGREGATOR_TOPIC_SUFFIX": f"-rpbench-{token}",
        "GNOMON_DASK_WORKERS": os.environ.get("GNOMON_DASK_WORKERS", "2"),
        "GNOMON_OTEL_EXPORTER": "none",
        "GNOMON_TELEMETRY_EXPORTER": "none",
    }
    os.environ.update(env)  # before the Dask LocalCluster starts: its worker processes inherit it
    os.environ.pop("GNOMON_DASK_SCHEDULER", None)
    return env


def drop_deployment(common: Any, suffix: str) -> None:
    """Drop the benchmark's keyspaces and topics; a failure is reported, not raised (the figures are printed)."""
    from gnomon.scratch import drop_scratch_deployment

    try:
        drop_scratch_deployment(common, suffix)
    except Exception as exc:  # e.g. a topic never created by a run that failed early
        print(f"cleanup: {type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--calls", type=int, default=200, help="idle query calls")
    parser.add_argument("--query-pages", type=int, default=1_000, help="page rows per day of the query merchant")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    token = uuid.uuid4().hex[:8]
    env = deployment_env(token)

    from aggregator.reprocess.job import Engines, run_job
    from aggregator.reprocess.progress import ConsoleReport
    from aggregator.reprocess.spec import build_spec
    from aggregator.reprocess.state import open_job_store
    from aggregator.reprocess.summary import verification_table
    from aggregator.settings import AggregatorSettings
    from gnomon.compute import dask_client
    from gnomon.control import KeyKind, open_control_store
    from gnomon.eventlog.pulsar_log import PulsarEventLog
    from gnomon.rollups import open_rollup_store, open_version_registry
    from gnomon.telemetry import TelemetrySettings, setup_telemetry
    from query_svc.server import QueryDeps
    from query_svc.settings import QuerySettings
    from query_svc.testing import bearer, running_query_server

    settings = AggregatorSettings.from_env(env)
    common = settings.common
    suffix = settings.topic_suffix
    load_start = os.getloadavg()
    console.print(f"deployment: keyspace {common.cql.keyspace}, topic suffix {suffix}; load average "
                  f"{load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} on {os.cpu_count()} cores")  # fmt: skip
    with ExitStack() as stack:
        stack.callback(drop_deployment, common, suffix)
        log = PulsarEventLog(common.pulsar, producer_name=f"bench{suffix}", topic_suffix=suffix)
        stack.callback(log.close)
        control = open_control_store(common)
        stack.callback(control.close)
        store = open_rollup_store(common)
        stack.callback(store.close)
        registry = open_version_registry(common)
        stack.callback(registry.close)
        jobs = open_job_store(common)
        stack.callback(jobs.close)

        # 1. merchants and the query merchant's rollups
        partitions = log.partition_count(Stream.EVENTS)
        merchants = pick_merchants(args.merchants, partitions, token)
        zones = {m: ("Asia/Kolkata", "INR") if i == len(merchants) - 1 and i > 0 else ("UTC", "EUR")
                 for i, m in enumerate(merchants)}  # fmt: skip
        for merchant_id, (zone, currency) in zones.items():
            control.create_merchant(merchant_id, zone, currency, merchant_id)
        query_merchant = control.create_merchant("Bench query", QUERY_ZONE, "INR", f"bench-{token}-query").merchant_id
        read_token = control.create_key(query_merchant, KeyKind.READ, "bench").secret
        t0 = time.perf_counter()
        n_rows = write_synthetic_rows(store, query_merchant, args.query_pages)
        console.print(f"query merchant: {n_rows:,} rollup rows written in {time.perf_counter() - t0:.1f} s")

        # 2. publish
        days = [FIRST_DAY + timedelta(days=i) for i in range(args.days)]
        rng = np.random.default_rng(7)
        t0 = time.perf_counter()
        templates = [
            (merchant_id, template_batch(rng, merchant_id, m, zone, currency, day, t))
            for t in range(TEMPLATES_PER_DAY)
            for d, day in enumerate(days)
            for m, (merchant_id, (zone, currency)) in enumerate(zones.items())
        ]
        console.print(f"{len(templates)} distinct {BATCH}-event templates built in {time.perf_counter() - t0:.1f} s"
                      f" ({partitions} partitions; merchants {', '.join(merchants)})")  # fmt: skip
        batches = max(1, args.events // BATCH)
        published_from = datetime.now(UTC)
        t0 = time.perf_counter()
        published = publish(log, payloads(templates, batches), batches, console)
        publish_s = time.perf_counter() - t0
        published_to = datetime.now(UTC)
        console.print(f"published {published:,} events in {publish_s:.1f} s: {published / publish_s:,.0f} events/s")

        # 3. idle query latency
        telemetry = setup_telemetry(TelemetrySettings())
        stack.callback(telemetry.shutdown)
        deps = QueryDeps(store=store, registry=registry, control=control, telemetry=telemetry)
        query_settings = QuerySettings(common=common, port=0, cache_entries=0, window_cache_rows=0)
        running = stack.enter_context(running_query_server(query_settings, deps))
        request = q.TimeSeriesRequest(
            date_range=q.DateRange(start_date=str(QUERY_FIRST),
                                   end_date=str(QUERY_FIRST + timedelta(days=QUERY_DAYS - 1))),
            metrics=["activeUsers", "screenPageViews"], granularity=q.GRANULARITY_HOUR,
        )  # fmt: skip
        call = partial(running.stub.TimeSeries, request, metadata=bearer(read_token))
        answer = call()
        assert len(answer.rows) >= 24 * QUERY_DAYS - 1, f"unexpected answer: {len(answer.rows)} rows"
        idle, _ = timed_calls(call, args.calls)
        idle_p50, idle_p99 = latency(idle)
        console.print(f"idle query (30-day hourly, users + pageviews): p50 {idle_p50:.1f} ms, p99 {idle_p99:.1f} ms"
                      f" ({len(idle)} calls)")  # fmt: skip

        # 4. the job, with queries meanwhile
        spec = build_spec(
            first_day=days[0], last_day=days[-1], merchants=merchants, version=2, who="bench", why="bench.reprocess",
            now=datetime.now(UTC), log_start=published_from - timedelta(minutes=1),
            log_end=published_to + timedelta(minutes=1),
        )  # fmt: skip
        client = stack.enter_context(dask_client(common.dask))
        threads = sum(int(n) for n in client.nthreads().values())
        load = QueryLoad(call)
        load.start()
        t0 = time.perf_counter()
        try:
            with ConsoleReport(console) as report:
                result = run_job(spec, settings, client, Engines(jobs, registry, control), report=report)
        finally:
            load.stop.set()
            load.join(timeout=60)
        total_s = time.perf_counter() - t0
        load_end = os.getloadavg()

        # 5. figures
        console.print(verification_table(result.days))
        scan_s, rebuild_s = result.seconds.get("scan", 0.0), result.seconds.get("rebuild", 0.0)
        events = result.kept_events
        busy_p50, busy_p99 = latency(load.samples) if load.samples else (float("nan"), float("nan"))
        rebuilt = sum(d.events for d in result.days)
        lines = [
            f"events published       {published:,} ({len(merchants)} merchants x {len(days)} days)",
            f"log records scanned    {result.scanned_records:,} batches ({result.scanned_records * BATCH:,} events)",
            f"events kept            {events:,}; rebuilt {rebuilt:,} over {len(result.days)} merchant-days",
            f"scan                   {scan_s:.1f} s ({events / max(scan_s, 1e-9):,.0f} events/s)",
            f"rebuild                {rebuild_s:.1f} s ({rebuilt / max(rebuild_s, 1e-9):,.0f} events/s)",
            f"total (run_job)        {total_s:.1f} s",
            f"overall                {events / total_s:,.0f} events/s; {events / total_s / threads:,.0f} events/s per"
            f" core ({threads} Dask threads)",
            f"query p50 / p99        idle {idle_p50:.1f} / {idle_p99:.1f} ms; during {busy_p50:.1f} / {busy_p99:.1f}"
            f" ms ({len(load.samples)} calls, {load.errors} errors); ratio p50 x{busy_p50 / idle_p50:.1f},"
            f" p99 x{busy_p99 / idle_p99:.1f}",
            f"verification           {'FAILED: ' + '; '.join(result.failed[:5]) if result.failed else 'passed'}"
            f"; flipped {len(result.flipped)} merchant range(s) to version 2",
            f"load average           start {load_start[0]:.2f}; during (1-min samples) "
            f"{statistics.mean(load.loads) if load.loads else load_end[0]:.2f} mean, "
            f"{max(load.loads, default=load_end[0]):.2f} max; end {load_end[0]:.2f} {load_end[1]:.2f} "
            f"{load_end[2]:.2f} ({os.cpu_count()} cores)",
        ]  # fmt: skip
        for line in lines:
            console.print(line)
        return 1 if result.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
