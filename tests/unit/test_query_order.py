"""Ordering, paging, limits and offsets of report rows."""

from __future__ import annotations

import numpy as np
import pytest

from query_svc.errors import InvalidQuery
from query_svc.model import OrderBy
from query_svc.order import check_offset, order_rows, page, resolve_limit

KEYS = [("b", "x"), ("a", "y"), ("c", "x"), ("a", "x"), ("d", "z")]
SESSIONS = np.array([5.0, 7.0, 5.0, 1.0, 7.0])
RATE = np.array([0.1, 0.2, 0.9, 0.5, 0.2])


COLUMNS = [np.array([k[0] for k in KEYS], dtype=object), np.array([k[1] for k in KEYS], dtype=object)]


def ordered(*order_bys: OrderBy) -> list[tuple[str, ...]]:
    permutation = order_rows(
        COLUMNS, len(KEYS), ("page", "device"), order_bys, lambda m: SESSIONS if m == "sessions" else RATE
    )
    return [KEYS[i] for i in permutation]


def test_metric_desc_with_ties_broken_by_dimensions_ascending() -> None:
    assert ordered(OrderBy("sessions", desc=True)) == [("a", "y"), ("d", "z"), ("b", "x"), ("c", "x"), ("a", "x")]


def test_metric_asc_then_second_metric() -> None:
    assert ordered(OrderBy("sessions"), OrderBy("engagementRate", desc=True)) == [
        ("a", "x"),
        ("c", "x"),
        ("b", "x"),
        ("a", "y"),
        ("d", "z"),
    ]


def test_dimension_order_both_directions() -> None:
    assert ordered(OrderBy("page", is_metric=False)) == [("a", "x"), ("a", "y"), ("b", "x"), ("c", "x"), ("d", "z")]
    assert ordered(OrderBy("device", desc=True, is_metric=False), OrderBy("page", desc=True, is_metric=False)) == [
        ("d", "z"),
        ("a", "y"),
        ("c", "x"),
        ("b", "x"),
        ("a", "x"),
    ]


def test_no_order_is_dimension_order_and_empty_is_empty() -> None:
    assert ordered() == sorted(KEYS)
    assert order_rows([], 0, (), (), lambda m: np.zeros(0)).tolist() == []
    assert order_rows([], 2, (), (), lambda m: np.zeros(2)).tolist() == [0, 1]


def test_pages_partition_the_ordered_rows() -> None:
    permutation = order_rows(COLUMNS, 5, ("page", "device"), (OrderBy("sessions", desc=True),), lambda m: SESSIONS)
    pages = [page(permutation, offset, 2).tolist() for offset in (0, 2, 4, 6)]
    assert [i for p in pages for i in p] == permutation.tolist()
    assert pages[-1] == []


def test_limits() -> None:
    assert resolve_limit(None, 100_000) == 10_000
    assert resolve_limit(0, 100_000) == 10_000
    assert resolve_limit(10, 100_000) == 10
    assert resolve_limit(10**12, 100_000) == 100_000  # huge limits are capped, not refused
    assert resolve_limit(None, 500) == 500
    with pytest.raises(InvalidQuery, match="limit"):
        resolve_limit(-1, 100_000)
    assert check_offset(0) == 0
    with pytest.raises(InvalidQuery, match="offset"):
        check_offset(-5)
