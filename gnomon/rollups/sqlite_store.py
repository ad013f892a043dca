"""Embedded RollupStore adapter: one SQLite file (default `<data_dir>/rollups.sqlite3`), see `sqlite_db`.

Storage: one row of table `rollup_packs` per window (merchant, cube, grain, version, window_start) holding all of
that window's rollup rows as columns (`gnomon.rollups.sqlite_packs`), ordered by encoded dims. A window without
rows has no pack, so `windows()` and `window_stamps()` read the packs' key and summary columns only.

Writes: `write` / `write_columns` overwrite rows by key: for each window they touch, the window's pack is read,
overwritten row by row and stored again, all in ONE SQLite transaction (BEGIN IMMEDIATE: no other writer, in
this process or another, runs between the read and the store, so this is not a read-modify-write race).
`replace_window` / `replace_window_columns` store the window's new pack (or delete it) in one transaction.
Readers see the old or the new window, never a mix. Reads filtered by dims fetch every pack of the range and keep
the wanted rows (a search of the pack's dims lines, `sqlite_packs.wanted_lines`); sketch columns not asked for are
not read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gnomon.rollups.columns import RollupColumns
from gnomon.rollups.dims import CodedDims, decode_dims, encode_dims, folded_dims
from gnomon.rollups.errors import RollupInvalid, RollupUnavailable
from gnomon.rollups.model import (
    ALL_SKETCHES,
    INT64_MAX,
    INT64_MIN,
    MAX_CUBE_CHARS,
    METRIC_FIELDS,
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
    require_window_start,
    restore_row,
    truncate_ms,
)
from gnomon.rollups.sqlite_db import bump_data_versions, ceil_s, from_ms, from_s, open_db, to_ms, to_s
from gnomon.rollups.sqlite_packs import (
    N_COUNTERS,
    PACK_COLUMNS,
    STORE_PACK,
    Pack,
    RowValues,
    packs_of_sorted,
    sketches_at,
    sort_rows,
    unpack,
    wanted_lines,
)

__all__ = ["ROLLUPS_FILE_NAME", "RollupColumns", "SqliteRollupStore"]

ROLLUPS_FILE_NAME = "rollups.sqlite3"

# Statements are assembled from the constant column lists here only (never from input): S608 does not apply.
_SCOPE = "merchant_id = ? AND cube = ? AND grain = ? AND version = ?"
_RANGE = f"{_SCOPE} AND window_start >= ? AND window_start < ?"
_LOAD = f"SELECT {PACK_COLUMNS} FROM rollup_packs WHERE {_SCOPE} AND window_start = ?"  # noqa: S608
_DELETE = f"DELETE FROM rollup_packs WHERE {_SCOPE} AND window_start = ?"  # noqa: S608
_WINDOWS = f"SELECT window_start FROM rollup_packs WHERE {_RANGE} ORDER BY window_start"  # noqa: S608
_STAMPS = (
    "SELECT window_start, n, provisional, computed_min_ms, computed_max_ms"  # noqa: S608
    f" FROM rollup_packs WHERE {_RANGE} ORDER BY window_start"
)
_DATA_VERSION = "SELECT data_version FROM rollup_data_versions WHERE merchant_id = ?"


def _read_sql(sketches: frozenset[str]) -> str:
    """window_start then `PACK_COLUMNS`, a sketch column not in `sketches` selected as NULL (not read)."""
    users = "users" if "users" in sketches else "NULL"
    new_users = "new_users" if "new_users" in sketches else "NULL"
    return (
        "SELECT window_start, n, provisional, computed_min_ms, computed_max_ms, dims, counters, flags,"  # noqa: S608
        f" computed_at, users_ends, {users}, new_users_ends, {new_users}"
        f" FROM rollup_packs WHERE {_RANGE} ORDER BY window_start"
    )


_READ = {chosen: _read_sql(chosen) for chosen in SKETCH_SELECTIONS}

Window = tuple[str, str, str, int, int]  # (merchant_id, cube, grain, version, window_start seconds)


_MIN_S, _MAX_S = to_s(datetime.min.replace(tzinfo=UTC)), to_s(datetime.max.replace(tzinfo=UTC, microsecond=0))


def _int_column(values: Any, name: str, n: int, low: int, high: int) -> npt.NDArray[np.int64]:
    """`values` (an integer array of length n, within [low, high]) as int64; else RollupInvalid."""
    arr = np.asarray(values)
    if arr.shape != (n,) or not (np.issubdtype(arr.dtype, np.integer) or n == 0):
        raise RollupInvalid(f"{name} must be {n} integers, got {arr.dtype} of shape {arr.shape}")
    if n and (int(arr.min()) < low or int(arr.max()) > high):
        raise RollupInvalid(f"{name} must lie in [{low}, {high}]")
    return arr.astype(np.int64)


def _column_packs(block: RollupColumns) -> list[tuple[Window, Pack]]:
    """The packs of a column block's rows (last occurrence of a (window, dims) wins); raises RollupInvalid when
    it is malformed. Validates in bulk what `Metrics` / `RollupKey` validate per row, with the same bounds."""
    if type(block) is not RollupColumns:
        raise RollupInvalid(f"blocks must be RollupColumns, got {type(block).__name__}")
    merchant = require_name(block.merchant_id, "merchant_id")
    cube = require_name(block.cube, "cube", MAX_CUBE_CHARS)
    grain = require_grain(block.grain).value
    version = require_version(block.version)
    at_ms = to_ms(truncate_ms(require_utc(block.computed_at, "computed_at")))
    n = len(block.dims)
    starts = _int_column(block.window_start_s, "window_start_s", n, _MIN_S, _MAX_S)
    if len(block.counters) != N_COUNTERS:
        raise RollupInvalid(f"counters must hold {N_COUNTERS} columns, got {len(block.counters)}")
    counters = [
        _int_column(c, name, n, INT64_MIN, INT64_MAX) for c, name in zip(block.counters, METRIC_FIELDS, strict=False)
    ]
    users, new_users = list(block.users), list(block.new_users)
    if len(users) != n or len(new_users) != n or not {*map(type, users), *map(type, new_users)} <= {bytes}:
        raise RollupInvalid(f"users and new_users must be {n} serialized sketches (bytes) each")
    provisional = np.asarray(block.provisional)
    if provisional.shape != (n,) or provisional.dtype != np.bool_:
        raise RollupInvalid(f"provisional must be {n} bools")
    codes, texts = _coded_dims(block.dims, n)
    if n == 0:
        return []
    order = sort_rows(starts, codes, texts)
    picked = order.tolist()
    packs = packs_of_sorted(
        starts[order],
        np.asarray(texts, dtype=object)[codes[order]].tolist(),
        np.column_stack(counters)[order],
        provisional[order].astype(np.uint8),
        np.full(order.size, at_ms, dtype=np.int64),
        [users[i] for i in picked],
        [new_users[i] for i in picked],
    )
    return [((merchant, cube, grain, version, start), pack) for start, pack in packs]


def _coded_dims(dims: Sequence[tuple[str, ...]], n: int) -> tuple[npt.NDArray[np.int64], list[str]]:
    """(code per row, distinct encoded dims) of a block's dims (a `CodedDims` is used as coded, without touching a
    tuple per row); raises RollupInvalid unless every row's dims is a tuple of strings."""
    if isinstance(dims, CodedDims):
        codes = np.asarray(dims.codes)
        if codes.shape != (n,) or not (np.issubdtype(codes.dtype, np.integer) or n == 0):
            raise RollupInvalid(f"dims codes must be {n} integers")
        if n and (int(codes.min()) < 0 or int(codes.max()) >= len(dims.values)):
            raise RollupInvalid("dims codes must index dims values")
        values = dims.values
    else:
        try:
            index = {d: i for i, d in enumerate(dict.fromkeys(dims))}
        except TypeError:  # an unhashable value: not a str
            raise RollupInvalid("dims must be tuples of strings") from None
        codes = np.fromiter(map(index.__getitem__, dims), dtype=np.int64, count=n)
        values = list(index)
    for value in values:
        if type(value) is not tuple:
            raise RollupInvalid(f"dims must be tuples of strings, got {type(value).__name__}")
    encoded = [encode_dims(value) for value in values]
    distinct = {text: i for i, text in enumerate(dict.fromkeys(encoded))}  # CodedDims values may repeat a tuple
    if len(distinct) < len(encoded):
        codes = np.asarray([distinct[text] for text in encoded], dtype=np.int64)[codes]
    return codes.astype(np.int64, copy=False), list(distinct)


def _row_values(row: RollupRow) -> tuple[Window, str, RowValues]:
    """(window, encoded dims, values) of one row; raises RollupInvalid when `row` is not a RollupRow."""
    if type(row) is not RollupRow:
        raise RollupInvalid(f"rows must be RollupRow, got {type(row).__name__}")
    k = row.key
    m = row.metrics
    counters = (
        m.events, m.pageviews, m.sessions, m.engaged_sessions, m.bounces, m.session_duration_ms, m.revenue_micros,
        m.key_events,
    )  # fmt: skip
    window = (k.merchant_id, k.cube, k.grain.value, k.version, to_s(k.window_start))
    values = (counters, m.users, m.new_users, 1 if row.provisional else 0, to_ms(row.computed_at))
    return window, encode_dims(k.dims), values


def _row_packs(rows: Sequence[RollupRow]) -> list[tuple[Window, Pack]]:
    """The packs of `rows` by window (the last occurrence of a key wins)."""
    by_window: dict[Window, dict[str, RowValues]] = {}
    for row in rows:
        window, dims, values = _row_values(row)
        by_window.setdefault(window, {})[dims] = values
    return [(window, Pack.of_rows(values)) for window, values in by_window.items()]


def _store(conn: sqlite3.Connection, packs: Sequence[tuple[Window, Pack]], *, merge: bool) -> None:
    """Store `packs`; `merge`: rows of a window's stored pack that a new pack does not hold stay."""
    params: list[tuple[Any, ...]] = []
    for window, new in packs:
        found = conn.execute(_LOAD, window).fetchone() if merge else None
        pack = new if found is None else unpack(found).merged(new)
        params.append((*window, *pack.values()))
    conn.executemany(STORE_PACK, params)


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
        packs = _row_packs(rows)
        with self._errors(), self._db.transaction() as conn:
            _store(conn, packs, merge=True)
            bump_data_versions(conn, {window[0] for window, _ in packs})

    def write_columns(self, blocks: Sequence[RollupColumns]) -> None:
        """`write` of the rows held by column `blocks` (SQLite adapter only; same semantics: overwrite by key, last
        occurrence wins, one transaction, data versions advanced), without materializing a `RollupRow` per row.
        Raises RollupInvalid for a malformed block (nothing is written), RollupUnavailable as `write`."""
        packs = [p for block in blocks for p in _column_packs(block)]  # validates every block before writing any
        if not packs:
            return
        merged: dict[Window, Pack] = {}
        for window, pack in packs:  # blocks may share windows: later blocks overwrite earlier ones
            merged[window] = merged[window].merged(pack) if window in merged else pack
        with self._errors(), self._db.transaction() as conn:
            _store(conn, list(merged.items()), merge=True)
            bump_data_versions(conn, {window[0] for window in merged})

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
        packs = _row_packs(rows)
        window = (merchant_id, cube, grain.value, version, to_s(window_start))
        with self._errors(), self._db.transaction() as conn:
            conn.execute(_DELETE, window)
            _store(conn, packs, merge=False)
            bump_data_versions(conn, [merchant_id])

    def replace_window_columns(self, window_start: datetime, block: RollupColumns) -> None:
        packs = _column_packs(block)
        window = (
            block.merchant_id, block.cube, require_grain(block.grain).value, block.version,
            to_s(require_window_start(window_start)),
        )  # fmt: skip
        if any(key != window for key, _ in packs):
            raise RollupInvalid(f"every row of the block must lie in the window starting {window_start.isoformat()}")
        with self._errors(), self._db.transaction() as conn:
            conn.execute(_DELETE, window)
            _store(conn, packs, merge=False)
            bump_data_versions(conn, [block.merchant_id])

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
        *,
        fold_case: bool = False,
    ) -> list[RollupRow]:
        grain = require_grain(grain)
        chosen = require_sketches(sketches)
        scope = _range_params(merchant_id, cube, grain, start, end, version)
        wanted = None if dims is None else sorted({encode_dims(folded_dims(d) if fold_case else d) for d in dims})
        if scope is None or wanted == []:
            return []
        make = _row_maker(merchant_id, cube, grain, version, fold_case=fold_case)
        out: list[RollupRow] = []
        with self._errors():
            for found in self._db.reader().execute(_READ[chosen], scope):
                out.extend(make(found, wanted))
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
) -> tuple[Any, ...] | None:
    """The `_RANGE` parameters, or None when the range is empty."""
    require_name(merchant_id, "merchant_id")
    require_name(cube, "cube")
    require_version(version)
    lo = ceil_s(require_utc(start, "start"))
    hi = ceil_s(require_utc(end, "end"))
    if lo >= hi:
        return None
    return (merchant_id, cube, grain.value, version, lo, hi)


def _row_maker(
    merchant_id: str, cube: str, grain: Grain, version: int, *, fold_case: bool = False
) -> Callable[[Sequence[Any], Sequence[str] | None], list[RollupRow]]:
    """RollupRows of a `_READ` result row (one window's pack): every row, or those whose encoded dims are in
    `wanted` (sorted; lower-cased with `fold_case`, see `wanted_lines`); decodes each distinct dims string once
    per read and slices only the chosen sketches."""
    decoded: dict[str, tuple[str, ...]] = {}
    times: dict[int, datetime] = {}

    def make(found: Sequence[Any], wanted: Sequence[str] | None) -> list[RollupRow]:
        n, window_dims = found[1], found[5]
        if wanted is None:
            picked, texts = np.arange(n), window_dims.split("\n")
        else:  # only the wanted lines: no split of the whole column
            lines = wanted_lines(window_dims, wanted, fold_case=fold_case)
            if not lines:
                return []
            picked, texts = np.fromiter((i for i, _ in lines), dtype=np.intp, count=len(lines)), [t for _, t in lines]
        window_start = from_s(found[0])
        counters = np.frombuffer(found[6], dtype="<i8").reshape(n, N_COUNTERS)[picked].tolist()
        flags = np.frombuffer(found[7], dtype=np.uint8)[picked].tolist()
        computed = np.frombuffer(found[8], dtype="<i8")[picked].tolist()
        users = sketches_at(found[9], found[10], picked)
        new_users = sketches_at(found[11], found[12], picked)
        out = []
        for j, text in enumerate(texts):
            dims = decoded.get(text)
            if dims is None:
                dims = decoded[text] = decode_dims(text)
            at = times.get(computed[j])
            if at is None:
                at = times[computed[j]] = from_ms(computed[j])
            metrics = (*counters[j], users[j], new_users[j])
            out.append(restore_row(merchant_id, cube, grain, window_start, dims, version, metrics, flags[j] == 1, at))
        return out

    return make
