"""Run GA4 plans on the QueryEngine: one engine report per (date range, calendar run), combined. Blocking.

- One date range, no calendar dimension, no MINIMUM/MAXIMUM: exactly one engine report; its rows, order,
  paging, row_count and totals are the answer as they are.
- Otherwise every engine report is asked for its first `offset + limit` rows (all rows for MINIMUM/MAXIMUM)
  in the plan's order with the constant columns (calendar labels, dateRange) left out. The engine's order
  restricted to one report equals the combined order (constants change no comparison; ties break by the same
  dimensions ascending), so the first `offset + limit` rows of the combination are among those fetched; they
  are combined with the engine's own `order_rows` and paged with `page`. row_count is the sum of the reports'
  row_counts. A report whose rows cannot all be fetched when they are needed raises InvalidQuery.
- Totals: the engine's totals row of each date range (over every row passing the dimension filter, before the
  metric filter, as the engine documents); minimums / maximums: over the rows of each date range.

Realtime: one engine realtime report with every row; metric filter, order and limit are applied to its rows
with the engine's `filters.evaluate_metrics` / `order_rows`; without dimensions the report is grouped by
minutesAgo and summed (activeUsers is the engine's distinct count over the whole window).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from query_svc import filters
from query_svc.catalog import METRICS, MINUTES_AGO
from query_svc.engine import QueryEngine
from query_svc.errors import InvalidQuery
from query_svc.ga4.calendar import runs
from query_svc.ga4.filters import Order
from query_svc.ga4.names import TIME_DIMENSIONS
from query_svc.ga4.translate import NamedRange, RealtimePlan, ReportPlan
from query_svc.model import (
    DateSpec,
    MetricHeader,
    MetricValue,
    OrderBy,
    RealtimeRequest,
    ReportRequest,
    ReportResult,
    ResultRow,
)
from query_svc.order import check_offset, order_rows, page, resolve_limit
from query_svc.reader import NO_DEADLINE, Deadline

MAX_ENGINE_REPORTS: Final = 250  # engine reports one GA4 report may need (calendar runs x date ranges)
TOTAL: Final = "RESERVED_TOTAL"
MINIMUM: Final = "RESERVED_MIN"
MAXIMUM: Final = "RESERVED_MAX"
_ENGINE_TIME_NOTE: Final = "(plus date, dateHour, week, month)"


@dataclass
class Ga4Result:
    """A GA4 report before it becomes a protobuf: visible metrics only; dimension values in header order."""

    dimension_headers: tuple[str, ...]
    metric_headers: tuple[MetricHeader, ...]
    rows: list[ResultRow]
    row_count: int
    totals: list[ResultRow] = field(default_factory=list)
    minimums: list[ResultRow] = field(default_factory=list)
    maximums: list[ResultRow] = field(default_factory=list)
    currency_code: str = ""
    time_zone: str = ""


def ga4_wording(message: str) -> str:
    """An engine message with GA4's names of the time dimensions (the engine's week/month are not GA4's)."""
    return message.replace(_ENGINE_TIME_NOTE, f"(plus the time dimensions {', '.join(sorted(TIME_DIMENSIONS))})")


def _ga4_error(exc: InvalidQuery, date_field: str) -> InvalidQuery:
    """An engine error in GA4 terms: the date range's request path, GA4's names of the time dimensions."""
    message = str(exc)
    if exc.field == "date_range":
        exc.field = date_field
        message = message.replace("date_range:", f"{date_field}:", 1)
    exc.args = (ga4_wording(message),)
    return exc


def _report(engine: QueryEngine, request: ReportRequest, deadline: Deadline, date_field: str) -> ReportResult:
    try:
        return engine.report(request, deadline)
    except InvalidQuery as exc:
        raise _ga4_error(exc, date_field) from None


def _visible(values: Sequence[MetricValue], visible: Sequence[bool]) -> tuple[MetricValue, ...]:
    return tuple(v for v, keep in zip(values, visible, strict=True) if keep)


def _headers(plan_metrics: Sequence[str], visible: Sequence[bool]) -> tuple[MetricHeader, ...]:
    return tuple(MetricHeader(m, METRICS[m].type) for m, keep in zip(plan_metrics, visible, strict=True) if keep)


def _extremes(rows: Sequence[ResultRow], n_metrics: int, pick: Callable[..., MetricValue]) -> tuple[MetricValue, ...]:
    return tuple(pick(row.values[j] for row in rows) for j in range(n_metrics))


def _metric_column(rows: Sequence[ResultRow], metrics: Sequence[str]) -> Callable[[str], npt.NDArray[np.float64]]:
    index = {name: j for j, name in enumerate(metrics)}

    def column(name: str) -> npt.NDArray[np.float64]:
        j = index[name]
        return np.array([float(row.values[j]) for row in rows], dtype=np.float64)

    return column


def _ordered(
    rows: Sequence[ResultRow], names: Sequence[str], orders: Sequence[Order], metrics: Sequence[str]
) -> list[int]:
    columns = [np.array([row.dimensions[k] for row in rows], dtype=object) for k in range(len(names))]
    engine_orders = [OrderBy(o.name, o.desc, o.is_metric) for o in orders]
    permutation = order_rows(columns, len(rows), names, engine_orders, _metric_column(rows, metrics))
    return [int(i) for i in permutation.tolist()]


# ------------------------------------------------------------------------------------------------ reports


@dataclass
class _Piece:
    """The rows of one engine report, with their GA4 dimension values, and the date range they belong to."""

    range: NamedRange
    rows: list[ResultRow]
    row_count: int
    complete: bool  # every row of the report was fetched


def _ga4_dims(
    plan: ReportPlan, engine_values: Sequence[str], labels: Sequence[str], range_name: str
) -> tuple[str, ...]:
    engine_iter = iter(engine_values)
    label_iter = iter(labels)
    out = [next(label_iter) if d in plan.calendar_dimensions else next(engine_iter) for d in plan.dimensions]
    if len(plan.ranges) > 1:
        out.append(range_name)
    return tuple(out)


def _single(engine: QueryEngine, plan: ReportPlan, deadline: Deadline) -> Ga4Result:
    r = plan.ranges[0]
    result = _report(engine, plan.engine_request(r.spec, limit=plan.limit, offset=plan.offset), deadline, r.field)
    out = Ga4Result(
        plan.header_dimensions,
        _headers(plan.metrics, plan.visible),
        [ResultRow(row.dimensions, _visible(row.values, plan.visible)) for row in result.rows],
        result.row_count,
        currency_code=result.meta.currency_code,
        time_zone=result.meta.time_zone,
    )
    if plan.aggregations.totals:
        out.totals.append(ResultRow((TOTAL,) * len(plan.dimensions), _visible(result.totals.values, plan.visible)))
    return out


def run_report(engine: QueryEngine, plan: ReportPlan, deadline: Deadline = NO_DEADLINE) -> Ga4Result:
    """The GA4 report of `plan`. Raises the engine's errors (InvalidQuery with GA4 request paths)."""
    need_all = plan.aggregations.minimums or plan.aggregations.maximums
    if len(plan.ranges) == 1 and not plan.calendar_dimensions and not need_all:
        return _single(engine, plan, deadline)
    max_limit = engine.config.max_limit
    limit = resolve_limit(plan.limit, max_limit)
    offset = check_offset(plan.offset)
    fetch = max_limit if need_all else min(offset + limit, max_limit)
    pieces: list[_Piece] = []
    totals: list[ResultRow] = []
    meta: tuple[str, str] = ("", "")
    reports = 0
    for r in plan.ranges:
        if plan.calendar_dimensions:
            head = _report(engine, plan.engine_request(r.spec, limit=1, offset=0), deadline, r.field)
            periods = runs(head.date_range.start_date, head.date_range.end_date, plan.calendar_dimensions)
            reports += len(periods)
            if reports > MAX_ENGINE_REPORTS:
                raise InvalidQuery(
                    f"dimensions: {', '.join(plan.calendar_dimensions)} split the date ranges into more than"
                    f" {MAX_ENGINE_REPORTS} periods; shorten the date ranges or use a coarser dimension",
                    "dimensions",
                )
            for period in periods:
                spec = DateSpec(period.start.isoformat(), period.end.isoformat())
                result = _report(engine, plan.engine_request(spec, limit=fetch, offset=0), deadline, r.field)
                pieces.append(_piece(plan, r, result, period.labels))
        else:
            head = _report(engine, plan.engine_request(r.spec, limit=fetch, offset=0), deadline, r.field)
            pieces.append(_piece(plan, r, head, ()))
        meta = (head.meta.currency_code, head.meta.time_zone)
        if plan.aggregations.totals:
            totals.append(ResultRow(_reserved(plan, TOTAL, r), _visible(head.totals.values, plan.visible)))
    for piece in pieces:
        if not piece.complete and (need_all or len(piece.rows) < offset + limit):
            raise InvalidQuery(
                f"{piece.range.field}: more than {max_limit} rows in one date range or period; rows past them cannot"
                " be combined (offset + limit too large, or MINIMUM/MAXIMUM over too many rows); narrow the report",
                piece.range.field,
            )
    rows = [row for piece in pieces for row in piece.rows]
    order = _ordered(rows, plan.header_dimensions, plan.orders, plan.metrics)
    shown = [rows[i] for i in page(np.asarray(order, dtype=np.intp), offset, limit).tolist()]
    answer = Ga4Result(
        plan.header_dimensions,
        _headers(plan.metrics, plan.visible),
        [ResultRow(row.dimensions, _visible(row.values, plan.visible)) for row in shown],
        sum(piece.row_count for piece in pieces),
        totals=totals,
        currency_code=meta[0],
        time_zone=meta[1],
    )
    if need_all:
        _add_extremes(plan, pieces, answer)
    return answer


def _reserved(plan: ReportPlan, label: str, r: NamedRange) -> tuple[str, ...]:
    return (label,) * len(plan.dimensions) + ((r.name,) if len(plan.ranges) > 1 else ())


def _piece(plan: ReportPlan, r: NamedRange, result: ReportResult, labels: Sequence[str]) -> _Piece:
    rows = [ResultRow(_ga4_dims(plan, row.dimensions, labels, r.name), row.values) for row in result.rows]
    return _Piece(r, rows, result.row_count, result.row_count <= len(result.rows))


def _add_extremes(plan: ReportPlan, pieces: Sequence[_Piece], result: Ga4Result) -> None:
    n = len(plan.metrics)
    for r in plan.ranges:
        rows = [row for piece in pieces if piece.range is r for row in piece.rows]
        if not rows:
            continue
        if plan.aggregations.minimums:
            result.minimums.append(
                ResultRow(_reserved(plan, MINIMUM, r), _visible(_extremes(rows, n, min), plan.visible))
            )
        if plan.aggregations.maximums:
            result.maximums.append(
                ResultRow(_reserved(plan, MAXIMUM, r), _visible(_extremes(rows, n, max), plan.visible))
            )


# ------------------------------------------------------------------------------------------------ realtime


def _summed(rows: Sequence[ResultRow], metrics: Sequence[str], active_users: int) -> tuple[MetricValue, ...]:
    """Counters summed over `rows`; activeUsers is the window's distinct count (users never sum)."""
    return tuple(
        active_users if name == "activeUsers" else sum(int(row.values[j]) for row in rows)
        for j, name in enumerate(metrics)
    )


def run_realtime(engine: QueryEngine, plan: RealtimePlan, deadline: Deadline = NO_DEADLINE) -> Ga4Result:
    """The GA4 realtime report of `plan`. Raises the engine's errors."""
    max_limit = engine.config.max_limit
    limit = resolve_limit(plan.limit, max_limit)
    request = RealtimeRequest(
        merchant_id=plan.merchant_id,
        dimensions=plan.dimensions or (MINUTES_AGO,),
        metrics=plan.metrics,
        dimension_filter=plan.dimension_filter,
        limit=max_limit,
        minutes=plan.minutes,
    )
    result = engine.realtime(request, deadline)
    if result.row_count > len(result.rows):
        raise InvalidQuery(f"more than {max_limit} realtime rows; add a dimension_filter", "dimensions")
    metrics = plan.metrics
    rows = list(result.rows)
    total = _summed(rows, metrics, result.active_users)
    if not plan.dimensions:
        rows = [ResultRow((), total)] if rows else []
    if plan.metric_filter is not None and rows:
        keep = filters.evaluate_metrics(plan.metric_filter, _metric_column(rows, metrics), len(rows))
        rows = [row for row, kept in zip(rows, keep.tolist(), strict=True) if kept]
    if plan.orders and rows:
        rows = [rows[i] for i in _ordered(rows, plan.dimensions, plan.orders, metrics)]
    out = Ga4Result(
        plan.dimensions,
        _headers(metrics, plan.visible),
        [ResultRow(row.dimensions, _visible(row.values, plan.visible)) for row in rows[:limit]],
        len(rows),
    )
    reserved = len(plan.dimensions)
    if plan.aggregations.totals:
        out.totals.append(ResultRow((TOTAL,) * reserved, _visible(total, plan.visible)))
    if rows and plan.aggregations.minimums:
        out.minimums.append(
            ResultRow((MINIMUM,) * reserved, _visible(_extremes(rows, len(metrics), min), plan.visible))
        )
    if rows and plan.aggregations.maximums:
        out.maximums.append(
            ResultRow((MAXIMUM,) * reserved, _visible(_extremes(rows, len(metrics), max), plan.visible))
        )
    return out
