"""Filter expressions: validation, and vectorized evaluation over dimension values or metric columns.

Dimension filters (StringMatch, InList, under And/Or/Not) are evaluated once per DISTINCT dimension tuple of
a report (not per rollup row) with pandas string operations; regular expressions are RE2 (GA4's syntax,
linear time, so no pattern can make a query backtrack for minutes) applied per distinct value. Matching is
case-insensitive unless `case_sensitive` (both sides lower-cased). Metric filters (NumericCompare, Between)
are evaluated on the metric columns of the aggregated rows, currency in currency units.

`validate` checks an expression before any read: names exist and are of the right kind, regular expressions
compile, nesting and size are bounded. It raises UnknownName / InvalidQuery naming the request field.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from query_svc.errors import InvalidQuery, UnknownName
from query_svc.model import (
    And,
    Between,
    FilterExpr,
    InList,
    MatchType,
    Not,
    NumericCompare,
    NumericOp,
    Or,
    StringMatch,
)

Bool = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]

MAX_DEPTH: Final = 10
MAX_LEAVES: Final = 100
MAX_IN_LIST_VALUES: Final = 10_000
MAX_PATTERN_CHARS: Final = 2_000
_RE2_MAX_MEM: Final = 8 << 20

_re2: Any = importlib.import_module("re2")  # google-re2; untyped


def leaves(expr: FilterExpr) -> Iterator[StringMatch | InList | NumericCompare | Between]:
    """Every leaf filter of `expr`, depth first."""
    if isinstance(expr, And | Or):
        for item in expr.items:
            yield from leaves(item)
    elif isinstance(expr, Not):
        yield from leaves(expr.item)
    else:
        yield expr


def fields(expr: FilterExpr | None) -> list[str]:
    """The field names `expr` refers to, in first-use order."""
    return [] if expr is None else list(dict.fromkeys(leaf.field for leaf in leaves(expr)))


def _depth(expr: FilterExpr) -> int:
    if isinstance(expr, And | Or):
        return 1 + max((_depth(i) for i in expr.items), default=0)
    if isinstance(expr, Not):
        return 1 + _depth(expr.item)
    return 1


@lru_cache(maxsize=512)
def compile_regex(pattern: str, case_sensitive: bool, full: bool) -> Callable[[str], bool]:
    """A predicate for an RE2 `pattern` (full match or search); raises InvalidQuery when it does not compile."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidQuery(f"regular expression longer than {MAX_PATTERN_CHARS} characters")
    options = _re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEM
    try:
        regex = _re2.compile(pattern, options)
    except _re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidQuery(f"invalid regular expression {pattern!r} (RE2 syntax): {reason}") from None
    if full:
        return lambda text: regex.fullmatch(text) is not None
    return lambda text: regex.search(text) is not None


def validate(expr: FilterExpr | None, *, dimensions: frozenset[str], metrics: frozenset[str], field: str) -> None:
    """Check `expr` for a dimension filter (`metrics` empty) or a metric filter (`dimensions` empty)."""
    if expr is None:
        return
    if _depth(expr) > MAX_DEPTH:
        raise InvalidQuery(f"{field}: filters may be nested at most {MAX_DEPTH} levels deep", field)
    all_leaves = list(leaves(expr))
    if len(all_leaves) > MAX_LEAVES:
        raise InvalidQuery(f"{field}: at most {MAX_LEAVES} filters per expression", field)
    for group in _groups(expr):
        if not group.items:
            raise InvalidQuery(f"{field}: and_group / or_group needs at least one expression", field)
    for leaf in all_leaves:
        if isinstance(leaf, StringMatch | InList):
            if not dimensions:
                raise InvalidQuery(
                    f"{field}: {leaf.field!r}: string and in-list filters apply to dimensions; use a numeric filter",
                    field,
                )
            if leaf.field not in dimensions:
                raise UnknownName("dimension", [leaf.field], dimensions, field)
            if isinstance(leaf, InList):
                if not leaf.values or len(leaf.values) > MAX_IN_LIST_VALUES:
                    raise InvalidQuery(f"{field}: in_list needs 1 to {MAX_IN_LIST_VALUES} values", field)
            elif leaf.match_type in (MatchType.FULL_REGEXP, MatchType.PARTIAL_REGEXP):
                try:
                    compile_regex(leaf.value, leaf.case_sensitive, leaf.match_type is MatchType.FULL_REGEXP)
                except InvalidQuery as exc:
                    raise InvalidQuery(f"{field}: {leaf.field}: {exc}", field) from None
        else:
            if not metrics:
                raise InvalidQuery(
                    f"{field}: {leaf.field!r}: numeric filters apply to metrics; use a string or in-list filter",
                    field,
                )
            if leaf.field not in metrics:
                raise UnknownName("metric", [leaf.field], metrics, field)
            numbers = (leaf.value,) if isinstance(leaf, NumericCompare) else (leaf.low, leaf.high)
            if any(not np.isfinite(n) for n in numbers):
                raise InvalidQuery(f"{field}: {leaf.field}: the value must be a finite number", field)


def _groups(expr: FilterExpr) -> Iterator[And | Or]:
    if isinstance(expr, And | Or):
        yield expr
        for item in expr.items:
            yield from _groups(item)
    elif isinstance(expr, Not):
        yield from _groups(expr.item)


# ------------------------------------------------------------------------------------------- evaluation


def _string_leaf(leaf: StringMatch | InList, column: pd.Series[str]) -> Bool:
    values = column if leaf.case_sensitive else column.str.lower()
    if isinstance(leaf, InList):
        wanted = list(leaf.values) if leaf.case_sensitive else [v.lower() for v in leaf.values]
        return values.isin(wanted).to_numpy(dtype=bool)
    kind = leaf.match_type
    if kind in (MatchType.FULL_REGEXP, MatchType.PARTIAL_REGEXP):
        match = compile_regex(leaf.value, leaf.case_sensitive, kind is MatchType.FULL_REGEXP)
        return np.fromiter((match(v) for v in column), dtype=bool, count=len(column))
    needle = leaf.value if leaf.case_sensitive else leaf.value.lower()
    if kind is MatchType.EXACT:
        result = values == needle
    elif kind is MatchType.BEGINS_WITH:
        result = values.str.startswith(needle)
    elif kind is MatchType.ENDS_WITH:
        result = values.str.endswith(needle)
    else:
        result = values.str.contains(needle, regex=False)
    return result.to_numpy(dtype=bool)


def evaluate_dimensions(expr: FilterExpr, columns: Mapping[str, pd.Series[str]], n: int) -> Bool:
    """Which of the `n` rows (one per distinct dimension tuple) `expr` keeps; `columns[name]` holds the values."""
    if isinstance(expr, And):
        out = np.ones(n, dtype=bool)
        for item in expr.items:
            out &= evaluate_dimensions(item, columns, n)
        return out
    if isinstance(expr, Or):
        out = np.zeros(n, dtype=bool)
        for item in expr.items:
            out |= evaluate_dimensions(item, columns, n)
        return out
    if isinstance(expr, Not):
        return ~evaluate_dimensions(expr.item, columns, n)
    if isinstance(expr, StringMatch | InList):
        return _string_leaf(expr, columns[expr.field])
    raise TypeError(f"not a dimension filter: {expr!r}")


_OPS: Final[Mapping[NumericOp, Callable[[F64, float], Bool]]] = {
    NumericOp.EQUAL: lambda a, v: np.isclose(a, v, rtol=1e-12, atol=1e-12),
    NumericOp.LESS_THAN: lambda a, v: a < v,
    NumericOp.LESS_THAN_OR_EQUAL: lambda a, v: a <= v,
    NumericOp.GREATER_THAN: lambda a, v: a > v,
    NumericOp.GREATER_THAN_OR_EQUAL: lambda a, v: a >= v,
}


def evaluate_metrics(expr: FilterExpr, values: Callable[[str], F64], n: int) -> Bool:
    """Which of `n` aggregated rows `expr` keeps; `values(metric)` gives a metric's numeric column."""
    if isinstance(expr, And):
        out = np.ones(n, dtype=bool)
        for item in expr.items:
            out &= evaluate_metrics(item, values, n)
        return out
    if isinstance(expr, Or):
        out = np.zeros(n, dtype=bool)
        for item in expr.items:
            out |= evaluate_metrics(item, values, n)
        return out
    if isinstance(expr, Not):
        return ~evaluate_metrics(expr.item, values, n)
    if isinstance(expr, NumericCompare):
        return np.asarray(_OPS[expr.op](values(expr.field), expr.value), dtype=bool)
    if isinstance(expr, Between):
        column = values(expr.field)
        return np.asarray((column >= expr.low) & (column <= expr.high), dtype=bool)
    raise TypeError(f"not a metric filter: {expr!r}")
