"""Ordering and paging of report rows, vectorized (one `np.lexsort`). Pure.

Order: the given order_bys in turn (metrics numerically, dimensions alphanumerically by code point), then
every dimension ascending as a tie-break, so equal requests always give rows in the same order and pages
never overlap or skip rows. Paging: rows [offset, offset + limit) of that order; `row_count` is the number
of rows before paging.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from query_svc.errors import InvalidQuery
from query_svc.model import OrderBy

IntP = npt.NDArray[np.intp]
F64 = npt.NDArray[np.float64]

DEFAULT_LIMIT: Final = 10_000
MAX_OFFSET: Final = 10_000_000


def dimension_codes(values: Sequence[str] | npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """Rank of each value in code-point order (equal values share a rank)."""
    codes, _ = pd.factorize(np.asarray(values, dtype=object), sort=True)
    return np.asarray(codes, dtype=np.int64)


def order_rows(
    columns: Sequence[Sequence[str] | npt.NDArray[np.object_]],
    n: int,
    dimensions: Sequence[str],
    order_bys: Sequence[OrderBy],
    metric: Callable[[str], F64],
) -> IntP:
    """The permutation of `n` rows in order; `columns[k]` holds the values of dimension `dimensions[k]`."""
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    position = {name: i for i, name in enumerate(dimensions)}
    sort_keys: list[npt.NDArray[np.int64] | F64] = []
    for order in order_bys:
        if order.is_metric:
            values = metric(order.name)
        else:
            values = dimension_codes(columns[position[order.name]]).astype(np.float64)
        sort_keys.append(-values if order.desc else values)
    sort_keys.extend(dimension_codes(column) for column in columns)
    if not sort_keys:
        return np.arange(n, dtype=np.intp)
    return np.lexsort(tuple(reversed(sort_keys))).astype(np.intp)


def resolve_limit(limit: int | None, maximum: int, default: int = DEFAULT_LIMIT) -> int:
    """The limit to apply: `default` when None or 0, capped at `maximum`; negative is InvalidQuery."""
    if limit is None or limit == 0:
        return min(default, maximum)
    if limit < 0:
        raise InvalidQuery(f"limit must be >= 0, got {limit}", "limit")
    return min(limit, maximum)


def check_offset(offset: int) -> int:
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidQuery(f"offset must be between 0 and {MAX_OFFSET}, got {offset}", "offset")
    return offset


def page(permutation: IntP, offset: int, limit: int) -> IntP:
    return permutation[offset : offset + limit]
