"""The two kinds of Dask task of a reprocessing job (run in workers; each process opens its own connections).

- `scan_partition`: read one partition of the events stream by publish time (Pulsar: a Reader seeking by publish
  time; embedded: the log's publish-time index), keep the events of the job's merchants whose merchant-local day
  is in the job's range, and store them in the *history* event store (`open_history_store`): the same
  deduplicated store as the live aggregator's, separate from it. Progress is saved as "scan/<partition>" after
  every chunk (`SCAN_CHUNK_RECORDS` records or `SCAN_CHUNK_BYTES`, so memory stays bounded); a resumed scan
  restarts from the last saved publish time (re-reading is idempotent).
- `rebuild_days`: for each merchant-day, the union of the history store and the live event store (one row per
  event id, the later-received copy) -> the live aggregator's own code (`deriver_for(version)`, `compute_day`,
  `replace_day`) -> rows of the job's version; verified and diffed (`verify`) and, unless a dry run, written.
  A day the live aggregator changed meanwhile (its `day_fingerprint` moved) is rebuilt again, so a live event is
  never missing from the new version: the live aggregator also computes reserved versions
  (`VersionRegistry.versions_in_use`) for every day it touches, and whichever writes last read a superset.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import pandas as pd

from aggregator.compute import compute_day
from aggregator.cubes import DEFAULT_CUBES
from aggregator.eventstore import DAY, EventStore, day_number
from aggregator.eventstore.sqlite_store import SqliteEventStore
from aggregator.frame import EVENT_ID, EVENT_TIME_US, MERCHANT_ID
from aggregator.loop_days import day_bounds
from aggregator.loop_ingest import ingest, latest_copies
from aggregator.loop_merchants import MerchantDirectory
from aggregator.loop_tasks import DayJob, Resources, deriver_for, process_resources, replace_day
from aggregator.reprocess.spec import ReprocessSpec
from aggregator.reprocess.state import JobStore, open_job_store
from aggregator.reprocess.verify import DayReport, check_totals, diff_days
from aggregator.settings import AggregatorSettings
from gnomon.control import open_control_store
from gnomon.eventlog import EventLog, Record, Stream
from gnomon.rollups import Grain, RollupRow, RollupStore, VersionRegistry, open_version_registry
from gnomon.rollups.model import ALL_SKETCHES
from gnomon.settings import CommonSettings, EngineMode

SCAN_CHUNK_RECORDS: Final = 200  # log records (collector batches of up to 500 events) decoded and stored at once
SCAN_CHUNK_BYTES: Final = 16 * 1024 * 1024
MAX_ATTEMPTS: Final = 5
HISTORY_FILE_NAME: Final = "history.sqlite3"
HISTORY_TTL_S: Final = 7 * 86_400  # the history copy only has to outlive the job


@dataclass(frozen=True)
class ReprocessContext:
    """What every task of a job shares (pickled to the workers)."""

    settings: AggregatorSettings
    job_id: str
    spec: ReprocessSpec
    merchants: dict[str, tuple[str, str]]  # merchant -> (zone, currency)
    closed_before: datetime
    computed_at: datetime


def open_history_store(common: CommonSettings) -> EventStore:
    """The history event store: embedded `<data_dir>/history.sqlite3`; real: keyspace `<keyspace>_history`."""
    if common.engine_mode is EngineMode.REAL:
        from aggregator.eventstore.cql_store import CqlEventStore

        return CqlEventStore.connect(common.cql, keyspace=f"{common.cql.keyspace}_history", ttl_s=HISTORY_TTL_S)
    return SqliteEventStore(common.data_dir / HISTORY_FILE_NAME)


@dataclass
class _Process:
    """One worker process's connections for reprocessing (opened on first use, kept)."""

    live: Resources
    history: EventStore
    versions: VersionRegistry
    jobs: JobStore
    log: EventLog | None = None
    directory: MerchantDirectory | None = None


_lock = threading.Lock()
_opened: dict[tuple[CommonSettings, str], _Process] = {}


def _process(settings: AggregatorSettings) -> _Process:
    with _lock:
        key = (settings.common, settings.topic_suffix)
        found = _opened.get(key)
        if found is None:
            common = settings.common
            live = process_resources(common)
            found = _opened[key] = _Process(
                live, open_history_store(common), open_version_registry(common), open_job_store(common)
            )
        return found


def _log_and_directory(proc: _Process, settings: AggregatorSettings) -> tuple[EventLog, MerchantDirectory]:
    with _lock:
        if proc.log is None or proc.directory is None:
            from aggregator.runtime import open_log

            proc.log = open_log(settings)
            proc.directory = MerchantDirectory(open_control_store(settings.common), retry_s=settings.merchant_retry_s)
        return proc.log, proc.directory


# ---- scanning the log -------------------------------------------------------------------------------------------


def scan_partition(ctx: ReprocessContext, partition: int) -> dict[str, Any]:
    """Scan one partition into the history store (see the module docstring); returns its final "scan" doc."""
    proc = _process(ctx.settings)
    item = f"scan/{partition}"
    doc = proc.jobs.get(ctx.job_id, item) or {"records": 0, "events": 0, "kept": 0, "through": None, "done": False}
    if doc["done"]:
        return doc
    log, directory = _log_and_directory(proc, ctx.settings)
    spec = ctx.spec
    start = datetime.fromisoformat(doc["through"]) if doc["through"] else spec.log_start
    first, last = day_number(spec.first_day), day_number(spec.last_day)
    wanted = list(ctx.merchants)
    chunk: list[Record] = []
    size = 0

    def flush() -> None:
        ingested = ingest(chunk, directory)
        frame = ingested.frame
        keep = frame[MERCHANT_ID].isin(wanted) & frame[DAY].between(first, last)
        kept = frame[keep.to_numpy()]
        if len(kept):
            proc.history.upsert(kept.reset_index(drop=True))
        doc["records"] += len(chunk)
        doc["events"] = int(doc.get("events", 0)) + ingested.decoded
        doc["kept"] += len(kept)
        doc["through"] = chunk[-1].publish_time.isoformat()
        proc.jobs.put(ctx.job_id, item, doc)
        chunk.clear()

    for record in log.read_by_publish_time(Stream.EVENTS, start, spec.log_end, [partition]):
        chunk.append(record)
        size += len(record.payload)
        if len(chunk) >= SCAN_CHUNK_RECORDS or size >= SCAN_CHUNK_BYTES:
            flush()
            size = 0
    if chunk:
        flush()
    doc["done"] = True
    proc.jobs.put(ctx.job_id, item, doc)
    return doc


# ---- rebuilding days --------------------------------------------------------------------------------------------


def union_of_days(history: pd.DataFrame, live: pd.DataFrame) -> pd.DataFrame:
    """One row per event id of the two loads of a day, the later-received copy; ordered like `load_day`."""
    if history.empty:
        return live
    if live.empty:
        return history
    both = latest_copies(pd.concat([history, live], ignore_index=True), [EVENT_ID])
    return both.sort_values([EVENT_TIME_US, EVENT_ID], ignore_index=True)


def stored_rows(
    store: RollupStore,
    merchant_id: str,
    day: date,
    zone: str,
    version: int,
    grains: Sequence[Grain] = (Grain.HOUR, Grain.DAY),
    sketches: Collection[str] = ALL_SKETCHES,
) -> list[RollupRow]:
    """Every row of the merchant-day in `version` of `grains`, all cubes; sketch columns not in `sketches` are
    not read (empty in the rows)."""
    start, end = day_bounds(day, zone)
    return [
        row
        for cube in DEFAULT_CUBES
        for grain in grains
        for row in store.read(merchant_id, cube.name, grain, start, end, version, sketches=sketches)
    ]


def rebuild_days(ctx: ReprocessContext, days: Sequence[tuple[str, date]]) -> list[dict[str, Any]]:
    """Rebuild, verify, diff and (unless a dry run) write each merchant-day; returns the reports stored."""
    proc = _process(ctx.settings)
    return [_rebuild_day(ctx, proc, merchant_id, day).to_doc() for merchant_id, day in days]


def _rebuild_day(ctx: ReprocessContext, proc: _Process, merchant_id: str, day: date) -> DayReport:
    spec, live = ctx.spec, proc.live
    zone, currency = ctx.merchants[merchant_id]
    version = spec.version
    job = DayJob(merchant_id, day, zone, currency, (version,), {version: None}, reason="reprocess")
    active = proc.versions.active_version(merchant_id, day_bounds(day, zone)[0])
    for attempt in range(1, MAX_ATTEMPTS + 1):
        before = live.events.day_fingerprint(merchant_id, day)
        raw = union_of_days(proc.history.load_day(merchant_id, day), live.events.load_day(merchant_id, day))
        derived = deriver_for(version).derive(raw)
        rows = compute_day(
            derived, merchant_id=merchant_id, zone=zone, currency=currency, day=day, version=version,
            computed_at=ctx.computed_at, key_events=ctx.settings.key_events, closed_before=ctx.closed_before,
            cubes=DEFAULT_CUBES,
        )  # fmt: skip
        report = DayReport(merchant_id, day.isoformat(), version, active, attempts=attempt)
        check_totals(report, derived, rows)
        # The diff compares DAY values (users: the sketch's estimate); a count needs no sketch at all.
        active_days = stored_rows(live.rollups, merchant_id, day, zone, active, (Grain.DAY,), {"users"})
        diff_days(report, active_days, rows)
        if spec.dry_run:
            break
        replace_day(live, job, version, rows)
        report.rows_stored = len(stored_rows(live.rollups, merchant_id, day, zone, version, sketches=()))
        if report.rows_stored != report.rows:
            report.failed.append(f"{report.rows_stored} rows read back != {report.rows} rows written")
        if live.events.day_fingerprint(merchant_id, day) == before:
            break
    proc.jobs.put(ctx.job_id, f"day/{merchant_id}/{day.isoformat()}", report.to_doc())
    return report
