"""gnomon.v1 QueryService messages <-> `query_svc.model` (the only place that knows both). Pure.

Malformed messages (a filter without a condition, an order_by without a field, a numeric value without a
number) raise InvalidQuery naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from gnomon.v1 import query_pb2 as q
from query_svc.dates import GRANULARITY_DIMENSION
from query_svc.errors import InvalidQuery
from query_svc.model import (
    And,
    Between,
    Comparison,
    CompatibilityRequest,
    CompatibilityResult,
    DateSpec,
    FieldCompatibility,
    FilterExpr,
    Granularity,
    InList,
    MatchType,
    MetadataResult,
    MetricHeader,
    MetricType,
    MetricValue,
    Not,
    NumericCompare,
    NumericOp,
    Or,
    OrderBy,
    PreviousPeriod,
    RealtimeRequest,
    RealtimeResult,
    ReportRequest,
    ReportResult,
    ResolvedRange,
    ResultRow,
    StringMatch,
)

_MATCH: Final = {
    q.StringFilter.MATCH_TYPE_UNSPECIFIED: MatchType.EXACT,
    q.StringFilter.EXACT: MatchType.EXACT,
    q.StringFilter.BEGINS_WITH: MatchType.BEGINS_WITH,
    q.StringFilter.ENDS_WITH: MatchType.ENDS_WITH,
    q.StringFilter.CONTAINS: MatchType.CONTAINS,
    q.StringFilter.FULL_REGEXP: MatchType.FULL_REGEXP,
    q.StringFilter.PARTIAL_REGEXP: MatchType.PARTIAL_REGEXP,
}
_OPS: Final = {
    q.NumericFilter.OPERATION_UNSPECIFIED: NumericOp.EQUAL,
    q.NumericFilter.EQUAL: NumericOp.EQUAL,
    q.NumericFilter.LESS_THAN: NumericOp.LESS_THAN,
    q.NumericFilter.LESS_THAN_OR_EQUAL: NumericOp.LESS_THAN_OR_EQUAL,
    q.NumericFilter.GREATER_THAN: NumericOp.GREATER_THAN,
    q.NumericFilter.GREATER_THAN_OR_EQUAL: NumericOp.GREATER_THAN_OR_EQUAL,
}
_GRANULARITY: Final = {
    q.GRANULARITY_UNSPECIFIED: Granularity.DAY,
    q.GRANULARITY_HOUR: Granularity.HOUR,
    q.GRANULARITY_DAY: Granularity.DAY,
    q.GRANULARITY_WEEK: Granularity.WEEK,
    q.GRANULARITY_MONTH: Granularity.MONTH,
}
_METRIC_TYPE: Final = {
    MetricType.INTEGER: q.METRIC_TYPE_INTEGER,
    MetricType.FLOAT: q.METRIC_TYPE_FLOAT,
    MetricType.SECONDS: q.METRIC_TYPE_SECONDS,
    MetricType.CURRENCY: q.METRIC_TYPE_CURRENCY,
}
MAX_FILTER_NESTING: Final = 32  # conversion guard; `filters.validate` enforces the documented 10


# -------------------------------------------------------------------------------------------- requests


def _number(value: q.NumericValue, field: str) -> float:
    kind = value.WhichOneof("one_value")
    if kind == "int64_value":
        return float(value.int64_value)
    if kind == "double_value":
        return value.double_value
    raise InvalidQuery(f"{field}: a numeric value needs int64_value or double_value", field)


def _leaf(message: q.Filter, field: str) -> FilterExpr:
    name = message.field_name
    if not name:
        raise InvalidQuery(f"{field}: filter.field_name is required", field)
    kind = message.WhichOneof("one_filter")
    if kind == "string_filter":
        s = message.string_filter
        return StringMatch(name, _MATCH[s.match_type], s.value, s.case_sensitive)
    if kind == "in_list_filter":
        return InList(name, tuple(message.in_list_filter.values), message.in_list_filter.case_sensitive)
    if kind == "numeric_filter":
        n = message.numeric_filter
        return NumericCompare(name, _OPS[n.operation], _number(n.value, field))
    if kind == "between_filter":
        b = message.between_filter
        return Between(name, _number(b.from_value, field), _number(b.to_value, field))
    raise InvalidQuery(f"{field}: filter on {name!r} has no condition (string, in_list, numeric or between)", field)


def filter_from_proto(message: q.FilterExpression, field: str, depth: int = 0) -> FilterExpr:
    if depth > MAX_FILTER_NESTING:
        raise InvalidQuery(f"{field}: filter expressions nest too deeply", field)
    kind = message.WhichOneof("expr")
    if kind == "and_group":
        return And(tuple(filter_from_proto(e, field, depth + 1) for e in message.and_group.expressions))
    if kind == "or_group":
        return Or(tuple(filter_from_proto(e, field, depth + 1) for e in message.or_group.expressions))
    if kind == "not_expression":
        return Not(filter_from_proto(message.not_expression, field, depth + 1))
    if kind == "filter":
        return _leaf(message.filter, field)
    raise InvalidQuery(f"{field}: an empty filter expression", field)


def _optional_filter(present: bool, message: q.FilterExpression, field: str) -> FilterExpr | None:
    return filter_from_proto(message, field) if present else None


def _date_spec(message: q.DateRange) -> DateSpec:
    return DateSpec(message.start_date, message.end_date)


def _comparison(present: bool, message: q.Comparison) -> Comparison | None:
    if not present:
        return None
    kind = message.WhichOneof("kind")
    if kind == "previous_period":
        return PreviousPeriod()
    if kind == "date_range":
        return _date_spec(message.date_range)
    raise InvalidQuery("comparison: set previous_period or date_range", "comparison")


def _order_bys(messages: Iterable[q.OrderBy]) -> tuple[OrderBy, ...]:
    out: list[OrderBy] = []
    for message in messages:
        kind = message.WhichOneof("field")
        if kind == "metric_name":
            out.append(OrderBy(message.metric_name, message.desc, True))
        elif kind == "dimension_name":
            out.append(OrderBy(message.dimension_name, message.desc, False))
        else:
            raise InvalidQuery("order_bys: set metric_name or dimension_name", "order_bys")
    return tuple(out)


def _limit(value: int) -> int | None:
    return value or None


def timeseries_request(m: q.TimeSeriesRequest) -> ReportRequest:
    granularity = _GRANULARITY.get(m.granularity)
    if granularity is None:
        raise InvalidQuery(f"granularity: unknown value {m.granularity}", "granularity")
    return ReportRequest(
        merchant_id=m.merchant_id,
        date_range=_date_spec(m.date_range),
        metrics=tuple(m.metrics),
        dimensions=(GRANULARITY_DIMENSION[granularity],),
        dimension_filter=_optional_filter(m.HasField("dimension_filter"), m.dimension_filter, "dimension_filter"),
        metric_filter=_optional_filter(m.HasField("metric_filter"), m.metric_filter, "metric_filter"),
        order_bys=_order_bys(m.order_bys),
        limit=_limit(m.limit),
        offset=m.offset,
        comparison=_comparison(m.HasField("comparison"), m.comparison),
        fill_time_gaps=True,
    )


def breakdown_request(m: q.BreakdownRequest) -> ReportRequest:
    if not m.dimensions:
        raise InvalidQuery("dimensions: a breakdown needs at least one dimension", "dimensions")
    return ReportRequest(
        merchant_id=m.merchant_id,
        date_range=_date_spec(m.date_range),
        metrics=tuple(m.metrics),
        dimensions=tuple(m.dimensions),
        dimension_filter=_optional_filter(m.HasField("dimension_filter"), m.dimension_filter, "dimension_filter"),
        metric_filter=_optional_filter(m.HasField("metric_filter"), m.metric_filter, "metric_filter"),
        order_bys=_order_bys(m.order_bys),
        limit=_limit(m.limit),
        offset=m.offset,
        comparison=_comparison(m.HasField("comparison"), m.comparison),
    )


def totals_request(m: q.TotalsRequest) -> ReportRequest:
    return ReportRequest(
        merchant_id=m.merchant_id,
        date_range=_date_spec(m.date_range),
        metrics=tuple(m.metrics),
        dimension_filter=_optional_filter(m.HasField("dimension_filter"), m.dimension_filter, "dimension_filter"),
        metric_filter=_optional_filter(m.HasField("metric_filter"), m.metric_filter, "metric_filter"),
        comparison=_comparison(m.HasField("comparison"), m.comparison),
    )


def realtime_request(m: q.RealtimeRequest) -> RealtimeRequest:
    return RealtimeRequest(
        merchant_id=m.merchant_id,
        dimensions=tuple(m.dimensions),
        metrics=tuple(m.metrics) or ("activeUsers", "eventCount"),
        dimension_filter=_optional_filter(m.HasField("dimension_filter"), m.dimension_filter, "dimension_filter"),
        limit=_limit(m.limit),
        minutes=m.minutes or 30,
    )


def compatibility_request(m: q.CheckCompatibilityRequest) -> CompatibilityRequest:
    return CompatibilityRequest(
        merchant_id=m.merchant_id,
        dimensions=tuple(m.dimensions),
        metrics=tuple(m.metrics),
        dimension_filter=_optional_filter(m.HasField("dimension_filter"), m.dimension_filter, "dimension_filter"),
        metric_filter=_optional_filter(m.HasField("metric_filter"), m.metric_filter, "metric_filter"),
    )


# ------------------------------------------------------------------------------------------- responses


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def metric_value(value: MetricValue, kind: MetricType) -> q.MetricValue:
    if kind is MetricType.CURRENCY:
        return q.MetricValue(decimal_value=format(Decimal(value), "f"))
    if kind is MetricType.INTEGER:
        return q.MetricValue(int_value=int(value))
    return q.MetricValue(double_value=float(value))


_FIELD: Final = {
    MetricType.INTEGER: "int_value",
    MetricType.FLOAT: "double_value",
    MetricType.SECONDS: "double_value",
    MetricType.CURRENCY: "decimal_value",
}


def _add_values(target: Any, values: Sequence[MetricValue], headers: Sequence[MetricHeader]) -> None:
    """Append `values` to a repeated MetricValue field (`add()` is about twice as fast as building messages)."""
    for value, header in zip(values, headers, strict=True):
        if header.type is MetricType.CURRENCY:
            target.add(decimal_value=format(Decimal(value), "f"))
        else:
            target.add(**{_FIELD[header.type]: value})


def add_row(rows: Any, row: ResultRow, headers: Sequence[MetricHeader]) -> None:
    """Append `row` to a repeated Row field."""
    message = rows.add(dimension_values=row.dimensions)
    _add_values(message.metric_values, row.values, headers)
    if row.comparison is not None:
        _add_values(message.comparison_values, row.comparison, headers)


def row_to_proto(row: ResultRow, headers: Sequence[MetricHeader]) -> q.Row:
    message = q.Row(dimension_values=row.dimensions)
    _add_values(message.metric_values, row.values, headers)
    if row.comparison is not None:
        _add_values(message.comparison_values, row.comparison, headers)
    return message


def _range(r: ResolvedRange) -> q.ResolvedRange:
    return q.ResolvedRange(
        start_date=r.start_date.isoformat(),
        end_date=r.end_date.isoformat(),
        start_time=timestamp(r.start_time),
        end_time=timestamp(r.end_time),
    )


def _metric_headers(headers: Sequence[MetricHeader]) -> list[q.MetricHeader]:
    return [q.MetricHeader(name=h.name, type=_METRIC_TYPE[h.type]) for h in headers]


def report_response(result: ReportResult) -> q.ReportResponse:
    headers = result.metric_headers
    meta = result.meta
    response = q.ReportResponse(
        dimension_headers=[q.DimensionHeader(name=n) for n in result.dimension_headers],
        metric_headers=_metric_headers(headers),
        totals=row_to_proto(result.totals, headers),
        row_count=result.row_count,
        date_range=_range(result.date_range),
        metadata=q.ReportMetadata(
            currency_code=meta.currency_code,
            time_zone=meta.time_zone,
            cube=meta.cube,
            grains=meta.grains,
            from_cache=meta.from_cache,
            provisional=meta.provisional,
            limit=meta.limit,
            data_version=meta.data_version,
            notes=meta.notes,
        ),
    )
    for row in result.rows:
        add_row(response.rows, row, headers)
    if result.comparison_range is not None:
        response.comparison_range.CopyFrom(_range(result.comparison_range))
    return response


def realtime_response(result: RealtimeResult) -> q.RealtimeResponse:
    return q.RealtimeResponse(
        minutes=[
            q.RealtimeMinute(
                minutes_ago=m.minutes_ago,
                minute_start=timestamp(m.minute_start),
                active_users=m.active_users,
                event_count=m.event_count,
            )
            for m in result.minutes
        ],
        active_users=result.active_users,
        event_count=result.event_count,
        dimension_headers=[q.DimensionHeader(name=n) for n in result.dimension_headers],
        metric_headers=_metric_headers(result.metric_headers),
        rows=[row_to_proto(r, result.metric_headers) for r in result.rows],
        row_count=result.row_count,
        window_start=timestamp(result.window_start),
        window_end=timestamp(result.window_end),
        bots_excluded=result.bots_excluded,
    )


def metadata_response(result: MetadataResult) -> q.MetadataResponse:
    return q.MetadataResponse(
        dimensions=[
            q.DimensionMetadata(
                api_name=d.api_name, ui_name=d.ui_name, description=d.description, category=d.category,
                realtime=d.realtime,
            )
            for d in result.dimensions
        ],
        metrics=[
            q.MetricMetadata(
                api_name=m.api_name, ui_name=m.ui_name, description=m.description, category=m.category,
                type=_METRIC_TYPE[m.type], expression=m.expression, realtime=m.realtime,
            )
            for m in result.metrics
        ],
        cubes=[q.CubeMetadata(name=c.name, dimensions=c.dimensions) for c in result.cubes],
        time_zone=result.time_zone,
        currency_code=result.currency_code,
    )  # fmt: skip


def compatibility_response(result: CompatibilityResult) -> q.CheckCompatibilityResponse:
    def field(f: FieldCompatibility) -> q.FieldCompatibility:
        return q.FieldCompatibility(
            name=f.name, compatibility=q.COMPATIBLE if f.compatible else q.INCOMPATIBLE, reason=f.reason
        )

    return q.CheckCompatibilityResponse(
        compatible=result.compatible,
        reasons=result.reasons,
        cube=result.cube,
        dimension_compatibilities=[field(f) for f in result.dimensions],
        metric_compatibilities=[field(f) for f in result.metrics],
    )
