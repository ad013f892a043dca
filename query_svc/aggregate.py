"""Aggregation of rollup rows into report rows: sum counters, unite user sketches, derive ratios. Pure.

`group_rows` maps every kept rollup row to its report row (a group code) and sums the eight counters per group
with `np.bincount` when every partial sum stays below 2**53 (then float64 is exact) and `np.add.at` on int64
otherwise, so sums are always exact. Unique users are NEVER summed: a
group's users are the estimate of the HLL union of its rows' sketches (`gnomon.rollups.merge_sketches`),
so the users of a two-day range are the union of both days' users, not their sum. Unions are computed lazily
and only for the groups that need them (the page of rows shown, or every group when a filter or the order
uses a user metric), which keeps a 10k-value breakdown from merging sketches it never shows.

Ratios (engagementRate, bounceRate, averageSessionDuration) are computed from the summed numerator and
denominator of each group (never averaged from per-window ratios); a zero denominator gives 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from gnomon.rollups import EMPTY_SKETCH, merge_sketches, sketch_estimate
from gnomon.rollups.model import COUNTER_FIELDS
from query_svc.catalog import MetricDef, MetricKind
from query_svc.model import MetricType
from query_svc.reader import COUNTER_INDEX, RowBatch

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
IntP = npt.NDArray[np.intp]
Bool = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]

MICROS = 1_000_000


@lru_cache(maxsize=16_384)
def _one_estimate(sketch: bytes) -> int:
    """The rounded estimate of one serialized sketch (memoized: hourly series ask for the same hours again, and
    hashing the bytes is cheaper than deserializing them; at most ~16k sketches of <= 2.1 KB are kept)."""
    return round(sketch_estimate(sketch))


def users_estimate(sketches: Sequence[bytes]) -> int:
    """The rounded estimate of distinct users in the union of `sketches`."""
    present = [s for s in sketches if s and s != EMPTY_SKETCH]
    if not present:
        return 0
    if len(present) == 1:
        return _one_estimate(present[0])
    return round(merge_sketches(present).estimate)


EXACT_FLOAT_SUM = 2**53  # |sum| bound below which float64 bincount sums of int64 values are exact
FEW_GROUPS = 32  # up to this many groups, a group's rows are found by one scan each instead of a sort


@dataclass
class Groups:
    """Report rows before filtering/ordering: row g has the dimension values `columns[k][g]` (one object array per
    dimension, in request order), the summed counters `counters[:, g]` (shape (8, n)), and the sketches of the
    kept rollup rows `kept_rows[kept_codes == g]` of `batch`."""

    columns: list[Obj]
    counters: I64
    batch: RowBatch
    kept_rows: IntP
    kept_codes: IntP
    _estimates: dict[str, dict[int, int]] = field(default_factory=dict)
    _sorted: tuple[IntP, IntP, IntP] | None = None  # members, starts, ends (by group) once computed

    def __len__(self) -> int:
        return int(self.counters.shape[1])

    def key(self, g: int) -> tuple[str, ...]:
        """The dimension values of group `g`."""
        return tuple(str(c[g]) for c in self.columns)

    def keys(self) -> list[tuple[str, ...]]:
        if not self.columns:
            return [()] * len(self)
        return [tuple(k) for k in zip(*(c.tolist() for c in self.columns), strict=True)]

    def counter(self, name: str) -> I64:
        column: I64 = self.counters[COUNTER_INDEX[name]]
        return column

    def _by_group(self) -> tuple[IntP, IntP, IntP]:
        if self._sorted is None:
            order = np.argsort(self.kept_codes, kind="stable")
            codes = self.kept_codes[order]
            everyone = np.arange(len(self))
            self._sorted = (
                self.kept_rows[order],
                np.searchsorted(codes, everyone, side="left").astype(np.intp),
                np.searchsorted(codes, everyone, side="right").astype(np.intp),
            )
        return self._sorted

    def members(self, groups: IntP) -> list[IntP]:
        """The batch rows of each group in `groups`."""
        if len(groups) <= FEW_GROUPS and self._sorted is None:
            return [self.kept_rows[self.kept_codes == g] for g in groups.tolist()]
        members, starts, ends = self._by_group()
        return [members[starts[g] : ends[g]] for g in groups.tolist()]

    def sketch_estimates(self, sketch_field: str, groups: IntP) -> I64:
        """Users (`users` or `new_users`) of each group in `groups`, estimated from the union of its sketches."""
        column = self.batch.sketch_column(sketch_field)
        cache = self._estimates.setdefault(sketch_field, {})
        out = np.empty(len(groups), dtype=np.int64)
        todo = np.array([g for g in groups.tolist() if g not in cache], dtype=np.intp)
        for g, rows in zip(todo.tolist(), self.members(todo), strict=True):
            cache[g] = users_estimate(column.take(rows))
        for i, g in enumerate(groups.tolist()):
            out[i] = cache[g]
        return out

    def with_zero_rows(self, keys: Sequence[tuple[str, ...]]) -> Groups:
        """These groups plus one all-zero group per key of `keys` (gap filling); they own no rollup rows."""
        if not keys:
            return self
        zeros = np.zeros((self.counters.shape[0], len(keys)), dtype=np.int64)
        added = [np.array(list(values), dtype=object) for values in zip(*keys, strict=True)]
        return Groups(
            [np.concatenate([old, new]) for old, new in zip(self.columns, added, strict=True)],
            np.concatenate([self.counters, zeros], axis=1),
            self.batch,
            self.kept_rows,
            self.kept_codes,
        )


def _sum_by_group(values: I64, codes: IntP, n: int) -> I64:
    """Exact int64 sums of `values` per group code in [0, n)."""
    if not len(values):
        return np.zeros(n, dtype=np.int64)
    bound = max(abs(int(values.max())), abs(int(values.min()))) * len(values)
    if bound < EXACT_FLOAT_SUM:  # every partial sum is an integer float64 represents exactly
        return np.bincount(codes, weights=values, minlength=n).astype(np.int64)
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, codes, values)
    return out


def group_rows(batch: RowBatch, row_groups: IntP, columns: list[Obj], n: int) -> Groups:
    """Sum `batch` rows into `n` groups: `row_groups[i]` is row i's group, -1 drops the row; `columns` hold the
    groups' dimension values. Counter sums are exact (int64)."""
    kept = np.flatnonzero(row_groups >= 0)
    everything = len(kept) == len(row_groups)
    codes = row_groups if everything else row_groups[kept]
    counters = np.zeros((len(COUNTER_FIELDS), n), dtype=np.int64)
    for k in range(len(COUNTER_FIELDS)):
        column = batch.counters[k]
        counters[k] = _sum_by_group(column if everything else column[kept], codes, n)
    return Groups(columns, counters, batch, kept, codes)


def metric_values(metric: MetricDef, groups: Groups, rows: IntP) -> I64 | F64:
    """The values of `metric` for `rows` (group indices): int64 for INTEGER and CURRENCY (micros) metrics,
    float64 for FLOAT and SECONDS metrics."""
    if metric.kind is MetricKind.COUNTER:
        return groups.counter(metric.field)[rows]
    if metric.kind is MetricKind.SKETCH:
        return groups.sketch_estimates(metric.field, rows)
    numerator = groups.counter(metric.field)[rows].astype(np.float64)
    denominator = groups.counter(metric.denominator)[rows].astype(np.float64)
    out = np.zeros(len(rows), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out * metric.scale


def numeric(metric: MetricDef, values: I64 | F64) -> F64:
    """Values as filters and ordering compare them: currency in currency units, everything else as is."""
    as_float = values.astype(np.float64)
    return as_float / MICROS if metric.type is MetricType.CURRENCY else as_float
