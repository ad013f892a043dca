"""Filter expressions: every match type, case sensitivity, in-list, and/or/not, metric filters, validation."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from query_svc import filters
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

PAGES = ["/", "/Shop/Shoes", "/shop/hats", "/blog/shop", "/about", "(other)", "/SHOP"]
DIMS = frozenset({"pagePath", "country"})
METRICS = frozenset({"sessions", "engagementRate"})


def keep(expr: FilterExpr, values: list[str] = PAGES) -> list[str]:
    columns = {"pagePath": pd.Series(values, dtype=object), "country": pd.Series(["x"] * len(values), dtype=object)}
    mask = filters.evaluate_dimensions(expr, columns, len(values))
    return [v for v, k in zip(values, mask, strict=True) if k]


@pytest.mark.parametrize(
    ("match_type", "value", "case_sensitive", "expected"),
    [
        (MatchType.EXACT, "/shop", False, ["/SHOP"]),
        (MatchType.EXACT, "/shop", True, []),
        (MatchType.EXACT, "/SHOP", True, ["/SHOP"]),
        (MatchType.BEGINS_WITH, "/shop", False, ["/Shop/Shoes", "/shop/hats", "/SHOP"]),
        (MatchType.BEGINS_WITH, "/shop", True, ["/shop/hats"]),
        (MatchType.ENDS_WITH, "shop", False, ["/blog/shop", "/SHOP"]),
        (MatchType.ENDS_WITH, "SHOP", True, ["/SHOP"]),
        (MatchType.CONTAINS, "SHO", False, ["/Shop/Shoes", "/shop/hats", "/blog/shop", "/SHOP"]),
        (MatchType.CONTAINS, "Sho", True, ["/Shop/Shoes"]),
        (MatchType.CONTAINS, "(", True, ["(other)"]),  # contains is literal, not a pattern
        (MatchType.FULL_REGEXP, "/shop.*", False, ["/Shop/Shoes", "/shop/hats", "/SHOP"]),
        (MatchType.FULL_REGEXP, "/shop", False, ["/SHOP"]),  # full: the whole value must match
        (MatchType.FULL_REGEXP, "/[a-z]+/[a-z]+", True, ["/shop/hats", "/blog/shop"]),
        (MatchType.PARTIAL_REGEXP, "sho(p|es)$", False, ["/Shop/Shoes", "/blog/shop", "/SHOP"]),
        (MatchType.PARTIAL_REGEXP, "^/s", True, ["/shop/hats"]),
        (MatchType.PARTIAL_REGEXP, r"\(other\)", True, ["(other)"]),
    ],
)
def test_string_match_types(match_type: MatchType, value: str, case_sensitive: bool, expected: list[str]) -> None:
    assert keep(StringMatch("pagePath", match_type, value, case_sensitive)) == expected


def test_in_list_and_case() -> None:
    assert keep(InList("pagePath", ("/shop", "/about"))) == ["/about", "/SHOP"]
    assert keep(InList("pagePath", ("/shop", "/about"), case_sensitive=True)) == ["/about"]


def test_and_or_not() -> None:
    shop = StringMatch("pagePath", MatchType.CONTAINS, "shop")
    hats = StringMatch("pagePath", MatchType.ENDS_WITH, "hats")
    root = StringMatch("pagePath", MatchType.EXACT, "/")
    assert keep(And((shop, Not(hats)))) == ["/Shop/Shoes", "/blog/shop", "/SHOP"]
    assert keep(Or((hats, root))) == ["/", "/shop/hats"]
    assert keep(Not(Or((shop, root)))) == ["/about", "(other)"]
    assert keep(And((Or((hats, root)), Not(root)))) == ["/shop/hats"]
    assert keep(Not(Not(root))) == ["/"]


def test_unicode_case_folding() -> None:
    values = ["/Über", "/über", "/uber"]
    assert keep(StringMatch("pagePath", MatchType.EXACT, "/ÜBER"), values) == ["/Über", "/über"]
    assert keep(StringMatch("pagePath", MatchType.PARTIAL_REGEXP, "Ü"), values) == ["/Über", "/über"]


_TEXT = st.text(alphabet="aAbB/.-", max_size=6)


@given(values=st.lists(_TEXT, min_size=1, max_size=20), needle=_TEXT, case_sensitive=st.booleans())
def test_string_matches_agree_with_python(values: list[str], needle: str, case_sensitive: bool) -> None:
    def fold(s: str) -> str:
        return s if case_sensitive else s.lower()

    reference = {
        MatchType.EXACT: lambda v: fold(v) == fold(needle),
        MatchType.BEGINS_WITH: lambda v: fold(v).startswith(fold(needle)),
        MatchType.ENDS_WITH: lambda v: fold(v).endswith(fold(needle)),
        MatchType.CONTAINS: lambda v: fold(needle) in fold(v),
        MatchType.FULL_REGEXP: lambda v: re.fullmatch(re.escape(needle), v, 0 if case_sensitive else re.I) is not None,
        MatchType.PARTIAL_REGEXP: lambda v: re.search(re.escape(needle), v, 0 if case_sensitive else re.I) is not None,
    }
    for match_type, predicate in reference.items():
        pattern = re.escape(needle) if match_type in (MatchType.FULL_REGEXP, MatchType.PARTIAL_REGEXP) else needle
        got = keep(StringMatch("pagePath", match_type, pattern, case_sensitive), values)
        assert got == [v for v in values if predicate(v)], match_type


def test_metric_filters() -> None:
    sessions = np.array([0.0, 5.0, 10.0, 20.0])
    rate = np.array([0.0, 0.5, 0.25, 1.0])

    def values(name: str) -> np.ndarray:
        return sessions if name == "sessions" else rate

    def rows(expr: FilterExpr) -> list[int]:
        return np.flatnonzero(filters.evaluate_metrics(expr, values, 4)).tolist()

    assert rows(NumericCompare("sessions", NumericOp.EQUAL, 10)) == [2]
    assert rows(NumericCompare("sessions", NumericOp.LESS_THAN, 10)) == [0, 1]
    assert rows(NumericCompare("sessions", NumericOp.LESS_THAN_OR_EQUAL, 10)) == [0, 1, 2]
    assert rows(NumericCompare("sessions", NumericOp.GREATER_THAN, 10)) == [3]
    assert rows(NumericCompare("sessions", NumericOp.GREATER_THAN_OR_EQUAL, 10)) == [2, 3]
    assert rows(Between("sessions", 5, 10)) == [1, 2]
    assert rows(And((Between("sessions", 1, 100), NumericCompare("engagementRate", NumericOp.LESS_THAN, 0.5)))) == [2]
    assert rows(Or((NumericCompare("sessions", NumericOp.EQUAL, 0), Not(Between("engagementRate", 0, 0.9))))) == [0, 3]


def validate_dims(expr: FilterExpr) -> None:
    filters.validate(expr, dimensions=DIMS, metrics=frozenset(), field="dimension_filter")


def test_validation_names_the_problem() -> None:
    with pytest.raises(UnknownName, match=r"'pageTitle'.*valid dimensions: country, pagePath"):
        validate_dims(StringMatch("pageTitle", MatchType.EXACT, "x"))
    with pytest.raises(InvalidQuery, match="numeric filters apply to metrics"):
        validate_dims(NumericCompare("pagePath", NumericOp.EQUAL, 1))
    with pytest.raises(InvalidQuery, match="apply to dimensions"):
        filters.validate(
            StringMatch("sessions", MatchType.EXACT, "1"),
            dimensions=frozenset(),
            metrics=METRICS,
            field="metric_filter",
        )
    with pytest.raises(UnknownName, match="'bogus'"):
        filters.validate(Between("bogus", 1, 2), dimensions=frozenset(), metrics=METRICS, field="metric_filter")
    with pytest.raises(InvalidQuery, match="finite"):
        filters.validate(
            NumericCompare("sessions", NumericOp.EQUAL, float("nan")),
            dimensions=frozenset(),
            metrics=METRICS,
            field="metric_filter",
        )
    with pytest.raises(InvalidQuery, match="at least one"):
        validate_dims(And(()))
    with pytest.raises(InvalidQuery, match="in_list"):
        validate_dims(InList("pagePath", ()))


@pytest.mark.parametrize("pattern", ["(", "[a-", "a**", "(?=x)", r"\1(a)", "*"])
def test_bad_regular_expressions_are_invalid(pattern: str) -> None:
    with pytest.raises(InvalidQuery, match="invalid regular expression"):
        validate_dims(StringMatch("pagePath", MatchType.PARTIAL_REGEXP, pattern))


def test_nesting_and_size_are_bounded() -> None:
    leaf = StringMatch("pagePath", MatchType.EXACT, "/")
    deep: FilterExpr = leaf
    for _ in range(filters.MAX_DEPTH):
        deep = Not(deep)
    with pytest.raises(InvalidQuery, match="nested"):
        validate_dims(deep)
    with pytest.raises(InvalidQuery, match="at most"):
        validate_dims(Or(tuple([leaf] * (filters.MAX_LEAVES + 1))))


def test_fields_in_first_use_order() -> None:
    expr = And(
        (StringMatch("country", MatchType.EXACT, "x"), Not(InList("pagePath", ("a",))), InList("country", ("y",)))
    )
    assert filters.fields(expr) == ["country", "pagePath"]
    assert filters.fields(None) == []
