"""The embedded rollup store's storage unit: one *pack* per window, holding every row of that window as columns.

A window (merchant, cube, grain, version, window_start) is one row of table `rollup_packs` (`sqlite_db`):
- `dims`: the rows' encoded dims (`gnomon.rollups.dims`), unique, ascending, joined by "\\n" (an encoded dims
  never holds a raw newline: control characters are escaped), so row i of the window is the i-th line;
- `counters`: n x 8 little-endian int64, row after row, in `model.COUNTER_FIELDS` order;
- `flags`: n bytes, 1 where the row is provisional; `computed_at`: n little-endian int64 (ms since the epoch);
- `users` / `new_users`: the rows' serialized sketches back to back; `users_ends` / `new_users_ends`: n
  little-endian int64, the end offset of row i's sketch (row i spans [ends[i-1], ends[i]));
- summary columns for window stamps without decoding: `n`, `provisional` (rows flagged), `computed_min_ms`,
  `computed_max_ms`.
Why: a merchant-day has ~300k rows (hours x page paths x devices); SQLite costs ~3.5 µs per inserted row
(binding + B-tree), a pack costs that once per window (~350 per day) plus the bytes. The price is that a read
filtered by dims fetches every window of its range whole and searches its dims lines (`wanted_lines`), instead of
seeking one key per wanted row.

Pure functions and data (plus the one statement that stores a pack): no I/O, no validation (the store
validates what it packs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

N_COUNTERS: Final = 8
_FEW_WANTED: Final = 16
_I64: Final = np.dtype("<i8")

PackValues = tuple[Any, ...]
"""(n, provisional, computed_min_ms, computed_max_ms, dims, counters, flags, computed_at, users_ends, users,
new_users_ends, new_users): the values of `rollup_packs`' data columns, in `PACK_COLUMNS` order."""

PACK_COLUMNS: Final = (
    "n, provisional, computed_min_ms, computed_max_ms, dims, counters, flags, computed_at,"
    " users_ends, users, new_users_ends, new_users"
)

STORE_PACK: Final = (
    "INSERT OR REPLACE INTO rollup_packs (merchant_id, cube, grain, version, window_start, "  # noqa: S608
    f"{PACK_COLUMNS}) VALUES ({', '.join('?' * 17)})"
)
"""Stores one window's pack: the window key (merchant, cube, grain, version, window_start s), then `values()`."""

RowValues = tuple[tuple[int, ...], bytes, bytes, int, int]
"""One row of a pack outside its columns: (the 8 counters, users, new_users, provisional 0/1, computed_at_ms)."""


@dataclass(frozen=True)
class Pack:
    """The rows of one window: `dims[i]` (encoded, unique, ascending) has counters `counters[i]` (8 int64),
    sketches `users[i]` / `new_users[i]`, `flags[i]` (1 = provisional) and `computed_ms[i]`."""

    dims: Sequence[str]
    counters: npt.NDArray[np.int64]  # shape (n, 8)
    flags: npt.NDArray[np.uint8]
    computed_ms: npt.NDArray[np.int64]
    users: Sequence[bytes]
    new_users: Sequence[bytes]

    def values(self) -> PackValues:
        """The `PACK_COLUMNS` values of this pack (n >= 1)."""
        return (
            len(self.dims),
            int(np.count_nonzero(self.flags)),
            int(self.computed_ms.min()),
            int(self.computed_ms.max()),
            "\n".join(self.dims),
            self.counters.astype(_I64, copy=False).tobytes(),
            self.flags.tobytes(),
            self.computed_ms.astype(_I64, copy=False).tobytes(),
            _ends(self.users),
            b"".join(self.users),
            _ends(self.new_users),
            b"".join(self.new_users),
        )

    def rows(self) -> dict[str, RowValues]:
        """Every row by encoded dims (for merging)."""
        counters = [tuple(c) for c in self.counters.tolist()]
        flags, computed = self.flags.tolist(), self.computed_ms.tolist()
        return {
            d: (counters[i], self.users[i], self.new_users[i], flags[i], computed[i]) for i, d in enumerate(self.dims)
        }

    @classmethod
    def of_rows(cls, rows: dict[str, RowValues]) -> Pack:
        """The pack of rows by encoded dims (any order)."""
        dims = sorted(rows)
        values = [rows[d] for d in dims]
        return cls(
            dims=dims,
            counters=np.asarray([v[0] for v in values], dtype=np.int64).reshape(len(dims), N_COUNTERS),
            flags=np.asarray([v[3] for v in values], dtype=np.uint8),
            computed_ms=np.asarray([v[4] for v in values], dtype=np.int64),
            users=[v[1] for v in values],
            new_users=[v[2] for v in values],
        )

    def merged(self, newer: Pack) -> Pack:
        """This pack overwritten by `newer`: rows with the same dims take newer's values, the others stay."""
        rows = self.rows()
        rows.update(newer.rows())
        return Pack.of_rows(rows)


def _ends(sketches: Sequence[bytes]) -> bytes:
    lengths = np.fromiter(map(len, sketches), dtype=np.int64, count=len(sketches))
    return np.cumsum(lengths, dtype=np.int64).astype(_I64, copy=False).tobytes()


def unpack(values: Sequence[Any]) -> Pack:
    """The pack stored as `PACK_COLUMNS` values (`users` / `new_users` may be None: not read, b"" per row)."""
    n = int(values[0])
    dims = values[4].split("\n")
    return Pack(
        dims=dims,
        counters=np.frombuffer(values[5], dtype=_I64).reshape(n, N_COUNTERS),
        flags=np.frombuffer(values[6], dtype=np.uint8),
        computed_ms=np.frombuffer(values[7], dtype=_I64),
        users=sketches_at(values[8], values[9], np.arange(n)),
        new_users=sketches_at(values[10], values[11], np.arange(n)),
    )


def sketches_at(ends: bytes, data: bytes | None, picked: npt.NDArray[np.intp]) -> list[bytes]:
    """The sketches of rows `picked` (positions) of a `users` / `new_users` column (`data` None: not read, b"")."""
    if data is None:
        return [b""] * picked.size
    bounds = np.frombuffer(ends, dtype=_I64)
    stops = bounds[picked]
    starts = np.where(picked > 0, bounds[np.maximum(picked - 1, 0)], 0)
    return [data[a:b] for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]


def wanted_lines(window_dims: str, wanted: Sequence[str], *, fold_case: bool = False) -> list[tuple[int, str]]:
    """(row position, encoded dims) of the lines of a pack's `dims` column that are in `wanted`, by ascending
    position. With `fold_case`, `wanted` holds lower-cased encoded dims and a line matches when its `str.lower()`
    is in `wanted` (lower-casing the encoded form equals encoding the lower-cased values: the JSON escapes are
    lower-case, and no lower-case mapping yields a quote, backslash or control character). A few wanted dims are
    found by substring search (cheaper than splitting the column), many by splitting it."""
    haystack = window_dims.lower() if fold_case else window_dims
    # line by line for many wanted dims, or when a lower-case mapping grew ("İ") so that offsets differ
    if len(wanted) > _FEW_WANTED or len(haystack) != len(window_dims):
        asked = set(wanted)
        return [
            (i, line)
            for i, line in enumerate(window_dims.split("\n"))
            if (line.lower() if fold_case else line) in asked
        ]
    text = "\n" + haystack + "\n"
    found = set()
    for d in wanted:
        needle = "\n" + d + "\n"  # a line is a whole encoded dims: no raw newline inside one
        at = text.find(needle)
        while at >= 0:  # stored lines are distinct; lower-cased, several may match
            found.add((text.count("\n", 0, at), window_dims[at : at + len(d)]))
            at = text.find(needle, at + 1) if fold_case else -1
    return sorted(found)


def packs_of_sorted(
    window_starts: npt.NDArray[np.int64],
    dims: Sequence[str],
    counters: npt.NDArray[np.int64],
    flags: npt.NDArray[np.uint8],
    computed_ms: npt.NDArray[np.int64],
    users: Sequence[bytes],
    new_users: Sequence[bytes],
) -> list[tuple[int, Pack]]:
    """(window start, pack) of rows already ordered by (window start, dims) with unique (window, dims)."""
    n = len(dims)
    if n == 0:
        return []
    cuts = [0, *(np.flatnonzero(np.diff(window_starts)) + 1).tolist(), n]
    starts = window_starts[cuts[:-1]].tolist()
    return [
        (
            start,
            Pack(dims[a:b], counters[a:b], flags[a:b], computed_ms[a:b], users[a:b], new_users[a:b]),
        )
        for start, a, b in zip(starts, cuts[:-1], cuts[1:], strict=True)
    ]


def sort_rows(
    window_starts: npt.NDArray[np.int64], codes: npt.NDArray[np.int64], texts: Sequence[str]
) -> npt.NDArray[np.intp]:
    """Row positions ordered by (window start, dims), keeping only the LAST occurrence of a repeated pair; row i
    has the encoded dims `texts[codes[i]]` (`texts` distinct)."""
    n = codes.size
    rank = np.empty(len(texts), dtype=np.int64)
    rank[sorted(range(len(texts)), key=texts.__getitem__)] = np.arange(len(texts))
    row_rank = rank[codes]
    order = np.lexsort((np.arange(n), row_rank, window_starts))
    if n > 1:
        w, r = window_starts[order], row_rank[order]
        last = np.ones(n, dtype=np.bool_)
        last[:-1] = (w[1:] != w[:-1]) | (r[1:] != r[:-1])
        order = order[last]
    return order.astype(np.intp)
