"""GA4's calendar dimensions that the rollups do not group by, answered by splitting a date range. Pure.

GA4 has time dimensions whose value is constant over runs of consecutive local days but that are not one of
the engine's time labels: `year` ("2026"), `month` ("01".."12"), `week` (GA4's week of the year, "01".."53":
weeks start on Sunday and January 1st is always in week 01), `yearWeek` (year + week, "202601"), `isoWeek`
(ISO week number, Monday first, "01".."53") and `isoYear` (the ISO week-numbering year).

A report grouping by them is answered by cutting each date range into maximal runs of days with equal labels
(`runs`) and running one engine report per run: within a run the labels are constants, so every row of the
engine's report is exactly one GA4 row (users are the union of the run's sketches, ratios come from sums).
A label combination that occurs in two separate runs of one range (e.g. `month` "01" of 2025 and of 2026)
would need the union of the users of both runs, which separate reports cannot form: `runs` raises
InvalidQuery for it, naming the dimension and the alternative (`yearMonth`, `isoYearIsoWeek`, shorter range).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from query_svc.errors import InvalidQuery


def _week_of_year(day: date) -> int:
    """GA4 `week`: weeks start on Sunday; January 1st is in week 1 (so the first week may be short)."""
    jan1 = date(day.year, 1, 1)
    offset = (jan1.weekday() + 1) % 7  # days of week 1 before January 1st, counting from Sunday
    return (day.timetuple().tm_yday - 1 + offset) // 7 + 1


LABELS: Final[Mapping[str, Callable[[date], str]]] = {
    "year": lambda d: f"{d.year:04d}",
    "month": lambda d: f"{d.month:02d}",
    "week": lambda d: f"{_week_of_year(d):02d}",
    "yearWeek": lambda d: f"{d.year:04d}{_week_of_year(d):02d}",
    "isoWeek": lambda d: f"{d.isocalendar().week:02d}",
    "isoYear": lambda d: f"{d.isocalendar().year:04d}",
}
"""GA4 calendar dimension -> the label of a local date."""

ALTERNATIVE: Final[Mapping[str, str]] = {
    "year": "a date range within one year per row",
    "month": "'yearMonth'",
    "week": "'yearWeek'",
    "yearWeek": "a shorter date range",
    "isoWeek": "'isoYearIsoWeek'",
    "isoYear": "a shorter date range",
}


@dataclass(frozen=True)
class Run:
    """Consecutive local days [start, end] (inclusive) on which every requested calendar dimension is constant."""

    start: date
    end: date
    labels: tuple[str, ...]  # one per dimension, in the order asked


def runs(start: date, end: date, dimensions: Sequence[str], field: str = "dimensions") -> list[Run]:
    """The maximal runs of [start, end] with equal labels of `dimensions` (GA4 calendar dimensions), in order.

    Raises InvalidQuery when a label combination occurs in two separate runs (see the module docstring)."""
    if not dimensions:
        return [Run(start, end, ())]
    label_of = [LABELS[name] for name in dimensions]
    out: list[Run] = []
    seen: dict[tuple[str, ...], Run] = {}
    run_start = start
    current = tuple(f(start) for f in label_of)
    day = start
    while day <= end:
        following = day + timedelta(days=1)
        following_labels = tuple(f(following) for f in label_of) if following <= end else None
        if following_labels != current:
            run = Run(run_start, day, current)
            earlier = seen.get(current)
            if earlier is not None:
                raise _repeated(dimensions, current, earlier, run, field)
            seen[current] = run
            out.append(run)
            if following_labels is not None:
                run_start, current = following, following_labels
        day = following
    return out


def _repeated(dimensions: Sequence[str], labels: tuple[str, ...], first: Run, second: Run, field: str) -> InvalidQuery:
    shown = ", ".join(f"{d}={v!r}" for d, v in zip(dimensions, labels, strict=True))
    options = " or ".join(dict.fromkeys(ALTERNATIVE[d] for d in dimensions))
    return InvalidQuery(
        f"{field}: the row {shown} would cover {first.start}..{first.end} and {second.start}..{second.end};"
        f" Gnomon cannot unite the users of separate periods into one row; use {options} instead",
        field,
    )
