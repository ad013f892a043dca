"""The query engine's typed, wire-independent requests and results.

The gRPC servicer (and later the GA4 Data API layer) converts its messages into these and back; the engine
never sees a protobuf. Requests are frozen and hashable (tuples, not lists), so a request is its own cache key.

Metric values in results are Python numbers: `int` for INTEGER metrics, `float` for FLOAT and SECONDS
metrics, `Decimal` (exact, from integer micros) for CURRENCY metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class MatchType(StrEnum):
    EXACT = "exact"
    BEGINS_WITH = "begins_with"
    ENDS_WITH = "ends_with"
    CONTAINS = "contains"
    FULL_REGEXP = "full_regexp"
    PARTIAL_REGEXP = "partial_regexp"


class NumericOp(StrEnum):
    EQUAL = "=="
    LESS_THAN = "<"
    LESS_THAN_OR_EQUAL = "<="
    GREATER_THAN = ">"
    GREATER_THAN_OR_EQUAL = ">="


class MetricType(StrEnum):
    INTEGER = "integer"  # int; users are HLL estimates rounded to int
    FLOAT = "float"  # ratios 0..1
    SECONDS = "seconds"  # float seconds
    CURRENCY = "currency"  # Decimal in the merchant's currency (exact from integer micros)


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# ---------------------------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class StringMatch:
    """`field` (a dimension) matches `value` (case-insensitive unless `case_sensitive`)."""

    field: str
    match_type: MatchType
    value: str
    case_sensitive: bool = False


@dataclass(frozen=True)
class InList:
    """`field` (a dimension) equals one of `values`."""

    field: str
    values: tuple[str, ...]
    case_sensitive: bool = False


@dataclass(frozen=True)
class NumericCompare:
    """`field` (a metric) `op` `value`. Currency metrics compare in currency units, ratios as 0..1."""

    field: str
    op: NumericOp
    value: float


@dataclass(frozen=True)
class Between:
    """low <= `field` (a metric) <= high."""

    field: str
    low: float
    high: float


@dataclass(frozen=True)
class And:
    items: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Not:
    item: FilterExpr


FilterLeaf = StringMatch | InList | NumericCompare | Between
FilterExpr = StringMatch | InList | NumericCompare | Between | And | Or | Not


# ---------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class DateSpec:
    """An unresolved inclusive range of local dates: "YYYY-MM-DD", "today", "yesterday" or "NdaysAgo"."""

    start: str
    end: str


@dataclass(frozen=True)
class PreviousPeriod:
    """Compare with the same number of days, ending the day before the range starts."""


Comparison = DateSpec | PreviousPeriod


@dataclass(frozen=True)
class OrderBy:
    """Order by a metric (numeric) or a dimension (alphanumeric)."""

    name: str
    desc: bool = False
    is_metric: bool = True


@dataclass(frozen=True)
class ReportRequest:
    """One report over rollups: rows grouped by `dimensions` (time dimensions included), `metrics` per row.

    `limit` None means the engine's default; values above the engine's maximum are capped. `fill_time_gaps`
    emits a zero row for every hour/day/week/month of the range without data (needs exactly one time dimension
    and no other dimension). Comparison rows pair by dimension values, time dimensions by position.
    """

    merchant_id: str
    date_range: DateSpec
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    dimension_filter: FilterExpr | None = None
    metric_filter: FilterExpr | None = None
    order_bys: tuple[OrderBy, ...] = ()
    limit: int | None = None
    offset: int = 0
    comparison: Comparison | None = None
    fill_time_gaps: bool = False


@dataclass(frozen=True)
class RealtimeRequest:
    """The last `minutes` minutes from raw events; `dimensions` may include minutesAgo."""

    merchant_id: str
    dimensions: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("activeUsers", "eventCount")
    dimension_filter: FilterExpr | None = None
    limit: int | None = None
    minutes: int = 30


@dataclass(frozen=True)
class CompatibilityRequest:
    merchant_id: str
    dimensions: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    dimension_filter: FilterExpr | None = None
    metric_filter: FilterExpr | None = None


# ---------------------------------------------------------------------------------------------- results

MetricValue = int | float | Decimal


@dataclass(frozen=True)
class MetricHeader:
    name: str
    type: MetricType


@dataclass(frozen=True)
class ResultRow:
    dimensions: tuple[str, ...]
    values: tuple[MetricValue, ...]
    comparison: tuple[MetricValue, ...] | None = None


@dataclass(frozen=True)
class ResolvedRange:
    """Inclusive local dates and the UTC instants [start_time, end_time) they cover in the merchant's zone."""

    start_date: date
    end_date: date
    start_time: datetime
    end_time: datetime

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


@dataclass(frozen=True)
class ResultMeta:
    currency_code: str
    time_zone: str
    cube: str
    grains: tuple[str, ...]
    from_cache: bool
    provisional: bool
    limit: int
    data_version: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportResult:
    dimension_headers: tuple[str, ...]
    metric_headers: tuple[MetricHeader, ...]
    rows: tuple[ResultRow, ...]
    totals: ResultRow
    row_count: int
    date_range: ResolvedRange
    comparison_range: ResolvedRange | None
    meta: ResultMeta


@dataclass(frozen=True)
class RealtimeMinute:
    minutes_ago: int
    minute_start: datetime
    active_users: int
    event_count: int


@dataclass(frozen=True)
class RealtimeResult:
    minutes: tuple[RealtimeMinute, ...]
    active_users: int
    event_count: int
    dimension_headers: tuple[str, ...]
    metric_headers: tuple[MetricHeader, ...]
    rows: tuple[ResultRow, ...]
    row_count: int
    window_start: datetime
    window_end: datetime
    bots_excluded: bool


@dataclass(frozen=True)
class DimensionInfo:
    api_name: str
    ui_name: str
    description: str
    category: str
    realtime: bool


@dataclass(frozen=True)
class MetricInfo:
    api_name: str
    ui_name: str
    description: str
    category: str
    type: MetricType
    expression: str
    realtime: bool


@dataclass(frozen=True)
class CubeInfo:
    name: str
    dimensions: tuple[str, ...]  # API names


@dataclass(frozen=True)
class MetadataResult:
    dimensions: tuple[DimensionInfo, ...]
    metrics: tuple[MetricInfo, ...]
    cubes: tuple[CubeInfo, ...]
    time_zone: str
    currency_code: str


@dataclass(frozen=True)
class FieldCompatibility:
    name: str
    compatible: bool
    reason: str = ""


@dataclass(frozen=True)
class CompatibilityResult:
    compatible: bool
    reasons: tuple[str, ...]
    cube: str
    dimensions: tuple[FieldCompatibility, ...] = field(default=())
    metrics: tuple[FieldCompatibility, ...] = field(default=())
