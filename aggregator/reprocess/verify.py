"""Checks of a rebuilt merchant-day and its difference from the active version (pure functions).

Verification (a failed check blocks the flip):
- totals against the raw events: the day's `total` DAY row counts every non-bot event and page view of the day,
  and its HOUR rows add up to the same;
- row counts: the rows read back from the store for the new version equal the rows computed (not in dry runs).

The diff compares the DAY rows of the new version with those of the version active on that day, per cube, dims
and metric (users as the sketch's estimate): what changed, by how much, where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import pandas as pd

from aggregator.frame import IS_BOT, NAME
from gnomon.rollups import Grain, RollupRow, sketch_estimate

COUNTERS: Final = (
    "events", "pageviews", "sessions", "engaged_sessions", "bounces", "session_duration_ms", "revenue_micros",
    "key_events",
)  # fmt: skip
METRICS: Final = (*COUNTERS, "users")
MAX_CHANGES_PER_DAY: Final = 200

Cell = tuple[str, tuple[str, ...]]  # (cube, dims)


@dataclass
class DayReport:
    """What rebuilding one merchant-day found (stored as the job's "day/<merchant>/<day>" item)."""

    merchant_id: str
    day: str
    version: int
    active_version: int
    events: int = 0  # distinct events read (bots included)
    counted_events: int = 0  # non-bot events: what the `total` row must count
    pageviews: int = 0
    rows: int = 0
    rows_stored: int | None = None  # read back after writing (None: dry run)
    attempts: int = 1
    failed: list[str] = field(default_factory=list)
    changes: list[list[Any]] = field(default_factory=list)  # [cube, dims, metric, active, new], largest first
    change_totals: dict[str, list[int]] = field(default_factory=dict)  # "cube.metric" -> [rows, active, new]

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> DayReport:
        return cls(**doc)


def day_values(rows: Sequence[RollupRow]) -> dict[Cell, dict[str, int]]:
    """The DAY-grain rows as {(cube, dims): {metric: value}} (users: the sketch's rounded estimate)."""
    out: dict[Cell, dict[str, int]] = {}
    for row in rows:
        if row.key.grain is not Grain.DAY:
            continue
        m = row.metrics
        values = {name: int(getattr(m, name)) for name in COUNTERS}
        values["users"] = round(sketch_estimate(m.users))
        out[(row.key.cube, row.key.dims)] = values
    return out


def check_totals(report: DayReport, derived: pd.DataFrame, rows: Sequence[RollupRow]) -> None:
    """Fill the raw-event counts of `report` and append every failed total check to `report.failed`."""
    humans = derived[~derived[IS_BOT].to_numpy(dtype=bool)] if len(derived) else derived
    report.events = len(derived)
    report.counted_events = len(humans)
    report.pageviews = int((humans[NAME] == "page_view").sum()) if len(humans) else 0
    report.rows = len(rows)
    totals = [r for r in rows if r.key.cube == "total"]
    day_events = sum(r.metrics.events for r in totals if r.key.grain is Grain.DAY)
    hour_events = sum(r.metrics.events for r in totals if r.key.grain is Grain.HOUR)
    day_pageviews = sum(r.metrics.pageviews for r in totals if r.key.grain is Grain.DAY)
    for what, got in (("day events", day_events), ("hour events", hour_events)):
        if got != report.counted_events:
            report.failed.append(f"{what} {got} != {report.counted_events} non-bot events read")
    if day_pageviews != report.pageviews:
        report.failed.append(f"day pageviews {day_pageviews} != {report.pageviews} non-bot page views read")


def diff_days(report: DayReport, active: Sequence[RollupRow], new: Sequence[RollupRow]) -> None:
    """Record in `report` every (cube, dims, metric) whose DAY value differs between `active` and `new`."""
    before, after = day_values(active), day_values(new)
    zero = dict.fromkeys(METRICS, 0)
    changes: list[list[Any]] = []
    totals: dict[str, list[int]] = {}
    for cell in sorted(set(before) | set(after)):
        old, now = before.get(cell, zero), after.get(cell, zero)
        for metric in METRICS:
            if old[metric] != now[metric]:
                cube, dims = cell
                changes.append([cube, " / ".join(dims) or "(all)", metric, old[metric], now[metric]])
                t = totals.setdefault(f"{cube}.{metric}", [0, 0, 0])
                t[0] += 1
                t[1] += old[metric]
                t[2] += now[metric]
    changes.sort(key=lambda c: (-abs(c[4] - c[3]), c[0], c[1], c[2]))
    report.changes = changes[:MAX_CHANGES_PER_DAY]
    report.change_totals = totals
