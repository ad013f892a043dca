"""Vectorization helpers shared by the derivation steps.

Every step follows the same shape: factorize the input column(s) of a batch into integer codes plus the
distinct values, derive each *distinct* value once (through a bounded LRU cache that lives across batches),
then expand the per-value results back to rows with a NumPy ``take`` on the codes. Python code therefore runs
once per distinct value, never once per event.

Contracts:
- `string_codes` never raises for object/str/categorical input: missing values (None, NaN, pd.NA) become "",
  non-string values are converted with `str`.
- `LruCache` is bounded (`maxsize` entries), not thread-safe (one per step object, one step object per worker
  thread), and evicts the least recently used entry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

NOT_SET: Final = "(not set)"
"""GA4's label for a dimension value that could not be derived."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Codes = npt.NDArray[np.intp]


class LruCache(Generic[K, V]):
    """A bounded mapping that forgets the least recently used key once it holds `maxsize` keys."""

    __slots__ = ("_data", "maxsize")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        """The cached value (and mark it recently used), or None."""
        try:
            self._data.move_to_end(key)
        except KeyError:
            return None
        return self._data[key]

    def put(self, key: K, value: V) -> None:
        """Store `value`, evicting the oldest entries beyond `maxsize`."""
        if self.maxsize == 0:
            return
        if key in self._data:
            self._data.move_to_end(key)
        self._data[key] = value
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()


@dataclass
class StepStats:
    """Counters of one derivation step, accumulated over the batches a step object has processed."""

    batches: int = 0
    rows: int = 0
    unique_values: int = 0  # distinct inputs seen, summed over batches
    cache_hits: int = 0  # distinct inputs answered from the LRU cache
    parsed: int = 0  # distinct inputs actually derived (cache misses)

    def add(self, other: StepStats) -> None:
        self.batches += other.batches
        self.rows += other.rows
        self.unique_values += other.unique_values
        self.cache_hits += other.cache_hits
        self.parsed += other.parsed


def string_codes(values: pd.Series | pd.Index | Sequence[object]) -> tuple[Codes, list[str]]:
    """Factorize `values` into (codes, distinct strings): ``distinct[codes[i]]`` is the i-th value as a string.

    Missing values map to "" (sharing the code of a real "" when there is one). Non-string values map to
    `str(value)`, so two distinct values may map to equal strings (e.g. 1 and "1"); callers map per-value
    results, so that only costs a repeated (cached) derivation.
    """
    codes, uniques = pd.factorize(pd.Series(values) if not isinstance(values, pd.Series) else values)
    codes = np.asarray(codes, dtype=np.intp)
    distinct: list[str] = uniques.tolist()
    if not all(type(u) is str for u in distinct):
        distinct = [u if isinstance(u, str) else str(u) for u in distinct]
    if len(codes) and codes.min() < 0:
        try:
            empty = distinct.index("")
        except ValueError:
            empty = len(distinct)
            distinct.append("")
        codes = codes.copy()
        codes[codes < 0] = empty
    return codes, distinct


def resolve(keys: Sequence[K], cache: LruCache[K, V], compute: Callable[[K], V], stats: StepStats) -> list[V]:
    """`compute(key)` for each distinct key, answered from `cache` when possible; counts hits and parses."""
    out: list[V] = []
    append = out.append
    hits = 0
    for key in keys:
        value = cache.get(key)
        if value is None:
            value = compute(key)
            cache.put(key, value)
        else:
            hits += 1
        append(value)
    stats.unique_values += len(keys)
    stats.cache_hits += hits
    stats.parsed += len(keys) - hits
    return out


def resolve_many(
    keys: Sequence[K], cache: LruCache[K, V], compute_many: Callable[[list[K]], list[V]], stats: StepStats
) -> list[V]:
    """Like `resolve`, but all cache misses go to `compute_many` in one call (results in the same order)."""
    out: list[V | None] = [cache.get(key) for key in keys]
    missing = [i for i, value in enumerate(out) if value is None]
    if missing:
        computed = compute_many([keys[i] for i in missing])
        if len(computed) != len(missing):
            raise ValueError(f"compute_many returned {len(computed)} values for {len(missing)} keys")
        for i, value in zip(missing, computed, strict=True):
            out[i] = value
            cache.put(keys[i], value)
    stats.unique_values += len(keys)
    stats.cache_hits += len(keys) - len(missing)
    stats.parsed += len(missing)
    return cast("list[V]", out)


def valid_utf8(text: str) -> str:
    """`text` with anything UTF-8 cannot encode (lone surrogates) replaced by "?"."""
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def expand_categorical(codes: Codes, labels: Sequence[str]) -> pd.Categorical:
    """Row-level categorical: row i gets ``labels[codes[i]]`` (labels: one per distinct input value).

    Labels are made valid UTF-8 (`valid_utf8`), as Arrow-backed string categories require."""
    label_codes, categories = pd.factorize(np.asarray([valid_utf8(label) for label in labels], dtype=object))
    row_codes = np.asarray(label_codes, dtype=np.int32)[codes] if len(codes) else np.empty(0, dtype=np.int32)
    return pd.Categorical.from_codes(row_codes, categories=pd.Index(categories, dtype="str"))


def expand_bool(codes: Codes, flags: Sequence[bool]) -> npt.NDArray[np.bool_]:
    """Row-level booleans: row i gets ``flags[codes[i]]``."""
    return np.asarray(flags, dtype=np.bool_)[codes] if len(codes) else np.empty(0, dtype=np.bool_)


def combine_codes(parts: Sequence[Codes], sizes: Sequence[int]) -> tuple[Codes, Codes]:
    """Factorize the row-wise tuple of several code columns.

    Returns (group codes per row, one representative row index per group); every row of a group has the same
    code in every part, so ``part[representative]`` gives that group's code in `part`.
    """
    if not parts:
        raise ValueError("combine_codes needs at least one part")
    # After each factorize the accumulator is < number of rows, so acc * size + part stays far below 2**63.
    acc = np.asarray(parts[0], dtype=np.int64)
    for part, size in zip(parts[1:], sizes[1:], strict=True):
        acc, _ = pd.factorize(acc * max(int(size), 1) + np.asarray(part, dtype=np.int64))
    group_codes, uniques = pd.factorize(acc)
    group_codes = np.asarray(group_codes, dtype=np.intp)
    representative = np.zeros(len(uniques), dtype=np.intp)
    representative[group_codes] = np.arange(len(group_codes), dtype=np.intp)
    return group_codes, representative
