"""Embedded RollupStore adapter: one SQLite file (default `<data_dir>/rollups.sqlite3`), see `sqlite_db`.

Table `rollups` is WITHOUT ROWID with primary key (merchant_id, cube, grain, version, window_start, dims), so a
range read is one ordered primary-key range. `rollup_windows` lists the windows that have rows (one tiny row
per window, like the CQL adapter's): `windows()` reads it, and reads filtered by dims become primary-key
seeks `window_start IN (...) AND dims IN (...)` instead of a scan of every dimension value of the range.

A `write` is one `executemany` of `INSERT OR REPLACE` plus the window rows, in one transaction;
`replace_window` deletes and re-inserts the window in one transaction (readers see the old or the new window,
never a mix).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gnomon.rollups.dims import decode_dims, encode_dims
from gnomon.rollups.errors import RollupInvalid, RollupUnavailable
from gnomon.rollups.model import (
    ALL_SKETCHES,
    INT64_MAX,
    INT64_MIN,
    MAX_CUBE_CHARS,
    METRIC_FIELDS,
    SKETCH_COLUMNS,
    SKETCH_SELECTIONS,
    Grain,
    RollupRow,
    WindowStamp,
    check_window_rows,
    require_grain,
    require_name,
    require_sketches,
    require_utc,
    require_version,
    restore_row,
    truncate_ms,
)
from gnomon.rollups.sqlite_db import bump_data_versions, ceil_s, from_ms, from_s, open_db, to_ms, to_s

ROLLUPS_FILE_NAME = "rollups.sqlite3"
MAX_DIMS_PER_QUERY = 500  # bound parameters per statement stay far below SQLite's limit (32766)
MAX_WINDOWS_PER_QUERY = 1000

# Statements are assembled from the constant column lists here only (never from input): S608 does not apply.
_COLUMNS = (
    "merchant_id, cube, grain, version, window_start, dims, events, pageviews, sessions, engaged_sessions,"
    " bounces, session_duration_ms, revenue_micros, key_events, users, new_users, provisional, computed_at_ms"
)
_UPSERT = f"INSERT OR REPLACE INTO rollups ({_COLUMNS}) VALUES ({', '.join('?' * 18)})"  # noqa: S608
_UPSERT_WINDOW = (
    "INSERT OR IGNORE INTO rollup_windows (merchant_id, cube, grain, version, window_start) VALUES (?, ?, ?, ?, ?)"
)
_SCOPE = "merchant_id = ? AND cube = ? AND grain = ? AND version = ?"
_RANGE = f"{_SCOPE} AND window_start >= ? AND window_start < ?"


def _read_columns(sketches: frozenset[str]) -> str:
    """The selected columns; a sketch column not in `sketches` is selected as an empty blob (not read)."""
    blobs = ", ".join(c if c in sketches else f"X'' AS {c}" for c in SKETCH_COLUMNS)
    return (
        "window_start, dims, events, pageviews, sessions, engaged_sessions, bounces, session_duration_ms,"
        f" revenue_micros, key_events, {blobs}, provisional, computed_at_ms"
    )


_READ_COLUMNS = {chosen: _read_columns(chosen) for chosen in SKETCH_SELECTIONS}
_READ = {
    chosen: f"SELECT {columns} FROM rollups WHERE {_RANGE} ORDER BY window_start, dims"  # noqa: S608
    for chosen, columns in _READ_COLUMNS.items()
}
_WINDOWS = f"SELECT window_start FROM rollup_windows WHERE {_RANGE} ORDER BY window_start"  # noqa: S608
_STAMPS = (
    "SELECT window_start, COUNT(*), MAX(provisional), MIN(computed_at_ms), MAX(computed_at_ms)"  # noqa: S608
    f" FROM rollups WHERE {_RANGE} GROUP BY window_start ORDER BY window_start"
)
_DELETE_WINDOW_ROWS = f"DELETE FROM rollups WHERE {_SCOPE} AND window_start = ?"  # noqa: S608
_DELETE_WINDOW = f"DELETE FROM rollup_windows WHERE {_SCOPE} AND window_start = ?"  # noqa: S608
_DATA_VERSION = "SELECT data_version FROM rollup_data_versions WHERE merchant_id = ?"

Params = tuple[Any, ...]


def row_params(row: RollupRow) -> Params:
    """The `_UPSERT` parameters of one row; raises RollupInvalid when `row` is not a RollupRow."""
    if type(row) is not RollupRow:
        raise RollupInvalid(f"rows must be RollupRow, got {type(row).__name__}")
    k = row.key
    m = row.metrics
    return (
        k.merchant_id,
        k.cube,
        k.grain.value,
        k.version,
        to_s(k.window_start),
        encode_dims(k.dims),
        m.events,
        m.pageviews,
        m.sessions,
        m.engaged_sessions,
        m.bounces,
        m.session_duration_ms,
        m.revenue_micros,
        m.key_events,
        m.users,
        m.new_users,
        1 if row.provisional else 0,
        to_ms(row.computed_at),
    )


def _upsert(conn: sqlite3.Connection, params: list[Params]) -> None:
    conn.executemany(_UPSERT, params)
    conn.executemany(_UPSERT_WINDOW, sorted({p[:5] for p in params}))


@dataclass(frozen=True)
class RollupColumns:
    """Rows of one (merchant, cube, grain, version) as columns, for `SqliteRollupStore.write_columns`: row i has
    window start `window_start_s[i]` (Unix seconds), `dims[i]`, counter `counters[j][i]` for the j-th counter
    of `model.METRIC_FIELDS` (events .. key_events), sketches `users[i]` / `new_users[i]` and `provisional[i]`;
    every row is stamped `computed_at`."""

    merchant_id: str
    cube: str
    grain: Grain
    version: int
    window_start_s: npt.NDArray[np.int64]
    dims: Sequence[tuple[str, ...]]
    counters: tuple[npt.NDArray[np.int64], ...]
    users: Sequence[bytes]
    new_users: Sequence[bytes]
    provisional: npt.NDArray[np.bool_]
    computed_at: datetime

    def __len__(self) -> int:
        return len(self.dims)


_N_COUNTERS = len(METRIC_FIELDS) - 2  # the fields before users, new_users
_MIN_S, _MAX_S = to_s(datetime.min.replace(tzinfo=UTC)), to_s(datetime.max.replace(tzinfo=UTC, microsecond=0))


def _int_column(values: Any, name: str, n: int, low: int, high: int) -> list[int]:
    """`values` (an integer array of length n, within [low, high]) as Python ints; else RollupInvalid."""
    arr = np.asarray(values)
    if arr.shape != (n,) or not (np.issubdtype(arr.dtype, np.integer) or n == 0):
        raise RollupInvalid(f"{name} must be {n} integers, got {arr.dtype} of shape {arr.shape}")
    if n and (int(arr.min()) < low or int(arr.max()) > high):
        raise RollupInvalid(f"{name} must lie in [{low}, {high}]")
    out: list[int] = arr.astype(np.int64).tolist()
    return out


def _column_params(block: RollupColumns) -> tuple[Iterator[Params], list[Params], int]:
    """(`_UPSERT` parameters (lazy: every column is validated, executemany builds one tuple at a time),
    `_UPSERT_WINDOW` parameters, row count) of a column block; raises RollupInvalid when it is malformed.
    Validates in bulk what `Metrics` / `RollupKey` validate per row, with the same bounds."""
    if type(block) is not RollupColumns:
        raise RollupInvalid(f"blocks must be RollupColumns, got {type(block).__name__}")
    merchant = require_name(block.merchant_id, "merchant_id")
    cube = require_name(block.cube, "cube", MAX_CUBE_CHARS)
    grain = require_grain(block.grain).value
    version = require_version(block.version)
    at_ms = to_ms(truncate_ms(require_utc(block.computed_at, "computed_at")))
    n = len(block.dims)
    starts = _int_column(block.window_start_s, "window_start_s", n, _MIN_S, _MAX_S)
    if len(block.counters) != _N_COUNTERS:
        raise RollupInvalid(f"counters must hold {_N_COUNTERS} columns, got {len(block.counters)}")
    counters = [
        _int_column(c, name, n, INT64_MIN, INT64_MAX) for c, name in zip(block.counters, METRIC_FIELDS, strict=False)
    ]
    users, new_users = list(block.users), list(block.new_users)
    if len(users) != n or len(new_users) != n or not {*map(type, users), *map(type, new_users)} <= {bytes}:
        raise RollupInvalid(f"users and new_users must be {n} serialized sketches (bytes) each")
    provisional = np.asarray(block.provisional)
    if provisional.shape != (n,) or provisional.dtype != np.bool_:
        raise RollupInvalid(f"provisional must be {n} bools")
    cache: dict[tuple[str, ...], str] = {}
    encoded = []
    for dims in block.dims:
        if type(dims) is not tuple:
            raise RollupInvalid(f"dims must be tuples of strings, got {type(dims).__name__}")
        try:
            text = cache.get(dims)
        except TypeError:  # an unhashable value: not a str
            raise RollupInvalid(f"dimension values must be strings, got {dims!r}") from None
        if text is None:
            text = cache[dims] = encode_dims(dims)
        encoded.append(text)
    params = zip(
        repeat(merchant, n),
        repeat(cube, n),
        repeat(grain, n),
        repeat(version, n),
        starts,
        encoded,
        *counters,
        users,
        new_users,
        provisional.astype(np.int64).tolist(),
        repeat(at_ms, n),
        strict=True,
    )
    windows = [(merchant, cube, grain, version, s) for s in sorted(set(starts))]
    return params, windows, n


class SqliteRollupStore:
    """RollupStore over one SQLite file. Thread-safe; every call blocks (writes until committed)."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self._db = open_db(path, synchronous=synchronous)

    @property
    def path(self) -> Path:
        return self._db.path

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise RollupUnavailable(f"rollup store {self._db.path}: {exc}") from exc

    def write(self, rows: Sequence[RollupRow]) -> None:
        if not rows:
            return
        params = [row_params(row) for row in rows]
        with self._errors(), self._db.transaction() as conn:
            _upsert(conn, params)
            bump_data_versions(conn, {p[0] for p in params})

    def write_columns(self, blocks: Sequence[RollupColumns]) -> None:
        """`write` of the rows held by column `blocks` (SQLite adapter only; same semantics: overwrite by key, last
        occurrence wins, one transaction, data versions advanced), without materializing a `RollupRow` per row.
        Raises RollupInvalid for a malformed block (nothing is written), RollupUnavailable as `write`."""
        prepared = [_column_params(block) for block in blocks]  # validates every block before writing any
        if not any(n for _, _, n in prepared):
            return
        with self._errors(), self._db.transaction() as conn:
            for params, windows, n in prepared:
                if n:
                    conn.executemany(_UPSERT, params)
                    conn.executemany(_UPSERT_WINDOW, windows)
            bump_data_versions(conn, {block.merchant_id for block in blocks if len(block)})

    def replace_window(
        self,
        merchant_id: str,
        cube: str,
        grain: Grain,
        window_start: datetime,
        version: int,
        rows: Sequence[RollupRow],
    ) -> None:
        grain, window_start = check_window_rows(merchant_id, cube, grain, window_start, version, rows)
        params = [row_params(row) for row in rows]
        window = (merchant_id, cube, grain.value, version, to_s(window_start))
        with self._errors(), self._db.transaction() as conn:
            conn.execute(_DELETE_WINDOW_ROWS, window)
            conn.execute(_DELETE_WINDOW, window)
            _upsert(conn, params)
            bump_data_versions(conn, [merchant_id])

    def read(
        self,
        merchant_id: str,
        cube: str,
        grain: Grain,
        start: datetime,
        end: datetime,
        version: int,
        dims: Sequence[tuple[str, ...]] | None = None,
        sketches: Collection[str] = ALL_SKETCHES,
    ) -> list[RollupRow]:
        grain = require_grain(grain)
        chosen = require_sketches(sketches)
        scope = _range_params(merchant_id, cube, grain, start, end, version)
        if scope is None:
            return []
        make = _row_maker(merchant_id, cube, grain, version)
        with self._errors():
            conn = self._db.reader()
            if dims is None:
                return [make(r) for r in conn.execute(_READ[chosen], scope)]
            wanted = sorted({encode_dims(d) for d in dims})
            starts = [r[0] for r in conn.execute(_WINDOWS, scope)] if wanted else []
            out: list[RollupRow] = []
            for i in range(0, len(starts), MAX_WINDOWS_PER_QUERY):
                some_starts = starts[i : i + MAX_WINDOWS_PER_QUERY]
                for j in range(0, len(wanted), MAX_DIMS_PER_QUERY):
                    some_dims = wanted[j : j + MAX_DIMS_PER_QUERY]
                    sql = (
                        f"SELECT {_READ_COLUMNS[chosen]} FROM rollups WHERE {_SCOPE}"  # noqa: S608
                        f" AND window_start IN ({', '.join('?' * len(some_starts))})"
                        f" AND dims IN ({', '.join('?' * len(some_dims))})"
                    )
                    out.extend(make(r) for r in conn.execute(sql, (*scope[:4], *some_starts, *some_dims)))
        out.sort(key=lambda r: (r.key.window_start, encode_dims(r.key.dims)))
        return out

    def windows(
        self, merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
    ) -> list[datetime]:
        scope = _range_params(merchant_id, cube, require_grain(grain), start, end, version)
        if scope is None:
            return []
        with self._errors():
            return [from_s(r[0]) for r in self._db.reader().execute(_WINDOWS, scope)]

    def window_stamps(
        self, merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
    ) -> list[WindowStamp]:
        scope = _range_params(merchant_id, cube, require_grain(grain), start, end, version)
        if scope is None:
            return []
        with self._errors():
            found = self._db.reader().execute(_STAMPS, scope).fetchall()
        return [
            WindowStamp(from_s(ws), (n, lo) if provisional == 0 and lo == hi else None)
            for ws, n, provisional, lo, hi in found
        ]

    def data_version(self, merchant_id: str) -> int:
        require_name(merchant_id, "merchant_id")
        with self._errors():
            found = self._db.reader().execute(_DATA_VERSION, (merchant_id,)).fetchone()
        return int(found[0]) if found else 0

    def close(self) -> None:
        self._db.close()


def _range_params(
    merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
) -> Params | None:
    """The `_RANGE` parameters, or None when the range is empty."""
    require_name(merchant_id, "merchant_id")
    require_name(cube, "cube")
    require_version(version)
    lo = ceil_s(require_utc(start, "start"))
    hi = ceil_s(require_utc(end, "end"))
    if lo >= hi:
        return None
    return (merchant_id, cube, grain.value, version, lo, hi)


def _row_maker(merchant_id: str, cube: str, grain: Grain, version: int) -> Callable[[Sequence[Any]], RollupRow]:
    """Build RollupRows from `_read_columns` tuples of one scope, decoding each distinct dims string once."""
    decoded: dict[str, tuple[str, ...]] = {}

    def make(r: Sequence[Any]) -> RollupRow:
        dims = decoded.get(r[1])
        if dims is None:
            dims = decoded[r[1]] = decode_dims(r[1])
        return restore_row(merchant_id, cube, grain, from_s(r[0]), dims, version, r[2:12], r[12] == 1, from_ms(r[13]))

    return make
