"""A reprocessing job, end to end: reserve -> scan the log -> rebuild days -> verify -> flip (or roll back).

    result = run_job(spec, settings, client, report=ConsoleReport(console))

Phases (the job's "phase" item; every step is resumable, so re-running the same command continues a killed job):
 1. reserve: `VersionRegistry.reserve` the version on each merchant's range, so the live aggregator starts
    computing it too for every day it touches (it caches versions for `VERSION_CACHE_S`: rebuilding starts only
    after that); dry runs reserve nothing and write no rollup;
 2. scan: one Dask task per partition of the events stream (`tasks.scan_partition`), in parallel;
 3. rebuild: Dask tasks over the merchant-days not rebuilt yet (`tasks.rebuild_days`);
 4. verify: every day's checks passed (totals against the raw events, rows read back), else no flip;
 5. flip: per merchant, the versions active on its range are saved ("flip/<merchant>") and then ONE
    `set_active` record makes the version active on exactly the range: a query resolves the range once, so it sees
    all of the old version or all of the new one. `rollback_job` restores the saved versions the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from aggregator.eventstore import open_event_store
from aggregator.loop_days import from_us
from aggregator.reprocess.spec import ReprocessSpec, SpecInvalid
from aggregator.reprocess.state import JobStore
from aggregator.reprocess.tasks import ReprocessContext, rebuild_days, scan_partition
from aggregator.reprocess.verify import DayReport
from aggregator.runtime import VERSION_CACHE_S, open_log
from aggregator.settings import AggregatorSettings
from gnomon.control import ControlStore
from gnomon.eventlog import Stream
from gnomon.rollups import VersionFlip, VersionRegistry, VersionSpan

POLL_S = 0.5
DAYS_PER_TASK_MAX = 16


class Report(Protocol):
    """Where a job shows its progress (a rich console in the CLI; nothing in tests)."""

    def phase(self, text: str) -> None: ...

    def progress(self, phase: str, done: float, total: float, events: int) -> None: ...


class SilentReport:
    def phase(self, text: str) -> None:
        pass

    def progress(self, phase: str, done: float, total: float, events: int) -> None:
        pass


@dataclass
class JobResult:
    job_id: str
    spec: ReprocessSpec
    days: list[DayReport] = field(default_factory=list)
    scanned_records: int = 0
    kept_events: int = 0
    flipped: list[VersionFlip] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [f"{d.merchant_id} {d.day}: {msg}" for d in self.days for msg in d.failed]


@dataclass
class Engines:
    """The coordinator's connections (the caller opens and closes them)."""

    jobs: JobStore
    versions: VersionRegistry
    control: ControlStore


def merchant_zones(control: ControlStore, merchants: Sequence[str]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for merchant_id in merchants:
        found = control.get_merchant(merchant_id)
        if found is None:
            raise SpecInvalid(f"unknown merchant {merchant_id!r} (see `gnomon merchant list`)")
        out[merchant_id] = (found.time_zone, found.currency)
    return out


def load_or_create(jobs: JobStore, spec: ReprocessSpec) -> ReprocessSpec:
    """The stored spec of this job when it exists (a resumed job keeps its log window), else store `spec`."""
    stored = jobs.get(spec.job_id, "spec")
    if stored is not None:
        return ReprocessSpec.from_doc(stored)
    jobs.put(spec.job_id, "spec", spec.to_doc())
    return spec


def set_phase(jobs: JobStore, job_id: str, phase: str, **extra: Any) -> dict[str, Any]:
    doc = {**(jobs.get(job_id, "phase") or {}), **extra, "phase": phase, "updated": datetime.now(UTC).isoformat()}
    jobs.put(job_id, "phase", doc)
    return doc


def run_job(
    spec: ReprocessSpec,
    settings: AggregatorSettings,
    client: Any,
    engines: Engines,
    *,
    report: Report | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> JobResult:
    """Run (or resume) the job of `spec` to its end; see the module docstring. Blocking.

    Raises SpecInvalid for unknown merchants or a version already active everywhere in the range, and what the
    engines raise (then re-run to resume)."""
    show = report or SilentReport()
    spec = load_or_create(engines.jobs, spec)
    job_id = spec.job_id
    result = JobResult(job_id, spec)
    zones = merchant_zones(engines.control, spec.merchants)
    phase = engines.jobs.get(job_id, "phase") or {}
    if phase.get("phase") in {"flipped", "rolled back", "dry run done"}:
        show.phase(f"job {job_id} already finished ({phase['phase']}); see `gnomon reprocess status {job_id}`")
        result.days = _day_reports(engines.jobs, job_id)
        return result
    if not spec.dry_run and "reserved_at" not in phase:
        for merchant_id, (zone, _) in zones.items():
            start, end = spec.range_of(zone)
            engines.versions.reserve(merchant_id, start, end, spec.version, job_id)
        phase = set_phase(engines.jobs, job_id, "reserved", reserved_at=clock().isoformat())
    began = time.monotonic()
    live_store = open_event_store(settings.common)
    try:
        watermark = live_store.load_watermark(settings.group)
    finally:
        live_store.close()
    now = clock()
    closed_before = from_us(max(0, watermark - settings.lateness_us)) if watermark else now
    ctx = ReprocessContext(settings, job_id, spec, zones, closed_before, now)

    set_phase(engines.jobs, job_id, "scanning")
    show.phase(f"scanning the log {spec.log_start:%Y-%m-%d %H:%M} .. {spec.log_end:%Y-%m-%d %H:%M} UTC")
    scans = _scan(ctx, client, engines.jobs, show)
    result.scanned_records = sum(int(s["records"]) for s in scans)
    result.kept_events = sum(int(s["kept"]) for s in scans)
    result.seconds["scan"] = time.monotonic() - began

    if "reserved_at" in phase:  # let every live aggregator see the reservation before rebuilding
        ready = datetime.fromisoformat(phase["reserved_at"]).timestamp() + VERSION_CACHE_S + 2
        wait = ready - clock().timestamp()
        if wait > 0:
            show.phase(f"waiting {wait:.0f} s for live aggregators to pick up version {spec.version}")
            time.sleep(wait)
    set_phase(engines.jobs, job_id, "rebuilding")
    t = time.monotonic()
    _rebuild(ctx, client, engines.jobs, show)
    result.seconds["rebuild"] = time.monotonic() - t
    result.days = _day_reports(engines.jobs, job_id)
    if result.failed:
        set_phase(engines.jobs, job_id, "verification failed", failed=result.failed[:50])
        return result
    if spec.dry_run:
        set_phase(engines.jobs, job_id, "dry run done")
        return result
    set_phase(engines.jobs, job_id, "verified")
    result.flipped = flip(spec, zones, engines)
    set_phase(engines.jobs, job_id, "flipped")
    return result


def _day_reports(jobs: JobStore, job_id: str) -> list[DayReport]:
    return [DayReport.from_doc(doc) for _, doc in sorted(jobs.items(job_id, "day/").items())]


def _scan(ctx: ReprocessContext, client: Any, jobs: JobStore, show: Report) -> list[dict[str, Any]]:
    log = open_log(ctx.settings)
    try:
        partitions = log.partition_count(Stream.EVENTS)
    finally:
        log.close()
    futures = [client.submit(scan_partition, ctx, p, pure=False) for p in range(partitions)]
    span = (ctx.spec.log_end - ctx.spec.log_start).total_seconds()
    start = ctx.spec.log_start
    while not all(f.done() for f in futures):
        docs = jobs.items(ctx.job_id, "scan/")
        done = sum(
            1.0 if d["done"] else ((datetime.fromisoformat(d["through"]) - start).total_seconds() / span)
            for d in docs.values()
            if d["through"] or d["done"]
        )
        show.progress("scan", done, partitions, sum(int(d.get("events", 0)) for d in docs.values()))
        time.sleep(POLL_S)
    out: list[dict[str, Any]] = client.gather(futures)
    show.progress("scan", partitions, partitions, sum(int(d.get("events", 0)) for d in out))
    return out


def _rebuild(ctx: ReprocessContext, client: Any, jobs: JobStore, show: Report) -> None:
    # days rebuilt without a failed check are done; failed ones are rebuilt again when the job is re-run
    done = {(d["merchant_id"], d["day"]) for d in jobs.items(ctx.job_id, "day/").values() if not d["failed"]}
    todo: list[tuple[str, date]] = [
        (m, day) for m in ctx.spec.merchants for day in ctx.spec.days() if (m, day.isoformat()) not in done
    ]
    total = len(todo) + len(done)
    slots = max(1, sum(int(n) for n in client.nthreads().values()))
    size = max(1, min(DAYS_PER_TASK_MAX, len(todo) // (slots * 4) or 1))
    groups = [todo[i : i + size] for i in range(0, len(todo), size)]
    futures = [client.submit(rebuild_days, ctx, group, pure=False) for group in groups]
    from distributed import as_completed

    finished, events = len(done), 0
    show.progress("rebuild", finished, total, events)
    for future in as_completed(futures):  # type: ignore[no-untyped-call]
        reports = future.result()
        finished += len(reports)
        events += sum(int(r["events"]) for r in reports)
        show.progress("rebuild", finished, total, events)


def flip(spec: ReprocessSpec, zones: dict[str, tuple[str, str]], engines: Engines) -> list[VersionFlip]:
    """Make the version active on each merchant's range; the versions active before are saved first."""
    flips = []
    for merchant_id, (zone, _) in sorted(zones.items()):
        start, end = spec.range_of(zone)
        item = f"flip/{merchant_id}"
        saved = engines.jobs.get(spec.job_id, item)
        if saved is None:  # saved before flipping, never recomputed after: a resumed flip keeps the true previous
            previous = engines.versions.active_spans(merchant_id, start, end)
            saved = {"previous": [_span_doc(s) for s in previous], "done": False}
            engines.jobs.put(spec.job_id, item, saved)
        if not saved["done"]:
            why = f"{spec.why} (reprocess job {spec.job_id})"
            flips.append(engines.versions.set_active(merchant_id, start, end, spec.version, spec.who, why))
            engines.jobs.put(spec.job_id, item, {**saved, "done": True})
    return flips


def rollback_job(job_id: str, who: str, why: str, engines: Engines) -> list[VersionFlip]:
    """Flip each merchant's range back to the versions active before the job flipped it. Raises SpecInvalid for an
    unknown job or one that never flipped."""
    saved = engines.jobs.items(job_id, "flip/")
    if engines.jobs.get(job_id, "spec") is None:
        raise SpecInvalid(f"no reprocess job {job_id!r} (see `gnomon reprocess status`)")
    if not saved:
        raise SpecInvalid(f"job {job_id} never flipped anything: nothing to roll back")
    flips = []
    for item, doc in sorted(saved.items()):
        merchant_id = item.removeprefix("flip/")
        for span in doc["previous"]:
            start, end = datetime.fromisoformat(span["start"]), datetime.fromisoformat(span["end"])
            flips.append(
                engines.versions.set_active(
                    merchant_id, start, end, int(span["version"]), who, f"{why} (rollback of {job_id})"
                )
            )
    set_phase(engines.jobs, job_id, "rolled back", rolled_back_by=who)
    return flips


def _span_doc(span: VersionSpan) -> dict[str, Any]:
    return {"start": span.start.isoformat(), "end": span.end.isoformat(), "version": span.version}
