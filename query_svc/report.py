"""The report pipeline over rollups: validate -> plan -> read -> filter dimensions -> group -> metric filter ->
order -> page -> values (+ comparison, totals). Blocking (reads); no gRPC, no caching (see `engine`).

Dimension filters run before grouping, on the distinct dimension tuples of the cube; metric filters run on the
grouped rows. Totals cover every row that passes the dimension filter (before the metric filter and paging),
as in GA4; without a dimension filter they are read from the `total` cube, which counts each session once
(summing an event-scoped cube such as pages would count a session once per page it touched). With a dimension
filter on an event-scoped cube, the session metrics of the totals are that sum (a session that touched two
matching pages counts twice); event metrics and users (sketch unions) are exact either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.cubes import CubeSet
from query_svc import dates, filters
from query_svc.aggregate import F64, Groups, group_rows, metric_values, numeric
from query_svc.catalog import (
    DIMENSIONS,
    METRICS,
    REPORT_DIMENSIONS,
    DimensionDef,
    DimKind,
    MetricDef,
    MetricKind,
    dimension_defs,
    metric_defs,
)
from query_svc.errors import InvalidQuery
from query_svc.model import MetricType, MetricValue, OrderBy, ReportRequest, ResolvedRange, ResultRow
from query_svc.order import order_rows
from query_svc.planner import CubeChoice, choose_cube, columns_of, is_hourly, pushdown_dims, segments
from query_svc.reader import Deadline, RollupReader, RowBatch

IntP = npt.NDArray[np.intp]
Obj = npt.NDArray[np.object_]

MAX_METRICS = 30
MAX_DIMENSIONS = 9
TOTAL_CUBE = "total"


@dataclass(frozen=True)
class ReportSpec:
    """A validated request: its definitions, cube and the dimensions used."""

    request: ReportRequest
    dimensions: tuple[DimensionDef, ...]
    metrics: tuple[MetricDef, ...]
    choice: CubeChoice
    order_bys: tuple[OrderBy, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.api_name for d in self.dimensions)

    @property
    def time_dimensions(self) -> tuple[str, ...]:
        return tuple(d.api_name for d in self.dimensions if d.kind is DimKind.TIME)

    @property
    def sketches(self) -> frozenset[str]:
        """The sketch columns the metrics requested, filtered on or ordered by need (the others are not read)."""
        names = [
            *(m.api_name for m in self.metrics),
            *filters.fields(self.request.metric_filter),
            *(o.name for o in self.order_bys if o.is_metric),
        ]
        return frozenset(METRICS[n].field for n in names if METRICS[n].kind is MetricKind.SKETCH)


def _duplicates(names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]


def validate(request: ReportRequest, cubes: CubeSet) -> ReportSpec:
    """Check every name, filter and option of `request`; raises InvalidQuery / UnknownName / Incompatible."""
    if not request.metrics:
        raise InvalidQuery("at least one metric is required", "metrics")
    if len(request.metrics) > MAX_METRICS or len(request.dimensions) > MAX_DIMENSIONS:
        raise InvalidQuery(f"at most {MAX_METRICS} metrics and {MAX_DIMENSIONS} dimensions per request")
    for kind, names in (("dimensions", request.dimensions), ("metrics", request.metrics)):
        repeated = _duplicates(names)
        if repeated:
            raise InvalidQuery(f"{kind} repeat {repeated}", kind)
    dims = tuple(dimension_defs(request.dimensions))
    metrics = tuple(metric_defs(request.metrics))
    filters.validate(
        request.dimension_filter, dimensions=frozenset(REPORT_DIMENSIONS), metrics=frozenset(), field="dimension_filter"
    )
    filters.validate(request.metric_filter, dimensions=frozenset(), metrics=frozenset(METRICS), field="metric_filter")
    filter_dims = filters.fields(request.dimension_filter)
    timed = [name for name in filter_dims if DIMENSIONS[name].kind is DimKind.TIME]
    if timed:
        raise InvalidQuery(f"dimension_filter: filter by {timed[0]} with the date range instead", "dimension_filter")
    order_bys = request.order_bys
    for order in order_bys:
        if order.is_metric:
            metric_defs([order.name], field="order_bys")
        elif order.name not in request.dimensions:
            raise InvalidQuery(
                f"order_bys: dimension {order.name!r} is not a requested dimension {list(request.dimensions)}",
                "order_bys",
            )
    non_time = [d.api_name for d in dims if d.kind is not DimKind.TIME]
    if not order_bys and non_time:
        order_bys = (OrderBy(metrics[0].api_name, desc=True),)
    if request.fill_time_gaps and (len(dims) != 1 or dims[0].kind is not DimKind.TIME):
        raise InvalidQuery("gap filling needs exactly one time dimension and no other dimension", "dimensions")
    choice = choose_cube(cubes, columns_of([*non_time, *filter_dims]))
    return ReportSpec(request, dims, metrics, choice, order_bys)


# --------------------------------------------------------------------------------------------- grouping


@dataclass
class RangeGroups:
    """The grouped rows of one range, before metric filtering."""

    range: ResolvedRange
    groups: Groups
    batch: RowBatch
    kept_rows: IntP  # batch rows passing the dimension filter
    provisional: bool
    grains: tuple[str, ...]
    reads: int
    cached_windows: int


def _dimension_values(definition: DimensionDef, positions: dict[str, int], dims: list[tuple[str, ...]]) -> list[str]:
    idx = [positions[c] for c in definition.columns]
    if len(idx) == 1:
        (i,) = idx
        return [t[i] for t in dims]
    return [definition.separator.join(t[i] for i in idx) for t in dims]


def _time_label(name: str, window_start: datetime, zone: ZoneInfo) -> str:
    if name == "dateHour":
        return dates.hour_label(window_start, zone)
    return dates.day_label(name, dates.local_day(window_start, zone))


def factorize_columns(columns: Sequence[Sequence[str]], n: int) -> tuple[IntP, list[Obj], int]:
    """Codes of the `n` tuples formed by `columns` (one value list per column), the distinct tuples as one
    object array per column, and their number (1 for no columns: every row is the empty tuple)."""
    if not columns:
        return np.zeros(n, dtype=np.intp), [], 1
    if len(columns) == 1:
        codes, uniques = pd.factorize(np.asarray(columns[0], dtype=object))
        return codes.astype(np.intp), [np.asarray(uniques, dtype=object)], len(uniques)
    combined = np.zeros(n, dtype=np.int64)
    parts: list[tuple[Obj, int]] = []
    for column in columns:
        codes, uniques = pd.factorize(np.asarray(column, dtype=object))
        combined = combined * len(uniques) + codes
        parts.append((np.asarray(uniques, dtype=object), len(uniques)))
    final, distinct = pd.factorize(combined)
    out: list[Obj] = []
    rest = np.asarray(distinct, dtype=np.int64)
    for uniques, size in reversed(parts):
        out.append(uniques[rest % size])
        rest = rest // size
    return final.astype(np.intp), out[::-1], len(distinct)


def _dense_unique(codes: IntP, space: int) -> tuple[IntP, IntP]:
    """`np.unique(codes, return_inverse=True)` for codes in [0, space): O(n) with a lookup table when the space
    is small compared with the codes, a sort otherwise."""
    if space <= 4 * len(codes) + 1_000_000:
        present = np.zeros(space, dtype=bool)
        present[codes] = True
        uniques = np.flatnonzero(present)
        remap = np.empty(space, dtype=np.intp)
        remap[uniques] = np.arange(len(uniques), dtype=np.intp)
        return uniques, remap[codes]
    uniques, inverse = np.unique(codes, return_inverse=True)
    return uniques.astype(np.intp), inverse.reshape(-1).astype(np.intp)


def group_range(
    spec: ReportSpec,
    rng: ResolvedRange,
    zone: ZoneInfo,
    reader: RollupReader,
    deadline: Deadline,
) -> RangeGroups:
    """Read and group one range of `spec` (dimension filter applied)."""
    request = spec.request
    cube = spec.choice.cube
    plan = segments(rng.start_time, rng.end_time, zone, hourly=is_hourly(spec.names))
    batch, stats = reader.read(
        request.merchant_id, cube.name, plan, pushdown_dims(cube, request.dimension_filter), deadline, spec.sketches
    )
    positions = {column: i for i, column in enumerate(cube.dimensions)}
    n_dims = len(batch.dims)
    needed = dict.fromkeys([*(d.api_name for d in spec.dimensions if d.kind is DimKind.ROLLUP)])
    needed.update(dict.fromkeys(filters.fields(request.dimension_filter)))
    values = {name: _dimension_values(DIMENSIONS[name], positions, batch.dims) for name in needed}
    if request.dimension_filter is not None:
        series = {name: pd.Series(v, dtype=object) for name, v in values.items()}
        keep_dims = filters.evaluate_dimensions(request.dimension_filter, series, n_dims)
    else:
        keep_dims = np.ones(n_dims, dtype=bool)
    rollup_names = [d.api_name for d in spec.dimensions if d.kind is DimKind.ROLLUP]
    time_names = list(spec.time_dimensions)
    d_codes, d_columns, nd = factorize_columns([values[n] for n in rollup_names], n_dims)
    labels = [[_time_label(n, ws, zone) for ws in batch.windows] for n in time_names]
    t_codes, t_columns, nt = factorize_columns(labels, len(batch.windows))
    nd = max(nd, 1)
    combined = t_codes[batch.window_codes] * nd + d_codes[batch.dims_codes] if len(batch) else np.zeros(0, np.intp)
    kept_rows = np.flatnonzero(keep_dims[batch.dims_codes]) if len(batch) else np.zeros(0, np.intp)
    uniques, inverse = _dense_unique(combined[kept_rows], nt * nd)
    row_groups = np.full(len(batch), -1, dtype=np.intp)
    row_groups[kept_rows] = inverse
    columns = [
        t_columns[time_names.index(d.api_name)][uniques // nd]
        if d.kind is DimKind.TIME
        else d_columns[rollup_names.index(d.api_name)][uniques % nd]
        for d in spec.dimensions
    ]
    groups = group_rows(batch, row_groups, columns, len(uniques))
    if not spec.dimensions and not len(groups):  # a report without dimensions always has its one row
        groups = groups.with_zero_rows([()])
    if request.fill_time_gaps:
        present = set(columns[0].tolist())
        missing = [(label,) for label in dates.time_buckets(rng, time_names[0], zone) if label not in present]
        groups = groups.with_zero_rows(missing)
    return RangeGroups(
        rng, groups, batch, kept_rows, batch.provisional, stats.grains, stats.reads, stats.cached_windows
    )


# ------------------------------------------------------------------------------------------------ values


def python_values(metric: MetricDef, column: npt.NDArray[np.int64] | F64) -> list[MetricValue]:
    """A metric column as Python values: int (INTEGER), float (FLOAT, SECONDS), Decimal (CURRENCY, exact)."""
    if metric.type is MetricType.CURRENCY:
        return [Decimal(v).scaleb(-6) for v in column.tolist()]
    if metric.type is MetricType.INTEGER:
        return [int(v) for v in column.tolist()]
    return [float(v) for v in column.tolist()]


def to_rows(
    metrics: Sequence[MetricDef], columns: Sequence[npt.NDArray[np.int64] | F64]
) -> list[tuple[MetricValue, ...]]:
    """Row-wise value tuples of metric columns."""
    if not metrics:
        return []
    return list(zip(*(python_values(m, c) for m, c in zip(metrics, columns, strict=True)), strict=True))


def zero_values(metrics: Sequence[MetricDef]) -> tuple[MetricValue, ...]:
    """The values of `metrics` for a row without data."""
    zero: dict[MetricType, MetricValue] = {
        MetricType.CURRENCY: Decimal(0).scaleb(-6),
        MetricType.INTEGER: 0,
        MetricType.FLOAT: 0.0,
        MetricType.SECONDS: 0.0,
    }
    return tuple(zero[m.type] for m in metrics)


@dataclass
class MetricColumns:
    """Numeric (filter/order) views of metrics over every group, computed once each on demand."""

    groups: Groups
    _cache: dict[str, F64] = field(default_factory=dict)

    def __call__(self, name: str) -> F64:
        column = self._cache.get(name)
        if column is None:
            metric = METRICS[name]
            everyone = np.arange(len(self.groups), dtype=np.intp)
            column = self._cache[name] = numeric(metric, metric_values(metric, self.groups, everyone))
        return column


def select_rows(spec: ReportSpec, groups: Groups) -> tuple[IntP, MetricColumns]:
    """Group indices passing the metric filter, in the requested order (not yet paged)."""
    columns = MetricColumns(groups)
    n = len(groups)
    if spec.request.metric_filter is not None:
        kept = np.flatnonzero(filters.evaluate_metrics(spec.request.metric_filter, columns, n))
    else:
        kept = np.arange(n, dtype=np.intp)
    if not len(kept):
        return kept, columns
    dimension_columns = [c[kept] for c in groups.columns]
    permutation = order_rows(dimension_columns, len(kept), spec.names, spec.order_bys, lambda name: columns(name)[kept])
    return kept[permutation], columns


def value_columns(metrics: Sequence[MetricDef], groups: Groups, rows: IntP) -> list[npt.NDArray[np.int64] | F64]:
    return [metric_values(m, groups, rows) for m in metrics]


def join_key(key: tuple[str, ...], spec: ReportSpec, positions: Sequence[dict[str, int] | None]) -> tuple[object, ...]:
    """`key` with each time label replaced by its position in its range (comparison rows pair by position)."""
    return tuple(key[i] if index is None else index.get(key[i], -1) for i, index in enumerate(positions))


def time_positions(spec: ReportSpec, rng: ResolvedRange, zone: ZoneInfo) -> list[dict[str, int] | None]:
    out: list[dict[str, int] | None] = []
    for d in spec.dimensions:
        if d.kind is DimKind.TIME:
            out.append({label: i for i, label in enumerate(dates.time_buckets(rng, d.api_name, zone))})
        else:
            out.append(None)
    return out


def totals_row(
    spec: ReportSpec, ranged: RangeGroups, zone: ZoneInfo, reader: RollupReader, deadline: Deadline
) -> tuple[tuple[MetricValue, ...], bool]:
    """The metrics over every row of the range passing the dimension filter, and whether it read open windows.

    Without a dimension filter the totals come from the `total` cube at day (or coarser) grain: its rows are the
    range's totals already summed, and its users sketches the union of fewer, larger windows (an hourly series
    would otherwise merge one sketch per hour: a quarter of the call's time for 30 days)."""
    request = spec.request
    cube = spec.choice.cube.name
    if request.dimension_filter is None and (cube != TOTAL_CUBE or is_hourly(spec.names)):
        plan = segments(ranged.range.start_time, ranged.range.end_time, zone, hourly=False)
        batch, _ = reader.read(request.merchant_id, TOTAL_CUBE, plan, None, deadline, spec.sketches)
        row_groups = np.zeros(len(batch), dtype=np.intp)
        provisional = batch.provisional
    else:
        batch = ranged.batch
        row_groups = np.full(len(batch), -1, dtype=np.intp)
        row_groups[ranged.kept_rows] = 0
        provisional = ranged.provisional
    groups = group_rows(batch, row_groups, [], 1)
    one = np.zeros(1, dtype=np.intp)
    return to_rows(spec.metrics, value_columns(spec.metrics, groups, one))[0], provisional


def build_rows(
    spec: ReportSpec,
    primary: RangeGroups,
    page_rows: IntP,
    comparison: RangeGroups | None,
    zone: ZoneInfo,
) -> list[ResultRow]:
    """Result rows for the paged group indices, with comparison values paired by dimensions / time position."""
    metrics = spec.metrics
    values = to_rows(metrics, value_columns(metrics, primary.groups, page_rows))
    compared: list[tuple[MetricValue, ...] | None] = [None] * len(page_rows)
    if comparison is not None:
        a_pos = time_positions(spec, primary.range, zone)
        b_pos = time_positions(spec, comparison.range, zone)
        b_index = {join_key(k, spec, b_pos): g for g, k in enumerate(comparison.groups.keys())}
        wanted = [b_index.get(join_key(primary.groups.key(g), spec, a_pos), -1) for g in page_rows.tolist()]
        matched = np.array([w for w in wanted if w >= 0], dtype=np.intp)
        found = iter(to_rows(metrics, value_columns(metrics, comparison.groups, matched)))
        zeros = zero_values(metrics)
        compared = [next(found) if w >= 0 else zeros for w in wanted]
    key = primary.groups.key
    return [
        ResultRow(key(g), row_values, compared[i])
        for i, (g, row_values) in enumerate(zip(page_rows.tolist(), values, strict=True))
    ]
