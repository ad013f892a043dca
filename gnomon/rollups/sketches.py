"""Distinct-user sketches: Apache DataSketches HLL, lg_k 12, stored as compact HLL_4 bytes.

Unique counts are never summed: windows, dimension values or regions combine by `merge_sketches` (an
`hll_union`), whose estimate is within about ±3.2 % of the true count with 95 % confidence at lg_k 12
(relative standard error 1.04/sqrt(4096) = 1.6 %). A sketch of n distinct users takes 8 + 4·n bytes while
small (list/set mode) and at most ~2.1 KB once dense.

`b""` is accepted everywhere as the empty sketch (`EMPTY_SKETCH` is its canonical serialized form).
Raises RollupInvalid when bytes are not a serialized HLL sketch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import datasketches

from gnomon.rollups.errors import RollupInvalid

SKETCH_LG_K = 12
_TARGET = datasketches.tgt_hll_type.HLL_4


def new_sketch() -> Any:
    """A fresh, empty updatable `datasketches.hll_sketch` (lg_k 12, HLL_4) to `.update(value)` per user id."""
    return datasketches.hll_sketch(SKETCH_LG_K, _TARGET)


def serialize_sketch(sketch: Any) -> bytes:
    """The compact serialized form of a `datasketches.hll_sketch`, as stored in `Metrics.users`."""
    return bytes(sketch.serialize_compact())


EMPTY_SKETCH: bytes = serialize_sketch(new_sketch())


def sketch_of(values: Iterable[str | int | bytes]) -> bytes:
    """The serialized sketch of the distinct `values` (user ids)."""
    sketch = new_sketch()
    for value in values:
        sketch.update(value)
    return serialize_sketch(sketch)


def load_sketch(data: bytes) -> Any:
    """The `datasketches.hll_sketch` serialized in `data` (`b""` is the empty sketch)."""
    if not data:
        return new_sketch()
    try:
        return datasketches.hll_sketch.deserialize(data)
    except (RuntimeError, ValueError, IndexError) as exc:  # what the C++ library raises for bad/truncated bytes
        raise RollupInvalid(f"bytes of length {len(data)} are not a serialized HLL sketch: {exc}") from None


def sketch_estimate(data: bytes) -> float:
    """The estimated number of distinct users in one serialized sketch."""
    return float(load_sketch(data).get_estimate())


class MergedSketch(NamedTuple):
    estimate: float  # distinct users of the union
    sketch: bytes  # the union, serialized like any stored sketch (mergeable again)


def merge_sketches(sketches: Sequence[bytes]) -> MergedSketch:
    """The union of serialized sketches: its estimate and its serialized form (an empty list gives empty)."""
    union = datasketches.hll_union(SKETCH_LG_K)
    for data in sketches:
        if data and data != EMPTY_SKETCH:
            union.update(load_sketch(data))
    result = union.get_result(_TARGET)
    return MergedSketch(float(result.get_estimate()), serialize_sketch(result))
