"""The aggregator loop: log records -> event store -> recomputed merchant-days -> rollup store -> commit.

    with open_aggregator(settings) as aggregator:      # engines, Dask client, consumer group "aggregator"
        aggregator.run(stop)                           # until `stop` is set (SIGTERM / Ctrl-C) or, once=True, drained

One cycle (`Aggregator.cycle`), a short chain of small steps:
 1. collect: poll the events stream until `max_records` records or `flush_interval_s` passed;
 2. ingest (`loop_ingest`): decode -> merchants (zone, currency; unknown: skipped, counted) -> local day per
    event -> drop in-batch repeats;
 3. `EventStore.upsert` (durable before anything else happens);
 4. watermark := max(watermark, newest received time, capped at now); when the log is drained (nothing
    polled, no lag) and `idle_watermark`, the wall clock; closed_before := watermark - allowed lateness;
 5. jobs := every (merchant, day) that got events, plus every day whose mark is due (a window closes);
    each for every processing version in use on that day (`VersionRegistry.versions_in_use`: active, ever flipped
    there, or being built by a reprocess; default 1);
 6. Dask (`loop_tasks.run_task`, tasks sized by `loop_plan.plan_tasks`): load_day -> derive -> compute_day ->
    replace the changed windows in the rollup store;
 7. day marks (next close of each recomputed day) and the watermark are saved;
 8. ONLY THEN `consumer.commit(records)`.
A failure in 2-8 (engine down) retries the same records with backoff, never committing them before step 7 is
done; stopping during retries leaves them uncommitted (redelivered to the next run).

Exactly once: the rows of a merchant-day are a pure function of the set of distinct events of that day in the
event store (identity (merchant, day, event_id)), written as idempotent overwrites. A record is committed only after
its events are durable in the store and every day it touched has been rewritten from the store; a crash at any
point leaves it uncommitted, so it is redelivered, re-stored (no-op: same identities) and the days recomputed to the
same rows. Duplicates, in one batch, across batches or across restarts, are one identity, hence counted once.
Workers may recompute from a cached copy of a day (`loop_cache`) only when it provably equals the store's content.
One active aggregator per region (embedded: the group lock; Pulsar: Failover subscription with one member):
two concurrent writers of one merchant-day could briefly overwrite newer rows with older ones.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

import pandas as pd

from aggregator.eventstore import DAY, DayMark, EventStore, day_number, day_of, open_event_store
from aggregator.frame import MERCHANT_ID, RAW_COLUMNS, RECEIVED_TIME_US
from aggregator.loop_cache import Generation
from aggregator.loop_days import day_bounds, from_us, to_us
from aggregator.loop_ingest import Ingested, ingest
from aggregator.loop_merchants import MerchantDirectory, MerchantInfo
from aggregator.loop_plan import closed_before_us, next_due_us, plan_tasks
from aggregator.loop_runners import DaskRunner, TaskRunner, preferred_worker
from aggregator.loop_tasks import DayJob, DayOutcome, TaskContext
from aggregator.metrics import AggregatorMetrics, CycleStats
from aggregator.settings import AggregatorSettings, CrashHook, CrashPoint
from gnomon.control import ControlStore, open_control_store
from gnomon.eventlog import EventLog, LogConsumer, Record, Stream
from gnomon.rollups import VersionRegistry, open_version_registry
from gnomon.settings import EngineMode
from gnomon.telemetry import Telemetry, setup_telemetry

log = logging.getLogger("gnomon.aggregator")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
VERSION_CACHE_S = 10.0
POLL_SLICE_S = 0.25
ONCE_MAX_IDLE_CYCLES = 30


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AggregatorDeps:
    """What the loop talks to; owned (opened and closed) by the caller."""

    consumer: LogConsumer
    events: EventStore
    control: ControlStore
    versions: VersionRegistry
    runner: TaskRunner
    telemetry: Telemetry
    clock: Callable[[], datetime] = field(default=utc_now)


@dataclass
class CycleResult:
    stats: CycleStats
    committed: bool  # False when stopped during retries (records left for redelivery)

    @property
    def idle(self) -> bool:
        """Nothing was read and nothing was recomputed."""
        return not self.stats.records and not self.stats.days_for_close


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class Aggregator:
    """The loop of one aggregator process (see the module docstring). Use from one thread."""

    def __init__(self, settings: AggregatorSettings, deps: AggregatorDeps) -> None:
        self.settings = settings
        self.deps = deps
        self.metrics = AggregatorMetrics(deps.telemetry)
        self.directory = MerchantDirectory(deps.control, retry_s=settings.merchant_retry_s)
        self._crash = CrashHook(settings.crash_at)
        self._fingerprints = _Lru(settings.fingerprint_days)  # (merchant, day, version) -> WindowPrints
        self._sizes = _Lru(settings.fingerprint_days)  # (merchant, day) -> events in the day when last computed
        self._versions: dict[tuple[str, date], tuple[float, tuple[int, ...]]] = {}  # cached VERSION_CACHE_S
        self._epoch = uuid.uuid4().hex  # names this process's generations (see loop_cache)
        self._attempt = 0  # numbers every processing attempt; a day's generation = attempt of its last upsert
        self._generations = _Lru(settings.fingerprint_days)  # (merchant, day) -> generation
        self.watermark_us = deps.events.load_watermark(settings.group)
        self._saved_watermark_us = self.watermark_us
        self._marks: dict[tuple[str, date], set[int]] = {}
        for mark in deps.events.marks():
            self._marks.setdefault((mark.merchant_id, mark.day), set()).add(mark.due_us)
        log.info("aggregator: watermark %s, %d open merchant-days", from_us(self.watermark_us), len(self._marks))

    # ---- the loop ----------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> int:
        """Cycle until `stop` is set; with `once`, until a cycle finds nothing to do and the group has no lag
        (or `ONCE_MAX_IDLE_CYCLES` idle cycles in a row: a lag that never drains is reported, not waited for).
        Returns the number of cycles run."""
        cycles = idle = 0
        while not stop.is_set():
            result = self.cycle(stop)
            cycles += 1
            idle = idle + 1 if result.idle else 0
            if once and idle:
                lag = self.deps.consumer.lag()
                if lag == 0:
                    break
                if idle >= ONCE_MAX_IDLE_CYCLES:
                    log.warning("--once: %d idle cycles but the group still reports a lag of %d; exiting", idle, lag)
                    break
        return cycles

    def cycle(self, stop: threading.Event | None = None) -> CycleResult:
        """Collect, process and commit one micro-batch (see the module docstring). Blocking."""
        stop = stop or threading.Event()
        started = time.monotonic()
        records = self._collect(stop)
        delay = RETRY_FIRST_S
        while True:
            try:
                stats = self._process(records)
                break
            except Exception:
                if stop.is_set():
                    log.warning("stopping with %d records not committed (they will be redelivered)", len(records))
                    return CycleResult(CycleStats(records=len(records)), committed=False)
                log.exception("aggregator cycle failed; retrying the same %d records in %.1f s", len(records), delay)
                stop.wait(delay)
                delay = min(RETRY_MAX_S, delay * 2)
        stats.seconds = time.monotonic() - started
        self.metrics.lag(self.deps.consumer.lag())
        self.metrics.cycle_done(stats)
        return CycleResult(stats, committed=True)

    def _collect(self, stop: threading.Event) -> list[Record]:
        """Poll until `max_records` records or the flush interval passed (or `stop`). Polls at least once, so a
        stall of this thread longer than the interval still takes what is waiting instead of an empty cycle."""
        deadline = time.monotonic() + self.settings.flush_interval_s
        records: list[Record] = []
        want = self.settings.max_records
        polled = False
        while len(records) < want and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 and polled:
                break
            records.extend(self.deps.consumer.poll(want - len(records), max(0.0, min(remaining, POLL_SLICE_S))))
            polled = True
        return records

    def _process(self, records: list[Record]) -> CycleStats:
        deps, settings = self.deps, self.settings
        self._attempt += 1
        clock = time.perf_counter
        t0 = clock()
        ingested = ingest(records, self.directory)
        stats = CycleStats(
            records=len(records),
            events=len(ingested.frame),
            duplicates=ingested.duplicates,
            unknown_events=ingested.unknown_events,
            undecodable=ingested.undecodable,
        )
        t1 = clock()
        if not ingested.frame.empty:
            deps.events.upsert(ingested.frame)
            self._crash.reached(CrashPoint.AFTER_UPSERT)
        t2 = clock()
        now = deps.clock()
        drained = not records and settings.idle_watermark and deps.consumer.lag() == 0
        watermark = self._advance_watermark(ingested, drained=drained, now_us=to_us(now))
        cb_us = closed_before_us(watermark, settings.lateness_us)
        jobs = self._jobs(ingested, watermark)
        stats.days_for_events = sum(1 for j in jobs if j.reason == "events")
        stats.days_for_close = sum(1 for j in jobs if j.reason == "close")
        outcomes = self._run_jobs(jobs, ingested, now, cb_us, stats)
        t3 = clock()
        if not ingested.frame.empty:
            newest = int(ingested.frame[RECEIVED_TIME_US].max())
            stats.freshness_s = max(0.0, (to_us(deps.clock()) - newest) / 1e6)
        if jobs:
            self._crash.reached(CrashPoint.AFTER_WRITE)
        if stats.days_for_close:
            self._crash.reached(CrashPoint.DURING_CLOSE)
        stats.windows_written = sum(o.windows_written for o in outcomes)
        stats.window_closes = sum(o.closes for o in outcomes)
        self._remember(jobs, outcomes, cb_us)
        if watermark > self._saved_watermark_us:
            deps.events.save_watermark(settings.group, watermark)
            self._saved_watermark_us = watermark
        self.watermark_us = watermark
        if records:
            deps.consumer.commit(records)
            self._crash.reached(CrashPoint.AFTER_COMMIT)
        t4 = clock()
        stats.stage_s = {"ingest": t1 - t0, "upsert": t2 - t1, "tasks": t3 - t2, "finish": t4 - t3}
        if records or jobs:
            log.info(
                "cycle: %d records, %d events (%d duplicates, %d of unknown merchants), %d merchant-days"
                " (%d closing), %d windows written, %d closed; ingest %.3f s, upsert %.3f s, tasks %.3f s"
                " (%d tasks), finish %.3f s",
                stats.records, stats.events, stats.duplicates, stats.unknown_events, len(jobs),
                stats.days_for_close, stats.windows_written, stats.window_closes, t1 - t0, t2 - t1, t3 - t2,
                stats.tasks, t4 - t3,
            )  # fmt: skip
        return stats

    def _run_jobs(
        self, jobs: list[DayJob], ingested: Ingested, now: datetime, cb_us: int, stats: CycleStats
    ) -> list[DayOutcome]:
        """Run the jobs on the task runner, in tasks sized by `plan_tasks`; record the task overhead."""
        if not jobs:
            return []
        settings = self.settings
        context = TaskContext(
            common=settings.common,
            key_events=settings.key_events,
            closed_before=from_us(cb_us),
            computed_at=now,
            crash_at=settings.crash_at,
        )
        weights = {(j.merchant_id, j.day): self._weight(j, ingested) for j in jobs}
        workers = self.deps.runner.workers()
        names = sorted(workers)
        by_worker: dict[str, list[DayJob]] = {}
        for job in jobs:
            by_worker.setdefault(preferred_worker(job.merchant_id, names), []).append(job)
        groups = [
            (group, worker or None)
            for worker, mine in sorted(by_worker.items())
            for group in plan_tasks(
                mine,
                lambda j: weights[(j.merchant_id, j.day)],
                slots=workers[worker],
                task_events=settings.task_events,
            )
        ]
        began = time.perf_counter()
        task_outcomes = self.deps.runner.run(context, groups)
        wall = time.perf_counter() - began
        stats.tasks = len(task_outcomes)
        stats.cache_hits = sum(t.cache_hits for t in task_outcomes)
        for outcome in task_outcomes:
            for stage, seconds in outcome.stage_s.items():
                stats.task_stage_s[stage] = stats.task_stage_s.get(stage, 0.0) + seconds
        if wall > 0 and task_outcomes:
            stats.dask_overhead = max(0.0, wall - max(t.seconds for t in task_outcomes)) / wall
        return [d for t in task_outcomes for d in t.days]

    # ---- steps -------------------------------------------------------------------------------------------

    def _advance_watermark(self, ingested: Ingested, *, drained: bool, now_us: int) -> int:
        """max(watermark, newest received time capped at now); the wall clock when the log is drained (nothing
        polled and no lag): every event still to come will be received after now."""
        watermark = self.watermark_us
        if ingested.max_received_us is not None:
            watermark = max(watermark, min(ingested.max_received_us, now_us))
        if drained:
            watermark = max(watermark, now_us)
        return watermark

    def _jobs(self, ingested: Ingested, watermark_us: int) -> list[DayJob]:
        wanted: dict[tuple[str, date], str] = {(m, day_of(d)): "events" for m, d in ingested.new_events}
        for key, dues in self._marks.items():
            if key not in wanted and min(dues) <= watermark_us:
                wanted[key] = "close"
        if not wanted:
            return []
        merchants: dict[str, MerchantInfo] = dict(ingested.merchants)
        missing = {m for m, _ in wanted if m not in merchants}
        if missing:
            merchants.update(self.directory.lookup(missing))
        new_rows = _rows_by_day(ingested.frame) if ingested.new_events else {}
        jobs: list[DayJob] = []
        for (merchant_id, day), reason in sorted(wanted.items()):
            info = merchants.get(merchant_id)
            if info is None:  # a merchant deleted while one of its days was open: nothing can be computed
                log.warning("dropping the open day %s of unknown merchant %r", day, merchant_id)
                self._forget_marks(merchant_id, day)
                continue
            versions = self._active_versions(info, day)
            previous = {v: self._fingerprints.get((merchant_id, day, v)) for v in versions}
            new = new_rows.get((merchant_id, day))
            before = self._generations.get((merchant_id, day))
            generation: Generation | None = None  # unknown and nothing new: no use of worker caches
            if new is not None:
                generation = (self._epoch, -1 if before is None else int(before), self._attempt)
            elif before is not None:
                generation = (self._epoch, int(before), int(before))
            jobs.append(DayJob(merchant_id, day, info.zone, info.currency, versions, previous, reason, generation, new))
        return jobs

    def _forget_marks(self, merchant_id: str, day: date) -> None:
        dues = self._marks.pop((merchant_id, day), set())
        self.deps.events.put_marks([], [DayMark(d, merchant_id, day) for d in dues])

    def _active_versions(self, info: MerchantInfo, day: date) -> tuple[int, ...]:
        key = (info.merchant_id, day)
        cached = self._versions.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        start, end = day_bounds(day, info.zone)
        versions = self.deps.versions.versions_in_use(info.merchant_id, start, end)
        if len(self._versions) > 100_000:
            self._versions.clear()
        self._versions[key] = (now + VERSION_CACHE_S, versions)
        return versions

    def _weight(self, job: DayJob, ingested: Ingested) -> int:
        known = int(self._sizes.get((job.merchant_id, job.day), 0))
        new = ingested.new_events.get((job.merchant_id, day_number(job.day)), 0)
        return (known + new) * len(job.versions)

    def _remember(self, jobs: list[DayJob], outcomes: list[DayOutcome], cb_us: int) -> None:
        """Keep what was written (fingerprints, day sizes) and save each day's next close as its mark."""
        by_day = {(o.merchant_id, o.day): o for o in outcomes}
        add: list[DayMark] = []
        remove: list[DayMark] = []
        updated: dict[tuple[str, date], set[int]] = {}
        for job in jobs:
            key = (job.merchant_id, job.day)
            outcome = by_day[key]
            self._sizes.put(key, outcome.events)
            if job.generation is not None:
                self._generations.put(key, job.generation[2])
            for version, fingerprints in outcome.fingerprints.items():
                self._fingerprints.put((job.merchant_id, job.day, version), fingerprints)
            due = next_due_us(job.day, job.zone, cb_us, self.settings.lateness_us)
            old = self._marks.get(key, set())
            keep = {due} if due is not None else set()
            add.extend(DayMark(d, job.merchant_id, job.day) for d in keep - old)
            remove.extend(DayMark(d, job.merchant_id, job.day) for d in old - keep)
            updated[key] = keep
        self.deps.events.put_marks(add, remove)
        for key, keep in updated.items():
            if keep:
                self._marks[key] = keep
            else:
                self._marks.pop(key, None)

    @property
    def open_days(self) -> dict[tuple[str, date], int]:
        """(merchant, day) -> the watermark at which its next window closes (for tests and status)."""
        return {key: min(dues) for key, dues in self._marks.items()}


def _rows_by_day(frame: pd.DataFrame) -> dict[tuple[str, date], pd.DataFrame]:
    """The frame's rows per (merchant, local day), raw columns only (what a worker merges into its cached day)."""
    out: dict[tuple[str, date], pd.DataFrame] = {}
    raw = frame[list(RAW_COLUMNS)]
    for key, index in frame.groupby([MERCHANT_ID, DAY], sort=False).indices.items():
        merchant_id, number = cast(tuple[str, int], key)
        out[(str(merchant_id), day_of(int(number)))] = raw.iloc[index].reset_index(drop=True)
    return out


# ---- wiring the real engines ------------------------------------------------------------------------------


def open_log(settings: AggregatorSettings) -> EventLog:
    """The region's event log (Pulsar topics carry `topic_suffix`). Blocking; raises LogUnavailable."""
    common = settings.common
    if common.engine_mode is EngineMode.REAL:
        from gnomon.eventlog.pulsar_log import PulsarEventLog

        return PulsarEventLog(
            common.pulsar, producer_name=f"aggregator-{uuid.uuid4().hex[:12]}", topic_suffix=settings.topic_suffix
        )
    from gnomon.eventlog import open_event_log

    return open_event_log(common, producer_name="aggregator")


@contextmanager
def open_aggregator(
    settings: AggregatorSettings, *, telemetry: Telemetry | None = None, client: Any = None
) -> Iterator[Aggregator]:
    """Open every engine, the consumer group and a Dask client (`gnomon.compute.dask_client` unless `client` is
    given), yield the Aggregator, close everything on exit. Blocking; raises the engines' *Unavailable errors."""
    with ExitStack() as stack:
        if telemetry is None:
            telemetry = setup_telemetry(settings.telemetry)
            stack.callback(telemetry.shutdown)
        if client is None:
            from gnomon.compute import dask_client

            client = stack.enter_context(dask_client(settings.common.dask))
        control = open_control_store(settings.common)
        stack.callback(control.close)
        versions = open_version_registry(settings.common)
        stack.callback(versions.close)
        events = open_event_store(settings.common)
        stack.callback(events.close)
        event_log = open_log(settings)
        stack.callback(event_log.close)
        consumer = event_log.subscribe(Stream.EVENTS, settings.group)
        stack.callback(consumer.close)
        deps = AggregatorDeps(consumer, events, control, versions, DaskRunner(client), telemetry)
        yield Aggregator(settings, deps)
