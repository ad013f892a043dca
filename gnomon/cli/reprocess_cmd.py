"""`gnomon reprocess`: recompute a range of history from the raw events with a new processing version, verify it,
flip it active atomically; `status` and `rollback` (see `aggregator.reprocess.job`)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from aggregator.reprocess.job import Engines

DESCRIPTION = """\
Recompute merchant-local days first..last from the raw events with processing version V, beside the active
version, then verify and flip exactly that range to V (queries see all-old or all-new, never a mix).

The raw events are read from the event log by publish time (Pulsar: a reader per partition seeking by publish
time; embedded: the log's index), from a day before the range up to --late-margin after it, and united with the
live event store (events arriving while the job runs are counted once: the live aggregator computes V too).
The aggregation code is the live aggregator's own. Work runs on Dask (GNOMON_DASK_SCHEDULER, or a local cluster).

Verification before the flip: every day's `total` rows equal the non-bot events read, and the rows read back
equal the rows written; a table shows what changed against the active version (metrics, by how much, where).
A failed check stops before the flip (exit code 1). Re-running the same command resumes a killed job.

examples:
  gnomon reprocess --from 2026-03-01 --to 2026-03-31 --merchant shop-1 --version 2 --why "tablets were desktops"
  gnomon reprocess --from 2026-03-01 --to 2026-03-31 --dry-run --why "what would v2 change?"
  gnomon reprocess status                      # every job: phase, progress, flips
  gnomon reprocess rollback rp-20260301-...    # restore the versions active before that job's flip
"""


def register(subparsers: Any) -> None:
    """Add `reprocess` to the `gnomon` command line."""
    p = subparsers.add_parser(
        "reprocess",
        help="recompute history with a new processing version; verify, flip, roll back",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", dest="first", type=date.fromisoformat, metavar="YYYY-MM-DD", help="first local day")
    p.add_argument(
        "--to", dest="last", type=date.fromisoformat, metavar="YYYY-MM-DD", help="last local day (inclusive)"
    )
    p.add_argument("--merchant", action="append", default=[], metavar="ID", help="repeatable; default: every merchant")
    p.add_argument("--version", type=int, metavar="V", help="version to build (default: newest derivation version)")
    p.add_argument("--dry-run", action="store_true", help="rebuild, verify and diff only: write and flip nothing")
    p.add_argument("--who", default=getpass.getuser(), help="recorded in the flip history (default: your user)")
    p.add_argument("--why", help="the reason, recorded in the flip history (required)")
    p.add_argument(
        "--late-margin", type=float, default=72.0, metavar="HOURS", help="read the log this long after the range"
    )
    p.add_argument("--log-from", type=_instant, metavar="ISO", help="override the log window's start (publish time)")
    p.add_argument("--log-to", type=_instant, metavar="ISO", help="override the log window's end (publish time)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", title="other actions")
    status = actions.add_parser("status", help="phase, progress, verification and flips of jobs")
    status.add_argument("job", nargs="?", help="one job id (default: every job)")
    rollback = actions.add_parser("rollback", help="flip a job's range back to the versions active before it")
    rollback.add_argument("job", help="the job id (see `gnomon reprocess status`)")
    rollback.add_argument("--who", dest="rollback_who", default=getpass.getuser())
    rollback.add_argument("--why", dest="rollback_why", default="rollback requested")
    p.set_defaults(handler=run)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, e.g. 2026-03-07T00:00:00+00:00")
    return value.astimezone(UTC)


def run(args: argparse.Namespace) -> int:
    """Dispatch to run / status / rollback; returns the exit code."""
    from rich.console import Console

    from aggregator.eventstore import EventStoreError
    from aggregator.reprocess.spec import SpecInvalid
    from aggregator.reprocess.state import JobStoreUnavailable
    from aggregator.settings import AggregatorSettings
    from gnomon.control import ControlError
    from gnomon.eventlog import EventLogError
    from gnomon.rollups import RollupError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(highlight=False)
    settings = AggregatorSettings.from_env()
    try:
        with ExitStack() as stack:
            engines = _open_engines(settings, stack)
            if args.action == "status":
                return _status(console, engines, args.job)
            if args.action == "rollback":
                return _rollback(console, engines, args.job, args.rollback_who, args.rollback_why)
            return _run(console, settings, engines, args, stack)
    except SpecInvalid as exc:
        print(f"gnomon reprocess: {exc}", file=sys.stderr)
        return 2
    except (EventLogError, EventStoreError, RollupError, ControlError, JobStoreUnavailable, OSError) as exc:
        print(f"gnomon reprocess: engine failure: {exc}; fix it and re-run the same command to resume", file=sys.stderr)
        return 1


def _open_engines(settings: Any, stack: ExitStack) -> Engines:
    from aggregator.reprocess.job import Engines
    from aggregator.reprocess.state import open_job_store
    from gnomon.control import open_control_store
    from gnomon.rollups import open_version_registry

    jobs = open_job_store(settings.common)
    stack.callback(jobs.close)
    versions = open_version_registry(settings.common)
    stack.callback(versions.close)
    control = open_control_store(settings.common)
    stack.callback(control.close)
    return Engines(jobs, versions, control)


def _run(console: Console, settings: Any, engines: Engines, args: argparse.Namespace, stack: ExitStack) -> int:
    from aggregator.derive import known_versions
    from aggregator.reprocess.job import run_job
    from aggregator.reprocess.progress import ConsoleReport
    from aggregator.reprocess.spec import SpecInvalid, build_spec
    from aggregator.reprocess.summary import print_result
    from gnomon.compute import dask_client

    if args.first is None or args.last is None:
        raise SpecInvalid("--from and --to are required (merchant-local days, YYYY-MM-DD); see --help")
    if not args.why:
        raise SpecInvalid('--why is required: it is recorded in the flip history (e.g. --why "fix tablets")')
    merchants = args.merchant or [m.merchant_id for m in engines.control.list_merchants()]
    version = args.version if args.version is not None else max(known_versions())
    spec = build_spec(
        first_day=args.first, last_day=args.last, merchants=merchants, version=version, who=args.who, why=args.why,
        now=datetime.now(UTC), dry_run=args.dry_run, late_margin=timedelta(hours=args.late_margin),
        log_start=args.log_from, log_end=args.log_to,
    )  # fmt: skip
    _refuse_active_version(spec, engines)
    console.print(f"reprocess job [bold]{spec.job_id}[/]: version {spec.version}, {len(spec.merchants)} merchant(s)")
    client = stack.enter_context(dask_client(settings.common.dask))
    with ConsoleReport(console) as report:
        result = run_job(spec, settings, client, engines, report=report)
    print_result(console, result)
    return 1 if result.failed else 0


def _refuse_active_version(spec: Any, engines: Engines) -> None:
    """A version cannot be rebuilt where queries read it (they would see it change piecemeal)."""
    from aggregator.reprocess.job import merchant_zones
    from aggregator.reprocess.spec import SpecInvalid

    if engines.jobs.get(spec.job_id, "spec") is not None:
        return  # resuming: the job may have flipped already
    for merchant_id, (zone, _) in merchant_zones(engines.control, spec.merchants).items():
        start, end = spec.range_of(zone)
        if any(s.version == spec.version for s in engines.versions.active_spans(merchant_id, start, end)):
            raise SpecInvalid(
                f"version {spec.version} is already active for {merchant_id} in that range: build a new version"
                " (--version N, with a rule set registered for N or the current code)"
            )


def _status(console: Console, engines: Engines, job: str | None) -> int:
    from aggregator.reprocess.summary import print_status

    jobs = [job] if job else engines.jobs.jobs()
    if not jobs:
        console.print("no reprocess job yet")
        return 0
    for job_id in jobs:
        if engines.jobs.get(job_id, "spec") is None:
            print(f"gnomon reprocess: no job {job_id!r}", file=sys.stderr)
            return 2
        print_status(console, engines, job_id)
    return 0


def _rollback(console: Console, engines: Engines, job_id: str, who: str, why: str) -> int:
    from aggregator.reprocess.job import rollback_job

    for flip in rollback_job(job_id, who, why, engines):
        console.print(
            f"{flip.merchant_id}: [{flip.start:%Y-%m-%d %H:%M}, {flip.end:%Y-%m-%d %H:%M}) UTC"
            f" -> version {flip.version}"
        )
    console.print(f"job {job_id} rolled back")
    return 0
