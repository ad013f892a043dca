"""GA4 RunReport / RunRealtimeReport requests -> plans over the engine's request model. Pure.

A `ReportPlan` is a validated GA4 report: its GA4 dimension names, the metrics computed (invisible ones included),
the engine filters, the GA4 order and paging, the aggregations asked for, and its date ranges. `run` turns it
into engine requests (`ReportPlan.engine_request`) — the engine does the reading, filtering, grouping and
ordering; no query logic lives here.

GA4 semantics mapped onto the engine:
- keep_empty_rows=false (GA4's default) drops rows whose every metric is 0: the metric filter is ANDed with
  "some metric != 0", so the engine's row_count and paging already exclude them. keep_empty_rows=true with a
  single time dimension (plus calendar dimensions) fills the time buckets without data with zero rows.
- Default order (no order_bys): the engine's — the first metric descending when a non-time dimension is asked,
  time order otherwise; ties always break by every dimension ascending.

Unsupported (Unsupported = INVALID_ARGUMENT naming the field): dimension_expression, metric expression, cohort_spec,
comparisons, pivots, currency_code other than the property's currency, metric aggregation COUNT,
CASE_INSENSITIVE_ALPHANUMERIC ordering, NUMERIC ordering of text dimensions, filters on time dimensions, more
than one minute range or a minute range older than 29 minutes (realtime).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from google.analytics.data_v1beta.types import analytics_data_api as api
from google.analytics.data_v1beta.types import data

from query_svc import filters
from query_svc.catalog import DIMENSIONS, MINUTES_AGO, DimKind
from query_svc.errors import InvalidQuery
from query_svc.ga4.filters import Order, Scope, Unsupported, filter_expr, order_bys
from query_svc.ga4.names import (
    CALENDAR,
    DATE_RANGE,
    ENGINE_NAME,
    REALTIME_DIMENSION_NAMES,
    REALTIME_METRIC_NAMES,
    REPORT_DIMENSIONS,
    REPORT_METRICS,
    check_names,
)
from query_svc.model import (
    And,
    DateSpec,
    FilterExpr,
    InList,
    Not,
    NumericCompare,
    NumericOp,
    Or,
    OrderBy,
    ReportRequest,
)

MAX_DATE_RANGES: Final = 4
MAX_DIMENSIONS: Final = 9
MAX_REALTIME_MINUTES: Final = 30  # the engine's realtime window (minutesAgo 00..29)
RESERVED_RANGE_PREFIXES: Final = ("date_range_", "RESERVED_")

_Aggregation = data.MetricAggregation


@dataclass(frozen=True)
class NamedRange:
    spec: DateSpec
    name: str  # the dateRange value of its rows
    field: str  # GA4 request path, date_ranges[i]


@dataclass(frozen=True)
class Aggregations:
    totals: bool = False
    minimums: bool = False
    maximums: bool = False


@dataclass(frozen=True)
class ReportPlan:
    merchant_id: str
    dimensions: tuple[str, ...]  # GA4 names, as asked
    metrics: tuple[str, ...]  # every metric computed, invisible ones included
    visible: tuple[bool, ...]  # per metric: returned in the response
    ranges: tuple[NamedRange, ...]
    dimension_filter: FilterExpr | None  # engine names
    metric_filter: FilterExpr | None  # the request's, plus the keep_empty_rows rule
    orders: tuple[Order, ...]  # GA4 names; the default order when the request has none
    limit: int | None  # None: the engine's default
    offset: int
    aggregations: Aggregations
    keep_empty_rows: bool

    @property
    def engine_dimensions(self) -> tuple[str, ...]:
        return tuple(ENGINE_NAME[d] for d in self.dimensions if d in ENGINE_NAME)

    @property
    def calendar_dimensions(self) -> tuple[str, ...]:
        return tuple(d for d in self.dimensions if d in CALENDAR)

    @property
    def header_dimensions(self) -> tuple[str, ...]:
        """The response's dimension columns: the request's, plus dateRange with several date ranges."""
        return (*self.dimensions, DATE_RANGE) if len(self.ranges) > 1 else self.dimensions

    def engine_orders(self) -> tuple[OrderBy, ...]:
        """`orders` for one engine report (whose calendar labels and date range are constants): orders on constants
        are dropped; when nothing is left, the dimensions ascending (the engine's tie-break), so that the engine
        never applies its default order where the GA4 order is a different one."""
        out = [
            OrderBy(o.name if o.is_metric else ENGINE_NAME[o.name], o.desc, o.is_metric)
            for o in self.orders
            if o.is_metric or o.name in ENGINE_NAME
        ]
        if not out and self.orders:
            out = [OrderBy(name, False, False) for name in self.engine_dimensions]
        return tuple(out)

    def engine_request(self, spec: DateSpec, *, limit: int | None, offset: int) -> ReportRequest:
        engine_dims = self.engine_dimensions
        fill = self.keep_empty_rows and len(engine_dims) == 1 and DIMENSIONS[engine_dims[0]].kind is DimKind.TIME
        return ReportRequest(
            merchant_id=self.merchant_id,
            date_range=spec,
            metrics=self.metrics,
            dimensions=engine_dims,
            dimension_filter=self.dimension_filter,
            metric_filter=self.metric_filter,
            order_bys=self.engine_orders(),
            limit=limit,
            offset=offset,
            fill_time_gaps=fill,
        )


# ------------------------------------------------------------------------------------------------ shared


def _dimension_names(messages: Sequence[data.Dimension], valid: Sequence[str]) -> tuple[str, ...]:
    for i, d in enumerate(messages):
        if "dimension_expression" in d:
            raise Unsupported(
                f"dimensions[{i}].dimension_expression: dimension expressions are not supported; ask for"
                f" {d.name!r} without one",
                f"dimensions[{i}].dimension_expression",
            )
        if not d.name:
            raise InvalidQuery(f"dimensions[{i}].name is required", f"dimensions[{i}].name")
    if len(messages) > MAX_DIMENSIONS:
        raise InvalidQuery(f"dimensions: at most {MAX_DIMENSIONS} dimensions per report", "dimensions")
    return check_names([d.name for d in messages], valid, "dimension", "dimensions")


def _metric_names(messages: Sequence[data.Metric], valid: Sequence[str]) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    for i, m in enumerate(messages):
        if m.expression:
            raise Unsupported(
                f"metrics[{i}].expression: custom metric expressions are not supported ({m.expression!r}); ask for"
                " the metrics themselves",
                f"metrics[{i}].expression",
            )
        if not m.name:
            raise InvalidQuery(f"metrics[{i}].name is required", f"metrics[{i}].name")
    if not messages:
        raise InvalidQuery("metrics: at least one metric is required", "metrics")
    names = check_names([m.name for m in messages], valid, "metric", "metrics")
    return names, tuple(not m.invisible for m in messages)


def _aggregations(values: Sequence[data.MetricAggregation]) -> Aggregations:
    wanted = set()
    for i, value in enumerate(values):
        if value == _Aggregation.COUNT:
            raise Unsupported(
                f"metric_aggregations[{i}]: COUNT is not supported; use TOTAL, MINIMUM or MAXIMUM",
                f"metric_aggregations[{i}]",
            )
        if value not in (_Aggregation.TOTAL, _Aggregation.MINIMUM, _Aggregation.MAXIMUM):
            raise InvalidQuery(
                f"metric_aggregations[{i}]: {int(value)} is not TOTAL, MINIMUM or MAXIMUM", f"metric_aggregations[{i}]"
            )
        wanted.add(value)
    return Aggregations(_Aggregation.TOTAL in wanted, _Aggregation.MINIMUM in wanted, _Aggregation.MAXIMUM in wanted)


def _filters(
    message: api.RunReportRequest | api.RunRealtimeReportRequest, dimensions: Sequence[str], metrics: Sequence[str]
) -> tuple[FilterExpr | None, FilterExpr | None]:
    dimension_filter = (
        filter_expr(message.dimension_filter, Scope(dimensions=dimensions), "dimension_filter")
        if "dimension_filter" in message
        else None
    )
    metric_filter = (
        filter_expr(message.metric_filter, Scope(metrics=metrics), "metric_filter")
        if "metric_filter" in message
        else None
    )
    return dimension_filter, metric_filter


def some_metric_nonzero(metrics: Sequence[str]) -> FilterExpr:
    """The keep_empty_rows=false rule: at least one of `metrics` is not 0."""
    return Or(tuple(Not(NumericCompare(m, NumericOp.EQUAL, 0.0)) for m in metrics))


def _and(*items: FilterExpr | None) -> FilterExpr | None:
    present = tuple(i for i in items if i is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else And(present)


def default_orders(engine_dimensions: Sequence[str], metrics: Sequence[str]) -> tuple[Order, ...]:
    """The engine's default order: the first metric descending when a non-time dimension is grouped by."""
    if any(DIMENSIONS[d].kind is not DimKind.TIME for d in engine_dimensions):
        return (Order(metrics[0], True, True),)
    return ()


# ------------------------------------------------------------------------------------------------ reports


def _ranges(messages: Sequence[data.DateRange]) -> tuple[NamedRange, ...]:
    if not messages:
        raise InvalidQuery("date_ranges: at least one date range is required", "date_ranges")
    if len(messages) > MAX_DATE_RANGES:
        raise InvalidQuery(f"date_ranges: at most {MAX_DATE_RANGES} date ranges per report", "date_ranges")
    out: list[NamedRange] = []
    for i, r in enumerate(messages):
        field = f"date_ranges[{i}]"
        if r.name:
            if r.name.startswith(RESERVED_RANGE_PREFIXES):
                raise InvalidQuery(
                    f"{field}.name: {r.name!r} must not begin with 'date_range_' or 'RESERVED_'", f"{field}.name"
                )
            if r.name in {x.name for x in out}:
                raise InvalidQuery(f"{field}.name: {r.name!r} names two date ranges", f"{field}.name")
        out.append(NamedRange(DateSpec(r.start_date, r.end_date), r.name or f"date_range_{i}", field))
    return tuple(out)


def report_plan(message: api.RunReportRequest, merchant_id: str, currency: str) -> ReportPlan:
    """Validate a RunReportRequest of property `merchant_id` (whose currency is `currency`) into a plan.

    Raises InvalidQuery / UnknownName / Unsupported naming the GA4 request field."""
    if "cohort_spec" in message:
        raise Unsupported("cohort_spec: cohort reports are not supported", "cohort_spec")
    if message.comparisons:
        raise Unsupported(
            "comparisons: comparisons are not supported; use several date_ranges or a dimension_filter", "comparisons"
        )
    if message.currency_code and message.currency_code != currency:
        raise Unsupported(
            f"currency_code: {message.currency_code!r}: currency conversion is not supported; revenue is reported in"
            f" the property's currency {currency!r} (leave currency_code empty or set it to {currency!r})",
            "currency_code",
        )
    dimensions = _dimension_names(message.dimensions, REPORT_DIMENSIONS)
    metrics, visible = _metric_names(message.metrics, REPORT_METRICS)
    ranges = _ranges(message.date_ranges)
    dimension_filter, metric_filter = _filters(message, REPORT_DIMENSIONS, REPORT_METRICS)
    if not message.keep_empty_rows:
        metric_filter = _and(metric_filter, some_metric_nonzero(metrics))
    orderable = (*dimensions, DATE_RANGE) if len(ranges) > 1 else dimensions
    orders = order_bys(message.order_bys, orderable, metrics)
    engine_dimensions = tuple(ENGINE_NAME[d] for d in dimensions if d in ENGINE_NAME)
    return ReportPlan(
        merchant_id=merchant_id,
        dimensions=dimensions,
        metrics=metrics,
        visible=visible,
        ranges=ranges,
        dimension_filter=dimension_filter,
        metric_filter=metric_filter,
        orders=orders or default_orders(engine_dimensions, metrics),
        limit=message.limit or None,
        offset=message.offset,
        aggregations=_aggregations(message.metric_aggregations),
        keep_empty_rows=message.keep_empty_rows,
    )


# ------------------------------------------------------------------------------------------------ realtime


@dataclass(frozen=True)
class RealtimePlan:
    merchant_id: str
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]  # asked for, then those only the metric filter uses
    visible: tuple[bool, ...]
    dimension_filter: FilterExpr | None  # the request's, plus the minute range when it does not end now
    metric_filter: FilterExpr | None  # the request's, plus "some metric != 0"
    orders: tuple[Order, ...]  # as asked; empty = the engine's order
    limit: int | None
    minutes: int
    aggregations: Aggregations


def _minutes(messages: Sequence[data.MinuteRange]) -> tuple[int, FilterExpr | None]:
    """The engine's window (last N minutes) and, for a range not ending now, the minutesAgo filter cutting it."""
    if len(messages) > 1:
        raise Unsupported("minute_ranges: at most one minute range is supported", "minute_ranges")
    if not messages:
        return MAX_REALTIME_MINUTES, None
    r = messages[0]
    start = r.start_minutes_ago if "start_minutes_ago" in r else MAX_REALTIME_MINUTES - 1
    end = r.end_minutes_ago if "end_minutes_ago" in r else 0
    if not 0 <= end <= start:
        raise InvalidQuery(
            f"minute_ranges[0]: start_minutes_ago ({start}) must be >= end_minutes_ago ({end}) >= 0", "minute_ranges[0]"
        )
    if start >= MAX_REALTIME_MINUTES:
        raise Unsupported(
            f"minute_ranges[0].start_minutes_ago: {start}: realtime covers the last {MAX_REALTIME_MINUTES} minutes"
            f" (at most {MAX_REALTIME_MINUTES - 1})",
            "minute_ranges[0].start_minutes_ago",
        )
    if end == 0:
        return start + 1, None
    labels = tuple(f"{k:02d}" for k in range(end, start + 1))
    return start + 1, InList(MINUTES_AGO, labels, case_sensitive=True)


def realtime_plan(message: api.RunRealtimeReportRequest, merchant_id: str) -> RealtimePlan:
    """Validate a RunRealtimeReportRequest; raises InvalidQuery / UnknownName / Unsupported naming the field."""
    dimensions = _dimension_names(message.dimensions, REALTIME_DIMENSION_NAMES)
    asked, asked_visible = _metric_names(message.metrics, REALTIME_METRIC_NAMES)
    dimension_filter, metric_filter = _filters(message, REALTIME_DIMENSION_NAMES, REALTIME_METRIC_NAMES)
    minutes, window = _minutes(message.minute_ranges)
    filtered = [m for m in filters.fields(metric_filter) if m not in asked]  # computed, not returned
    return RealtimePlan(
        merchant_id=merchant_id,
        dimensions=dimensions,
        metrics=(*asked, *filtered),
        visible=(*asked_visible, *(False for _ in filtered)),
        dimension_filter=_and(dimension_filter, window),
        metric_filter=_and(metric_filter, some_metric_nonzero(asked)),
        orders=order_bys(message.order_bys, dimensions, asked),
        limit=message.limit or None,
        minutes=minutes,
        aggregations=_aggregations(message.metric_aggregations),
    )
