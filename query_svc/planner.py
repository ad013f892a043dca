"""Query planning: which cube answers a set of dimensions, which rollup grain covers which part of a range. Pure.

Cube (`choose_cube`): the dimensions a query groups OR filters by (time dimensions aside) become a set of
event-frame columns (`catalog`). The cube whose dimension set equals it answers exactly (`CubeSet.find`).
Otherwise a SESSION-scoped cube holding more dimensions may answer by rolling the extra ones up (summing
counters, uniting sketches): exact for session-scoped cubes, whose sessions are attributed once, to the
session's first event; the smallest such cube wins. Event-scoped cubes (page, event name) are never rolled
up: a session touching several values would count once per value. Caveat noted in the answer: values capped
into "(other)" by the aggregator stay in "(other)" after a roll-up (GA4 does the same).

Grain (`segments`): the coarsest rollup that answers exactly — DAY rows for every whole local day of the
range, HOUR rows for the parts that are not whole days, and HOUR rows throughout when the query groups by
dateHour. (The store has HOUR and DAY grains; week and month are whole days, so they read DAY rows.)

Pushdown (`pushdown_dims`): when the dimension filter pins every dimension of the cube to exact values at its
top level (an AND of EXACT / IN_LIST filters), the store is asked for those dimension values only instead of the
whole cube. When any of those pins is case-insensitive, every pinned value is lower-cased and the store returns
every stored case variant (`fold_case`): a superset of the matching rows, which the report's filter then narrows
exactly, as it does for every read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from aggregator.cubes import EVENT_DIMENSIONS, Cube, CubeSet, Scope
from gnomon.rollups import Grain, day_window
from query_svc.catalog import COLUMN_TO_DIMENSION, DIMENSIONS, DimKind
from query_svc.errors import Incompatible
from query_svc.model import And, FilterExpr, InList, MatchType, StringMatch

MAX_PUSHDOWN_VALUES: Final = 1_000


@dataclass(frozen=True)
class Pushdown:
    """The dimension tuples a read may be limited to; with `fold_case` they are lower-cased and match every
    stored case variant (see `RollupStore.read`)."""

    dims: tuple[tuple[str, ...], ...]
    fold_case: bool = False


@dataclass(frozen=True)
class Segment:
    """Read rows of `grain` whose window starts in [start, end)."""

    grain: Grain
    start: datetime
    end: datetime


@dataclass(frozen=True)
class CubeChoice:
    cube: Cube
    rolled_up: tuple[str, ...]  # cube columns the query does not use (summed over)

    @property
    def note(self) -> str:
        if not self.rolled_up:
            return ""
        return (
            f"answered from cube {self.cube.name!r} by summing over {', '.join(self.rolled_up)};"
            " values the aggregator capped into '(other)' stay in '(other)'"
        )


def columns_of(dimensions: Iterable[str]) -> frozenset[str]:
    """The event-frame columns needed for these (report) dimensions; time dimensions need none."""
    return frozenset(c for name in dimensions for c in DIMENSIONS[name].columns)


def _names(columns: Iterable[str]) -> str:
    return ", ".join(sorted(COLUMN_TO_DIMENSION.get(c, c) for c in columns)) or "(none)"


def answerable_sets(cubes: CubeSet) -> list[str]:
    return ["{" + _names(c.dimensions) + "}" for c in cubes]


def choose_cube(cubes: CubeSet, columns: frozenset[str]) -> CubeChoice:
    """The cube answering a query over exactly `columns`; raises Incompatible saying which sets are answerable."""
    exact = cubes.find(columns)
    if exact is not None:
        return CubeChoice(exact, ())
    if not columns & EVENT_DIMENSIONS:
        supersets = [c for c in cubes if c.scope is Scope.SESSION and columns <= set(c.dimensions)]
        if supersets:
            best = min(supersets, key=lambda c: len(c.dimensions))
            return CubeChoice(best, tuple(d for d in best.dimensions if d not in columns))
    raise Incompatible(
        f"no rollup holds the dimensions {{{_names(columns)}}} together; dimensions that can be grouped or"
        f" filtered together (plus date, dateHour, week, month): {'; '.join(answerable_sets(cubes))}",
        "dimensions",
    )


def _first_midnight_at_or_after(instant: datetime, zone: ZoneInfo) -> datetime:
    day = instant.astimezone(zone).date()
    start = day_window(day, zone)[0]
    return start if start >= instant else day_window(day + timedelta(days=1), zone)[0]


def _last_midnight_at_or_before(instant: datetime, zone: ZoneInfo) -> datetime:
    day = instant.astimezone(zone).date()
    start = day_window(day, zone)[0]
    return start if start <= instant else day_window(day - timedelta(days=1), zone)[0]


def segments(start: datetime, end: datetime, zone: ZoneInfo, *, hourly: bool) -> list[Segment]:
    """[start, end) (UTC-aware, on local hour boundaries) cut into the reads that answer it exactly.

    hourly: one HOUR segment. Otherwise DAY rows for the whole local days inside the range and HOUR rows for
    a leading and a trailing partial day (at most two HOUR segments; none for ranges of whole days).
    """
    if start >= end:
        return []
    if hourly:
        return [Segment(Grain.HOUR, start, end)]
    first = _first_midnight_at_or_after(start, zone)
    last = _last_midnight_at_or_before(end, zone)
    if first >= last:  # no whole day inside
        return [Segment(Grain.HOUR, start, end)]
    out: list[Segment] = []
    if start < first:
        out.append(Segment(Grain.HOUR, start, first))
    out.append(Segment(Grain.DAY, first, last))
    if last < end:
        out.append(Segment(Grain.HOUR, last, end))
    return out


def is_hourly(dimensions: Sequence[str]) -> bool:
    return "dateHour" in dimensions


def time_dimensions(dimensions: Sequence[str]) -> list[str]:
    return [d for d in dimensions if DIMENSIONS[d].kind is DimKind.TIME]


def _pins(expr: FilterExpr) -> list[StringMatch | InList]:
    """The top-level conjuncts of `expr` that pin a dimension to exact values (case-sensitive or not)."""
    items: Iterable[FilterExpr] = expr.items if isinstance(expr, And) else (expr,)
    out: list[StringMatch | InList] = []
    for item in items:
        if isinstance(item, InList) or (isinstance(item, StringMatch) and item.match_type is MatchType.EXACT):
            out.append(item)
    return out


def pushdown_dims(cube: Cube, expr: FilterExpr | None) -> Pushdown | None:
    """The dimension tuples of `cube` the filter allows (lower-cased when a pin is case-insensitive), or None
    when it does not pin every dimension or allows more than MAX_PUSHDOWN_VALUES tuples."""
    if expr is None or not cube.dimensions:
        return None
    pins = [p for p in _pins(expr) if (d := DIMENSIONS.get(p.field)) is not None and len(d.columns) == 1]
    fold_case = any(not pin.case_sensitive for pin in pins)
    allowed: dict[str, set[str]] = {}
    for pin in pins:
        values = {pin.value} if isinstance(pin, StringMatch) else set(pin.values)
        if fold_case:
            values = {v.lower() for v in values}
        column = DIMENSIONS[pin.field].columns[0]
        allowed[column] = allowed[column] & values if column in allowed else values
    if any(column not in allowed for column in cube.dimensions):
        return None
    combos = 1
    for column in cube.dimensions:
        combos *= len(allowed[column])
    if combos > MAX_PUSHDOWN_VALUES:
        return None
    return Pushdown(tuple(itertools.product(*(sorted(allowed[column]) for column in cube.dimensions))), fold_case)
