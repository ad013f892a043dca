"""Tables a person reads after a job, and `gnomon reprocess status`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from aggregator.reprocess.job import Engines, JobResult
from aggregator.reprocess.spec import ReprocessSpec
from aggregator.reprocess.verify import DayReport

TOP_CHANGES = 15


def verification_table(days: Sequence[DayReport]) -> Table:
    table = Table(title="verification", title_justify="left")
    for column in ("merchant-days", "events read", "non-bot events", "rows written", "rows read back", "failed"):
        table.add_column(column, justify="right")
    stored = [d.rows_stored for d in days if d.rows_stored is not None]
    table.add_row(
        f"{len(days):,}",
        f"{sum(d.events for d in days):,}",
        f"{sum(d.counted_events for d in days):,}",
        f"{sum(d.rows for d in days):,}",
        f"{sum(stored):,}" if stored else "(dry run)",
        str(sum(len(d.failed) for d in days)),
    )
    return table


def change_tables(days: Sequence[DayReport]) -> list[Table]:
    """Per cube and metric: rows changed and totals, active vs new; then the largest single changes."""
    totals: dict[str, list[int]] = {}
    for d in days:
        for key, (rows, old, new) in d.change_totals.items():
            t = totals.setdefault(key, [0, 0, 0])
            t[0] += rows
            t[1] += old
            t[2] += new
    by_metric = Table(title="what changed (DAY rows that differ, active version -> new)", title_justify="left")
    for column, justify in (("cube", "left"), ("metric", "left"), ("rows", "right"), ("active", "right"),
                            ("new", "right"), ("change", "right")):  # fmt: skip
        by_metric.add_column(column, justify=justify)  # type: ignore[arg-type]
    for key in sorted(totals, key=lambda k: (-abs(totals[k][2] - totals[k][1]), k)):
        cube, metric = key.split(".", 1)
        rows, old, new = totals[key]
        by_metric.add_row(cube, metric, f"{rows:,}", f"{old:,}", f"{new:,}", _change(old, new))
    top = Table(title=f"largest changes (top {TOP_CHANGES})", title_justify="left")
    for column in ("merchant", "day", "cube", "where", "metric", "active", "new"):
        top.add_column(column)
    changes = [(d, c) for d in days for c in d.changes]
    changes.sort(key=lambda dc: -abs(dc[1][4] - dc[1][3]))
    for d, (cube, where, metric, old, new) in changes[:TOP_CHANGES]:
        top.add_row(d.merchant_id, d.day, cube, where, metric, f"{old:,}", f"{new:,}")
    return [by_metric, top]


def _change(old: int, new: int) -> str:
    delta = new - old
    pct = f" ({delta / old:+.1%})" if old else ""
    return f"{delta:+,}{pct}"


def print_result(console: Console, result: JobResult) -> None:
    console.print(verification_table(result.days))
    if any(d.change_totals for d in result.days):
        for table in change_tables(result.days):
            console.print(table)
    else:
        console.print("no metric differs from the active version")
    if result.failed:
        console.print("[bold red]verification failed; nothing was flipped:[/]")
        for line in result.failed[:20]:
            console.print(f"  {line}")
    elif result.spec.dry_run:
        console.print("dry run: nothing written, nothing flipped")
    for flip in result.flipped:
        console.print(f"flipped {flip.merchant_id} [{flip.start:%Y-%m-%d %H:%M}, {flip.end:%Y-%m-%d %H:%M}) UTC"
                      f" to version {flip.version}")  # fmt: skip
    if result.seconds:
        console.print(
            f"scanned {result.scanned_records:,} log records ({result.kept_events:,} events kept) in"
            f" {result.seconds.get('scan', 0):.1f} s; rebuilt {len(result.days)} merchant-days in"
            f" {result.seconds.get('rebuild', 0):.1f} s"
        )


def print_status(console: Console, engines: Engines, job_id: str) -> None:
    spec_doc = engines.jobs.get(job_id, "spec")
    assert spec_doc is not None
    spec = ReprocessSpec.from_doc(spec_doc)
    phase: dict[str, Any] = engines.jobs.get(job_id, "phase") or {"phase": "created"}
    scans = engines.jobs.items(job_id, "scan/")
    days = [DayReport.from_doc(d) for d in engines.jobs.items(job_id, "day/").values()]
    total_days = len(spec.days()) * len(spec.merchants)
    console.print(
        f"[bold]{job_id}[/]  {phase['phase']}  (updated {phase.get('updated', '?')})\n"
        f"  days {spec.first_day}..{spec.last_day}, version {spec.version}, merchants {', '.join(spec.merchants)}"
        f"{'  [dry run]' if spec.dry_run else ''}\n"
        f"  by {spec.who}: {spec.why}\n"
        f"  scan: {sum(1 for s in scans.values() if s['done'])}/{len(scans)} partitions done,"
        f" {sum(int(s['records']) for s in scans.values()):,} records;"
        f" rebuilt {len(days)}/{total_days} merchant-days, {sum(len(d.failed) for d in days)} failed checks"
    )
    for merchant_id in spec.merchants:
        for flip in engines.versions.history(merchant_id):
            console.print(
                f"  flip {flip.flipped_at:%Y-%m-%d %H:%M:%S} {merchant_id} [{flip.start:%Y-%m-%d %H:%M},"
                f" {flip.end:%Y-%m-%d %H:%M}) -> v{flip.version} by {flip.who}: {flip.why}"
            )
