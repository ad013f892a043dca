"""A day's rollups as columns (`DayRollups`, built by `aggregator.compute.aggregate_day`) and their
materialization: `RollupRow` objects, or `RollupColumns` blocks (no object per row) per cube and grain for the
SQLite adapter's `write_columns` and per window for `RollupStore.replace_window_columns`; `Encoded` maps a cube's
dimension codes to the rows' label tuples.

Both give the same rows: stamped with processing `version` and `computed_at` (truncated to ms), `provisional`
when the window ends after `closed_before`. Pure; raises RollupInvalid for an invalid version or naive datetimes.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from functools import cached_property
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from aggregator.cubes import Cube
from aggregator.timezones import from_us, to_us
from gnomon.rollups.dims import CodedDims
from gnomon.rollups.model import (
    METRIC_FIELDS,
    Grain,
    Metrics,
    RollupKey,
    RollupRow,
    require_utc,
    require_version,
    restore_row,
    truncate_ms,
)
from gnomon.rollups.sqlite_store import RollupColumns

I64 = npt.NDArray[np.int64]
Obj = npt.NDArray[np.object_]
_US_PER_S = 1_000_000


@dataclass(frozen=True)
class CubeBlock:
    """The rows of one cube and grain, as columns (row i: window_start_us[i], dims[i], metrics[i])."""

    cube: Cube
    grain: Grain
    window_start_us: I64
    window_end_us: I64
    dims: CodedDims
    events: I64
    pageviews: I64
    sessions: I64
    engaged_sessions: I64
    bounces: I64
    session_duration_ms: I64
    revenue_micros: I64
    key_events: I64
    users: list[bytes]
    new_users: list[bytes]

    def __len__(self) -> int:
        return len(self.dims)

    def take(self, rows: npt.NDArray[np.intp]) -> CubeBlock:
        """The rows at positions `rows`, in that order."""
        taken = rows.tolist()
        arrays = {
            f.name: getattr(self, f.name)[rows] for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)
        }
        return replace(
            self,
            **arrays,
            dims=CodedDims(self.dims.codes[rows], self.dims.values),
            users=[self.users[i] for i in taken],
            new_users=[self.new_users[i] for i in taken],
        )

    def counters(self) -> tuple[I64, ...]:
        """The counter columns in `Metrics` field order."""
        return (
            self.events,
            self.pageviews,
            self.sessions,
            self.engaged_sessions,
            self.bounces,
            self.session_duration_ms,
            self.revenue_micros,
            self.key_events,
        )


@dataclass(frozen=True)
class DayRollups:
    """Every rollup of one (merchant, local day) as columns; `rows()` materializes `RollupRow`s."""

    merchant_id: str
    zone: str
    day: date
    day_start_us: int
    day_end_us: int
    blocks: tuple[CubeBlock, ...]

    def __len__(self) -> int:
        return sum(len(block) for block in self.blocks)

    def rows(self, *, version: int, computed_at: datetime, closed_before: datetime) -> list[RollupRow]:
        """Every row, stamped with processing `version` and `computed_at`; `provisional` when the window ends
        after `closed_before`. Raises RollupInvalid for an invalid version or naive datetimes
        (`aggregator.rows.build_rows`)."""
        return build_rows(self, version=version, computed_at=computed_at, closed_before=closed_before)

    def columns(self, *, version: int, computed_at: datetime, closed_before: datetime) -> list[RollupColumns]:
        """The same rows as `rows()`, as column blocks for `SqliteRollupStore.write_columns`
        (`aggregator.rows.column_blocks`). Raises as `rows()`."""
        return column_blocks(self, version=version, computed_at=computed_at, closed_before=closed_before)


@dataclass(frozen=True)
class Encoded:
    """A cube's dimension values as one integer code per event in [0, size) (`aggregator.compute`), and the
    rows' dimension labels of codes."""

    codes: I64
    size: int
    labels_of_dims: tuple[Obj, ...]  # per dimension: code -> label
    radices: tuple[int, ...]
    uniques: I64 | None  # mixed-radix value of each code when factorized, None when the code is that value

    def components(self, codes: I64) -> list[I64]:
        """Per dimension, the label codes of combined `codes`."""
        values = codes if self.uniques is None else self.uniques[codes]
        out: list[I64] = []
        for radix in reversed(self.radices[1:]):
            out.append(values % radix)
            values = values // radix
        out.append(values)
        return out[::-1] if self.radices else []

    def labels(self, codes: I64) -> list[tuple[str, ...]]:
        if not self.radices:
            return [()] * int(codes.size)
        columns = [lab[c].tolist() for lab, c in zip(self.labels_of_dims, self.components(codes), strict=True)]
        return list(zip(*columns, strict=True))

    def code_of(self, dims: tuple[str, ...]) -> int | None:
        """The code of a dimension tuple, or None when it does not occur."""
        value = 0
        for labels, radix, label in zip(self.labels_of_dims, self.radices, dims, strict=True):
            hit = np.flatnonzero(labels == label)
            if not hit.size:
                return None
            value = value * radix + int(hit[0])
        if self.uniques is None:
            return value if value < self.size else None
        hit = np.flatnonzero(self.uniques == value)
        return int(hit[0]) if hit.size else None

    @cached_property
    def sort_rank(self) -> I64:
        """Rank of every code [0, size) when ordered by its label tuple ascending (computed once)."""
        codes = np.arange(self.size, dtype=np.int64)
        if not self.radices:
            return codes
        keys = []
        for labels, comp in zip(self.labels_of_dims, self.components(codes), strict=True):
            rank = np.empty(labels.size, dtype=np.int64)
            rank[np.argsort(labels.astype(str), kind="stable")] = np.arange(labels.size)
            keys.append(rank[comp])
        order = np.lexsort(tuple(reversed(keys)))
        result = np.empty(self.size, dtype=np.int64)
        result[order] = codes
        return result


def build_rows(
    rollups: DayRollups,
    *,
    version: int,
    computed_at: datetime,
    closed_before: datetime,
    windows: Collection[tuple[str, str, int]] | None = None,
) -> list[RollupRow]:
    """Every row of `rollups` as `RollupRow`s; with `windows` ((cube name, grain value, window start in Unix
    seconds) each), only the rows of those windows.

    Rows are built like `model.restore_row` does (no per-row re-validation): every field was validated in
    bulk (merchant id and cube names once, dims are str tuples, counters int64, window starts whole UTC
    seconds). Garbage collection is paused meanwhile (the objects are acyclic).
    """
    version = require_version(version)
    at = truncate_ms(require_utc(computed_at, "computed_at"))
    closed_us = to_us(require_utc(closed_before, "closed_before"))
    out: list[RollupRow] = []
    starts: dict[int, datetime] = {}
    with _gc_paused():  # millions of acyclic objects: generational GC passes would dominate
        for whole in rollups.blocks:
            picked = _picked_rows(whole, windows)
            if picked is not None and not picked.size:
                continue
            block = whole if picked is None else whole.take(picked)
            window_start_us, window_end_us = block.window_start_us, block.window_end_us
            users, new_users, counters = block.users, block.new_users, block.counters()
            dims = [block.dims.values[c] for c in block.dims.codes.tolist()]
            window_starts = []
            for us in window_start_us.tolist():
                start = starts.get(us)
                if start is None:
                    start = starts[us] = from_us(us)
                window_starts.append(start)
            provisional = (window_end_us > closed_us).tolist()
            metrics = zip(*(c.tolist() for c in counters), users, new_users, strict=True)
            merchant, cube, grain = rollups.merchant_id, block.cube.name, block.grain
            out.extend(
                _make_row(merchant, cube, grain, ws, d, version, m, prov, at)
                for ws, d, m, prov in zip(window_starts, dims, metrics, provisional, strict=True)
            )
    return out


def _picked_rows(block: CubeBlock, windows: Collection[tuple[str, str, int]] | None) -> npt.NDArray[np.intp] | None:
    """Positions of the block's rows in `windows` (None: all rows, no selection)."""
    if windows is None:
        return None
    starts_s = [s for cube, grain, s in windows if cube == block.cube.name and grain == block.grain.value]
    if not starts_s or not len(block):
        return np.empty(0, dtype=np.intp)
    wanted = np.asarray(starts_s, dtype=np.int64) * _US_PER_S
    return np.flatnonzero(np.isin(block.window_start_us, wanted))


def column_blocks(
    rollups: DayRollups, *, version: int, computed_at: datetime, closed_before: datetime
) -> list[RollupColumns]:
    """Every row of `rollups` as one `RollupColumns` per cube and grain (the same rows as `build_rows`)."""
    stamp = _Stamp.of(version, computed_at, closed_before)
    return [stamp.columns(rollups.merchant_id, block) for block in rollups.blocks if len(block)]


def window_columns(
    rollups: DayRollups,
    *,
    version: int,
    computed_at: datetime,
    closed_before: datetime,
    windows: Collection[tuple[str, str, int]],
) -> dict[tuple[str, str, int], RollupColumns]:
    """The rows of each of `windows` ((cube name, grain value, window start in Unix seconds)) that has rows, as one
    `RollupColumns` per window (the same rows as `build_rows(..., windows=)`), for `replace_window_columns`."""
    stamp = _Stamp.of(version, computed_at, closed_before)
    out: dict[tuple[str, str, int], RollupColumns] = {}
    for block in rollups.blocks:
        picked = _picked_rows(block, windows)
        if picked is None or not picked.size:
            continue
        picked = picked[np.argsort(block.window_start_us[picked], kind="stable")]
        at = block.window_start_us[picked] // _US_PER_S
        cuts = [0, *(np.flatnonzero(at[1:] != at[:-1]) + 1).tolist(), picked.size]
        for a, b in pairwise(cuts):
            key = (block.cube.name, block.grain.value, int(at[a]))
            out[key] = stamp.columns(rollups.merchant_id, block.take(picked[a:b]))
    return out


@dataclass(frozen=True)
class _Stamp:
    """What `column_blocks` and `window_columns` stamp on every row: processing version, computation time,
    provisional cut-off."""

    version: int
    computed_at: datetime
    closed_us: int

    @classmethod
    def of(cls, version: int, computed_at: datetime, closed_before: datetime) -> _Stamp:
        version = require_version(version)
        at = truncate_ms(require_utc(computed_at, "computed_at"))
        return cls(version, at, to_us(require_utc(closed_before, "closed_before")))

    def columns(self, merchant_id: str, block: CubeBlock) -> RollupColumns:
        """The block's rows as RollupColumns."""
        return RollupColumns(
            merchant_id=merchant_id,
            cube=block.cube.name,
            grain=block.grain,
            version=self.version,
            window_start_s=block.window_start_us // _US_PER_S,
            dims=block.dims,
            counters=block.counters(),
            users=block.users,
            new_users=block.new_users,
            provisional=block.window_end_us > self.closed_us,
            computed_at=self.computed_at,
        )


def _row_maker() -> Callable[[str, str, Grain, datetime, tuple[str, ...], int, Any, bool, datetime], RollupRow]:
    """`model.restore_row`, about 1.8x faster: the frozen dataclasses' slots are set through their descriptors.
    Falls back to `restore_row` itself if the model's fields are not the ones this was written for."""
    layout = {
        RollupKey: ("merchant_id", "cube", "grain", "window_start", "dims", "version"),
        Metrics: METRIC_FIELDS,
        RollupRow: ("key", "metrics", "provisional", "computed_at"),
    }
    if any(tuple(x.name for x in fields(cls)) != names for cls, names in layout.items()):
        return restore_row
    key_set = [getattr(RollupKey, name).__set__ for name in layout[RollupKey]]
    metric_set = [getattr(Metrics, name).__set__ for name in METRIC_FIELDS]
    row_set = [getattr(RollupRow, name).__set__ for name in layout[RollupRow]]
    k0, k1, k2, k3, k4, k5 = key_set
    m0, m1, m2, m3, m4, m5, m6, m7, m8, m9 = metric_set
    r0, r1, r2, r3 = row_set
    new = object.__new__

    def make(
        merchant_id: str,
        cube: str,
        grain: Grain,
        window_start: datetime,
        dims: tuple[str, ...],
        version: int,
        metrics: Any,
        provisional: bool,
        computed_at: datetime,
    ) -> RollupRow:
        key = new(RollupKey)
        k0(key, merchant_id), k1(key, cube), k2(key, grain), k3(key, window_start), k4(key, dims), k5(key, version)
        e0, e1, e2, e3, e4, e5, e6, e7, e8, e9 = metrics
        values = new(Metrics)
        m0(values, e0), m1(values, e1), m2(values, e2), m3(values, e3), m4(values, e4)
        m5(values, e5), m6(values, e6), m7(values, e7), m8(values, e8), m9(values, e9)
        row = new(RollupRow)
        r0(row, key), r1(row, values), r2(row, provisional), r3(row, computed_at)
        return row

    return make


_make_row = _row_maker()


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
