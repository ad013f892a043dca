"""The aggregator's heavy step, run inside Dask workers: recompute whole merchant-days and write their rollups.

    outcome = run_task(context, jobs)        # Dask entry point: opens this process's stores from the settings

For each `DayJob` and each processing version active on that day: `load_day` (every distinct event of the
merchant-local day; from the worker's `loop_cache.DayCache` when it provably holds the same) -> `derive` ->
`aggregate_day` (pure: every HOUR and DAY row of the day for every cube, as columns) -> write.

Writing: each window (cube, grain, window_start) is written with `RollupStore.replace_window_columns` (its rows as
columns: the embedded store stores them as one pack, no object per row), so a dimension value that disappeared on
recomputation is deleted too. A window whose content (dims, metrics, provisional flag) has the
same fingerprint (`loop_prints.column_prints`, from the columns) as what this aggregator last wrote for it
(`DayJob.previous`, kept by the loop) is skipped, and only the written windows' columns are sliced out. When
the loop does not know what is stored (`previous` is None: first time since start-up) every window is written
and windows the store has for that day but the recomputation does not are emptied. Replaying any job therefore
converges to the same rows (idempotent overwrites).

Workers never get connections from the loop: each process opens its own stores from `TaskContext.common` on first
use and keeps them (`process_resources`, a per-process cache filled lazily, not at import).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from aggregator.derive import DERIVATION_VERSION, Deriver, default_deriver, rule_set
from aggregator.eventstore import EventStore, open_event_store
from aggregator.loop_cache import DayCache, Generation
from aggregator.loop_days import day_bounds
from aggregator.loop_prints import ColumnWindows, WindowKey, WindowPrints, group_windows, window_hash
from aggregator.rows import DayRollups
from aggregator.settings import CrashAt, CrashHook, CrashPoint
from gnomon.rollups import Grain, RollupRow, RollupStore, open_rollup_store
from gnomon.rollups.columns import RollupColumns
from gnomon.rollups.model import COUNTER_FIELDS
from gnomon.settings import CommonSettings, EngineMode


class AggregateDay(Protocol):
    """`aggregator.compute.aggregate_day`'s signature."""

    def __call__(
        self,
        events: pd.DataFrame,
        *,
        merchant_id: str,
        zone: str,
        day: date,
        key_events: frozenset[str],
        cubes: Any,
        currency: str,
    ) -> DayRollups: ...


@dataclass(frozen=True)
class DayJob:
    """One merchant-local day to recompute, for each of `versions`; `previous[v]` is what the loop knows was last
    written for version v (None: unknown)."""

    merchant_id: str
    day: date
    zone: str
    currency: str
    versions: tuple[int, ...]
    previous: Mapping[int, WindowPrints | None]
    reason: str = "events"  # "events" (new events arrived) or "close" (windows reached their close)
    generation: Generation | None = None  # see `loop_cache`: lets a worker reuse the day it loaded before
    new_events: pd.DataFrame | None = None  # the rows this cycle upserted into the day (RAW_COLUMNS)


@dataclass(frozen=True)
class TaskContext:
    """What every job of a cycle shares."""

    common: CommonSettings
    key_events: frozenset[str]
    closed_before: datetime
    computed_at: datetime
    crash_at: CrashAt | None = None


@dataclass
class DayOutcome:
    merchant_id: str
    day: date
    events: int
    fingerprints: dict[int, WindowPrints]
    windows_written: int
    closes: int


@dataclass
class TaskOutcome:
    days: list[DayOutcome] = field(default_factory=list)
    seconds: float = 0.0  # time spent inside the task (for the Dask overhead metric)
    pid: int = field(default_factory=os.getpid)  # the process that ran it
    stage_s: dict[str, float] = field(default_factory=dict)  # load, derive, compute, write
    cache_hits: int = 0


@dataclass
class Resources:
    """A process's stores and logic for jobs (workers build theirs from settings; unit tests pass fakes)."""

    events: EventStore
    rollups: RollupStore
    aggregate: AggregateDay
    cubes: Any
    crash: CrashHook = field(default_factory=lambda: CrashHook(None))
    days: DayCache = field(default_factory=DayCache)
    write_concurrency: int = 1  # windows replaced at once (CQL: 8)


def _default_aggregate() -> tuple[AggregateDay, Any]:
    from aggregator.compute import aggregate_day
    from aggregator.cubes import DEFAULT_CUBES

    return aggregate_day, DEFAULT_CUBES


_lock = threading.Lock()
_opened: dict[tuple[CommonSettings, CrashAt | None], Resources] = {}


def process_resources(common: CommonSettings, crash_at: CrashAt | None = None) -> Resources:
    """This process's resources for `common` (opened on first use, kept for the process's life); shared by the
    aggregator's tasks and reprocessing tasks in the same worker."""
    key = (common, crash_at)
    with _lock:
        found = _opened.get(key)
        if found is not None:
            return found
        aggregate, cubes = _default_aggregate()
        if common.engine_mode is EngineMode.REAL:
            from aggregator.eventstore.cql_store import CqlEventStore
            from gnomon.rollups.cql_engine import CqlEngine
            from gnomon.rollups.cql_store import CqlRollupStore

            engine = CqlEngine(common.cql)  # one driver session for both stores of this process
            resources = Resources(CqlEventStore(engine), CqlRollupStore(engine), aggregate, cubes, write_concurrency=8)
        else:
            resources = Resources(open_event_store(common), open_rollup_store(common), aggregate, cubes)
        resources.crash = CrashHook(crash_at, whole_group=True)
        _opened[key] = resources
        return resources


_derivers = threading.local()


def deriver_for(version: int) -> Deriver:
    """This thread's Deriver for a processing version: the derivation rule set of the same number when one is
    registered, else the default (a processing version may change only the rollup logic)."""
    cache: dict[int, Deriver] | None = getattr(_derivers, "cache", None)
    if cache is None:
        cache = _derivers.cache = {}
    found = cache.get(version)
    if found is None:
        try:
            rule_set(version)
        except KeyError:
            found = default_deriver()
        else:
            found = default_deriver() if version == DERIVATION_VERSION else Deriver(version)
        cache[version] = found
    return found


def run_task(context: TaskContext, jobs: Sequence[DayJob]) -> TaskOutcome:
    """Dask entry point: process `jobs` with this process's stores. Raises what the stores raise."""
    return process_jobs(process_resources(context.common, context.crash_at), context, jobs)


def process_jobs(resources: Resources, context: TaskContext, jobs: Sequence[DayJob]) -> TaskOutcome:
    """Recompute and write every job; blocking. Raises on the first failure (the loop retries the cycle)."""
    started = time.perf_counter()
    outcome = TaskOutcome()
    hits = resources.days.hits
    for job in jobs:
        outcome.days.append(_process_day(resources, context, job, outcome.stage_s))
    outcome.seconds = time.perf_counter() - started
    outcome.cache_hits = resources.days.hits - hits
    return outcome


def load_day(resources: Resources, job: DayJob) -> pd.DataFrame:
    """The day's events: from this worker's cache when it provably equals the store, else from the store."""
    raw = resources.days.get(job.merchant_id, job.day, job.generation, job.new_events)
    if raw is None:
        raw = resources.events.load_day(job.merchant_id, job.day)
    resources.days.put(job.merchant_id, job.day, job.generation, raw)
    return raw


def _process_day(resources: Resources, context: TaskContext, job: DayJob, spent: dict[str, float]) -> DayOutcome:
    clock = time.perf_counter
    t0 = clock()
    raw = load_day(resources, job)
    t1 = clock()
    spent["load"] = spent.get("load", 0.0) + t1 - t0
    result = DayOutcome(job.merchant_id, job.day, len(raw), {}, 0, 0)
    for version in job.versions:
        t1 = clock()
        derived = deriver_for(version).derive(raw)
        t2 = clock()
        rollups = resources.aggregate(
            derived,
            merchant_id=job.merchant_id,
            zone=job.zone,
            day=job.day,
            key_events=context.key_events,
            cubes=resources.cubes,
            currency=job.currency,
        )
        t3 = clock()
        windows = ColumnWindows(rollups, version, context.computed_at, context.closed_before)
        written, closes, fingerprints = write_day(resources, job, version, windows, job.previous.get(version))
        t4 = clock()
        for stage, seconds in (("derive", t2 - t1), ("compute", t3 - t2), ("write", t4 - t3)):
            spent[stage] = spent.get(stage, 0.0) + seconds
        result.windows_written += written
        result.closes += closes
        result.fingerprints[version] = fingerprints
    return result


def write_day(
    resources: Resources,
    job: DayJob,
    version: int,
    windows: ColumnWindows,
    previous: WindowPrints | None,
) -> tuple[int, int, WindowPrints]:
    """Replace every changed window of the day (see the module docstring).

    Returns (windows written, windows closed, the fingerprints now stored).
    """
    store = resources.rollups
    current = windows.prints()
    hashes = {key: window_hash(key) for key in current}
    known = previous.unpack() if previous is not None else None
    if known is None:
        changed = list(current)
        stale = _stored_windows(store, resources.cubes, job, version) - set(current)
    else:
        changed = [key for key, fp in current.items() if known.get(hashes[key], (None, True))[0] != fp[0]]
        gone = set(known) - set(hashes.values())
        stale = _stored_windows(store, resources.cubes, job, version) - set(current) if gone else set()
    closes = 0
    if known is not None:
        for key in changed:
            before = known.get(hashes[key])
            if before is not None and before[1] and not current[key][1]:
                closes += 1
    blocks = windows.columns(changed)

    def replace(key: WindowKey) -> None:
        cube, grain, start = key
        block = blocks.get(key) or _no_rows(job.merchant_id, cube, Grain(grain), version, windows.computed_at)
        resources.rollups.replace_window_columns(_utc_second(start), block)

    _replace_windows(resources, replace, changed, stale)
    return len(changed) + len(stale), closes, WindowPrints.pack(current)


def replace_day(resources: Resources, job: DayJob, version: int, rows: Sequence[RollupRow]) -> None:
    """Make `rows` the whole content of the merchant-day for `version`: every window of `rows` replaced, every
    other stored window of the day emptied (reprocessing: no fingerprints, nothing is known about the store)."""
    groups = group_windows(rows)
    stale = _stored_windows(resources.rollups, resources.cubes, job, version) - set(groups)

    def replace(key: WindowKey) -> None:
        cube, grain, start = key
        window = groups.get(key, [])
        resources.rollups.replace_window(job.merchant_id, cube, Grain(grain), _utc_second(start), version, window)

    _replace_windows(resources, replace, list(groups), stale)


def _no_rows(merchant_id: str, cube: str, grain: Grain, version: int, computed_at: datetime) -> RollupColumns:
    """An empty block: `replace_window_columns` with it empties a window."""
    none = np.zeros(0, dtype=np.int64)
    return RollupColumns(
        merchant_id, cube, grain, version, none, [], (none,) * len(COUNTER_FIELDS), [], [], none.astype(bool),
        computed_at,
    )  # fmt: skip


def _replace_windows(
    resources: Resources, replace: Callable[[WindowKey], None], changed: list[WindowKey], stale: set[WindowKey]
) -> None:
    """`replace` each `changed` window, then each `stale` one (emptied); the first changed window alone (the
    MID_WRITE crash point follows it), the rest up to `resources.write_concurrency` at once (the stores are
    thread-safe; CQL gains from it, SQLite serialises)."""
    if changed:
        replace(changed[0])
        resources.crash.reached(CrashPoint.MID_WRITE)
    rest = [*changed[1:], *sorted(stale)]
    if resources.write_concurrency > 1 and len(rest) > 1:
        list(_writer_pool(resources.write_concurrency).map(replace, rest))
    else:
        for key in rest:
            replace(key)


_pools: dict[int, ThreadPoolExecutor] = {}


def _writer_pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of window writers (created on first use, kept for the process's life)."""
    with _lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="rollup-writer")
        return pool


def _utc_second(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _stored_windows(store: RollupStore, cubes: Any, job: DayJob, version: int) -> set[WindowKey]:
    """Every window of the merchant-day that has rows in the store, over all cubes and both grains."""
    start, end = day_bounds(job.day, job.zone)
    found: set[WindowKey] = set()
    for cube in cubes:
        for grain in (Grain.HOUR, Grain.DAY):
            for ws in store.windows(job.merchant_id, cube.name, grain, start, end, version):
                found.add((cube.name, grain.value, int(ws.timestamp())))
    return found
