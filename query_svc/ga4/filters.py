"""GA4 FilterExpression / OrderBy messages -> the engine's filter and order model (`query_svc.model`). Pure.

Every problem raises InvalidQuery whose `field` is the GA4 request path of the offending part, e.g.
`dimension_filter.and_group.expressions[1].filter.numeric_filter.operation`.

Mapping: string_filter (every match type, case_sensitive) and in_list_filter -> StringMatch / InList on a
dimension; empty_filter -> the value is "" or "(not set)" (how the aggregator stores a missing value);
numeric_filter (every operation) and between_filter -> NumericCompare / Between on a metric; and_group,
or_group, not_expression -> And, Or, Not. Regular expressions are RE2, as in GA4 (checked by the engine).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

from google.analytics.data_v1beta.types import data

from query_svc.errors import InvalidQuery
from query_svc.ga4.names import ENGINE_NAME, TIME_DIMENSIONS, check_names
from query_svc.model import And, Between, FilterExpr, InList, MatchType, Not, NumericCompare, NumericOp, Or, StringMatch

MAX_NESTING: Final = 32  # conversion guard; the engine enforces its own (smaller) depth and size limits
NOT_SET: Final = "(not set)"

_MatchType = data.Filter.StringFilter.MatchType
_Operation = data.Filter.NumericFilter.Operation
_OrderType = data.OrderBy.DimensionOrderBy.OrderType

_MATCH: Final = {
    _MatchType.MATCH_TYPE_UNSPECIFIED: MatchType.EXACT,
    _MatchType.EXACT: MatchType.EXACT,
    _MatchType.BEGINS_WITH: MatchType.BEGINS_WITH,
    _MatchType.ENDS_WITH: MatchType.ENDS_WITH,
    _MatchType.CONTAINS: MatchType.CONTAINS,
    _MatchType.FULL_REGEXP: MatchType.FULL_REGEXP,
    _MatchType.PARTIAL_REGEXP: MatchType.PARTIAL_REGEXP,
}
_OPS: Final = {
    _Operation.EQUAL: NumericOp.EQUAL,
    _Operation.LESS_THAN: NumericOp.LESS_THAN,
    _Operation.LESS_THAN_OR_EQUAL: NumericOp.LESS_THAN_OR_EQUAL,
    _Operation.GREATER_THAN: NumericOp.GREATER_THAN,
    _Operation.GREATER_THAN_OR_EQUAL: NumericOp.GREATER_THAN_OR_EQUAL,
}


class Unsupported(InvalidQuery):
    """A valid GA4 request feature this server does not implement (INVALID_ARGUMENT naming the field)."""


@dataclass(frozen=True)
class Scope:
    """What a filter may refer to: GA4 dimension names (dimension filters) or metric names (metric filters)."""

    dimensions: Collection[str] = ()
    metrics: Collection[str] = ()


def _number(value: data.NumericValue, field: str) -> float:
    kind = data.NumericValue.pb(value).WhichOneof("one_value")
    if kind == "int64_value":
        return float(value.int64_value)
    if kind == "double_value":
        return float(value.double_value)
    raise InvalidQuery(f"{field}: set int64_value or double_value", field)


def _dimension_name(name: str, scope: Scope, field: str, kind: str) -> str:
    if not scope.dimensions:
        raise InvalidQuery(f"{field}: {kind} filters apply to dimensions; {name!r} is in a metric filter", field)
    check_names([name], scope.dimensions, "dimension", f"{field}.field_name")
    if name in TIME_DIMENSIONS:
        raise Unsupported(
            f"{field}.field_name: filtering by the time dimension {name!r} is not supported;"
            " narrow date_ranges instead",
            f"{field}.field_name",
        )
    return ENGINE_NAME.get(name, name)  # realtime-only dimensions (minutesAgo) keep their name


def _metric_name(name: str, scope: Scope, field: str, kind: str) -> str:
    if not scope.metrics:
        raise InvalidQuery(f"{field}: {kind} filters apply to metrics; {name!r} is in a dimension filter", field)
    check_names([name], scope.metrics, "metric", f"{field}.field_name")
    return name


def _leaf(message: data.Filter, scope: Scope, field: str) -> FilterExpr:
    name = message.field_name
    if not name:
        raise InvalidQuery(f"{field}.field_name is required", f"{field}.field_name")
    kind = data.Filter.pb(message).WhichOneof("one_filter")
    if kind == "string_filter":
        s = message.string_filter
        match = _MATCH.get(s.match_type)
        if match is None:
            raise InvalidQuery(f"{field}.string_filter.match_type: unknown value {int(s.match_type)}", field)
        return StringMatch(_dimension_name(name, scope, field, "string"), match, s.value, s.case_sensitive)
    if kind == "in_list_filter":
        values = tuple(message.in_list_filter.values)
        dimension = _dimension_name(name, scope, field, "in_list")
        return InList(dimension, values, message.in_list_filter.case_sensitive)
    if kind == "empty_filter":
        return InList(_dimension_name(name, scope, field, "empty"), ("", NOT_SET), case_sensitive=True)
    if kind == "numeric_filter":
        n = message.numeric_filter
        op = _OPS.get(n.operation)
        if op is None:
            raise InvalidQuery(
                f"{field}.numeric_filter.operation: set one of EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL, GREATER_THAN,"
                " GREATER_THAN_OR_EQUAL",
                f"{field}.numeric_filter.operation",
            )
        metric = _metric_name(name, scope, field, "numeric")
        return NumericCompare(metric, op, _number(n.value, f"{field}.numeric_filter.value"))
    if kind == "between_filter":
        b = message.between_filter
        metric = _metric_name(name, scope, field, "between")
        return Between(
            metric,
            _number(b.from_value, f"{field}.between_filter.from_value"),
            _number(b.to_value, f"{field}.between_filter.to_value"),
        )
    raise InvalidQuery(
        f"{field}: filter on {name!r} has no condition (string_filter, in_list_filter, empty_filter, numeric_filter"
        " or between_filter)",
        field,
    )


def filter_expr(message: data.FilterExpression, scope: Scope, field: str, depth: int = 0) -> FilterExpr:
    """The engine filter of a GA4 FilterExpression; raises InvalidQuery / Unsupported naming the part."""
    if depth > MAX_NESTING:
        raise InvalidQuery(f"{field}: filter expressions nest too deeply", field)
    kind = data.FilterExpression.pb(message).WhichOneof("expr")
    if kind in ("and_group", "or_group"):
        group = message.and_group if kind == "and_group" else message.or_group
        items = tuple(
            filter_expr(e, scope, f"{field}.{kind}.expressions[{i}]", depth + 1)
            for i, e in enumerate(group.expressions)
        )
        if not items:
            raise InvalidQuery(f"{field}.{kind}: needs at least one expression", f"{field}.{kind}")
        return And(items) if kind == "and_group" else Or(items)
    if kind == "not_expression":
        return Not(filter_expr(message.not_expression, scope, f"{field}.not_expression", depth + 1))
    if kind == "filter":
        return _leaf(message.filter, scope, f"{field}.filter")
    raise InvalidQuery(
        f"{field}: an empty filter expression (set and_group, or_group, not_expression or filter)", field
    )


@dataclass(frozen=True)
class Order:
    """One GA4 order_by: a metric (numeric) or a dimension (GA4 name; ALPHANUMERIC or NUMERIC)."""

    name: str
    desc: bool
    is_metric: bool


def order_bys(messages: Sequence[data.OrderBy], dimensions: Sequence[str], metrics: Sequence[str]) -> tuple[Order, ...]:
    """GA4 order_bys over the request's `dimensions` (GA4 names, `dateRange` included when present) and
    `metrics`. NUMERIC ordering is accepted for the time dimensions (fixed-width digits, so it equals the
    alphanumeric order); CASE_INSENSITIVE_ALPHANUMERIC, NUMERIC on other dimensions and pivots are Unsupported."""
    out: list[Order] = []
    for i, message in enumerate(messages):
        field = f"order_bys[{i}]"
        kind = data.OrderBy.pb(message).WhichOneof("one_order_by")
        if kind == "metric":
            name = message.metric.metric_name
            if name not in metrics:
                raise InvalidQuery(
                    f"{field}.metric.metric_name: {name!r} is not one of the request's metrics {list(metrics)}",
                    f"{field}.metric.metric_name",
                )
            out.append(Order(name, message.desc, True))
        elif kind == "dimension":
            d = message.dimension
            name = d.dimension_name
            if name not in dimensions:
                raise InvalidQuery(
                    f"{field}.dimension.dimension_name: {name!r} is not one of the request's dimensions"
                    f" {list(dimensions)}",
                    f"{field}.dimension.dimension_name",
                )
            if d.order_type == _OrderType.CASE_INSENSITIVE_ALPHANUMERIC:
                raise Unsupported(
                    f"{field}.dimension.order_type: CASE_INSENSITIVE_ALPHANUMERIC is not supported; use ALPHANUMERIC"
                    " (code-point order)",
                    f"{field}.dimension.order_type",
                )
            if d.order_type == _OrderType.NUMERIC and name not in TIME_DIMENSIONS:
                raise Unsupported(
                    f"{field}.dimension.order_type: NUMERIC ordering is supported for the time dimensions only"
                    f" ({', '.join(sorted(TIME_DIMENSIONS))}); {name!r} holds text, use ALPHANUMERIC",
                    f"{field}.dimension.order_type",
                )
            out.append(Order(name, message.desc, False))
        elif kind == "pivot":
            raise Unsupported(f"{field}.pivot: pivot ordering is not supported (pivot reports are not)", field)
        else:
            raise InvalidQuery(f"{field}: set metric or dimension", field)
    return tuple(out)
