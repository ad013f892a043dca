"""The embedded rollup store's window packs (`gnomon.rollups.sqlite_packs`) and the upgrade of schema-1 files.

Property tests build random rows (tricky dims included: newlines, quotes, unicode, "(other)", empty strings) and
check that the column path (`sort_rows` + `packs_of_sorted`, used by `write_columns`) and the row path
(`Pack.of_rows`, used by `write` / `replace_window`) give the same packs, that a pack survives its stored
values, and that `positions` finds exactly the wanted rows, with few and with many wanted dims.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gnomon.rollups import Grain, Metrics, RollupKey, RollupRow, sketch_of
from gnomon.rollups.dims import encode_dims
from gnomon.rollups.sqlite_packs import N_COUNTERS, Pack, RowValues, packs_of_sorted, sort_rows, unpack, wanted_lines
from gnomon.rollups.sqlite_store import SqliteRollupStore

DIM_VALUES = st.sampled_from(["", "/", "/a", "/a\nb", 'q"uote', "back\\slash", "ü", "(other)", "(not set)", "z" * 40])
DIMS = st.lists(DIM_VALUES, min_size=1, max_size=2).map(tuple)
ROW = st.tuples(
    st.integers(0, 3),  # window
    DIMS,
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=N_COUNTERS, max_size=N_COUNTERS).map(tuple),
    st.binary(max_size=40),
    st.binary(max_size=5),
    st.integers(0, 1),
)


def _values(counters: tuple[int, ...], users: bytes, new_users: bytes, flag: int) -> RowValues:
    return (counters, users, new_users, flag, 1_700_000_000_000)


@settings(max_examples=150, deadline=None)
@given(st.lists(ROW, max_size=40))
def test_column_packs_equal_row_packs_and_survive_storage(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    expected: dict[int, dict[str, RowValues]] = {}
    for window, dims, counters, users, new_users, flag in rows:  # the last occurrence wins
        expected.setdefault(window, {})[encode_dims(dims)] = _values(counters, users, new_users, flag)

    texts = list(dict.fromkeys(encode_dims(r[1]) for r in rows))
    codes = np.asarray([texts.index(encode_dims(r[1])) for r in rows], dtype=np.int64)
    starts = np.asarray([r[0] for r in rows], dtype=np.int64)
    order = sort_rows(starts, codes, texts)
    picked = order.tolist()
    packs = packs_of_sorted(
        starts[order],
        [texts[c] for c in codes[order].tolist()],
        np.asarray([rows[i][2] for i in picked], dtype=np.int64).reshape(len(picked), N_COUNTERS),
        np.asarray([rows[i][5] for i in picked], dtype=np.uint8),
        np.full(len(picked), 1_700_000_000_000, dtype=np.int64),
        [rows[i][3] for i in picked],
        [rows[i][4] for i in picked],
    )
    assert [w for w, _ in packs] == sorted(expected)
    for window, pack in packs:
        by_rows = Pack.of_rows(expected[window])
        assert list(pack.dims) == sorted(expected[window])
        assert pack.rows() == by_rows.rows() == expected[window]
        assert unpack(pack.values()).rows() == expected[window]
        assert pack.values() == by_rows.values()


@settings(max_examples=150, deadline=None)
@given(st.lists(DIMS, min_size=1, max_size=30, unique=True), st.lists(DIMS, max_size=40))
def test_wanted_lines_finds_exactly_those(stored: list[tuple[str, ...]], wanted: list[tuple[str, ...]]) -> None:
    lines = sorted(encode_dims(d) for d in stored)
    asked = sorted({encode_dims(d) for d in wanted})
    expected = [(i, line) for i, line in enumerate(lines) if line in asked]
    assert wanted_lines("\n".join(lines), asked) == expected


def test_merged_overwrites_by_dims_and_keeps_the_rest() -> None:
    old = Pack.of_rows({'["a"]': _values((1,) * 8, b"u", b"", 0), '["b"]': _values((2,) * 8, b"v", b"", 1)})
    new = Pack.of_rows({'["b"]': _values((3,) * 8, b"w", b"n", 0), '["c"]': _values((4,) * 8, b"", b"", 0)})
    merged = old.merged(new).rows()
    assert list(merged) == ['["a"]', '["b"]', '["c"]']
    assert merged['["b"]'] == _values((3,) * 8, b"w", b"n", 0)
    assert merged['["a"]'] == _values((1,) * 8, b"u", b"", 0)


# -- schema 1 (one SQLite row per rollup row) is upgraded to packs when opened --------------------------------------

SCHEMA_1 = """
CREATE TABLE rollups (
    merchant_id TEXT NOT NULL, cube TEXT NOT NULL, grain TEXT NOT NULL, version INTEGER NOT NULL,
    window_start INTEGER NOT NULL, dims TEXT NOT NULL, events INTEGER NOT NULL, pageviews INTEGER NOT NULL,
    sessions INTEGER NOT NULL, engaged_sessions INTEGER NOT NULL, bounces INTEGER NOT NULL,
    session_duration_ms INTEGER NOT NULL, revenue_micros INTEGER NOT NULL, key_events INTEGER NOT NULL,
    users BLOB NOT NULL, new_users BLOB NOT NULL, provisional INTEGER NOT NULL, computed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, cube, grain, version, window_start, dims)
) WITHOUT ROWID;
CREATE TABLE rollup_windows (
    merchant_id TEXT NOT NULL, cube TEXT NOT NULL, grain TEXT NOT NULL, version INTEGER NOT NULL,
    window_start INTEGER NOT NULL, PRIMARY KEY (merchant_id, cube, grain, version, window_start)
) WITHOUT ROWID;
CREATE TABLE rollup_data_versions (merchant_id TEXT PRIMARY KEY, data_version INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
"""
T0 = datetime(2026, 1, 30, 20, 0, tzinfo=UTC)
AT = datetime(2026, 2, 3, 12, 0, 0, 123000, tzinfo=UTC)


def _schema_1_file(path: Path, rows: list[RollupRow]) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_1)
    for r in rows:
        k, m = r.key, r.metrics
        counters = (m.events, m.pageviews, m.sessions, m.engaged_sessions, m.bounces, m.session_duration_ms,
                    m.revenue_micros, m.key_events)  # fmt: skip
        ws, ms = int(k.window_start.timestamp()), int(r.computed_at.timestamp() * 1000)
        conn.execute(
            "INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (k.merchant_id, k.cube, k.grain.value, k.version, ws, encode_dims(k.dims), *counters, m.users,
             m.new_users, int(r.provisional), ms),
        )  # fmt: skip
        conn.execute("INSERT OR IGNORE INTO rollup_windows VALUES (?, ?, ?, ?, ?)", (*_window(r), ws))
    conn.execute("INSERT INTO rollup_data_versions VALUES ('m1', 7)")
    conn.commit()
    conn.close()


def _window(r: RollupRow) -> tuple[str, str, str, int]:
    return (r.key.merchant_id, r.key.cube, r.key.grain.value, r.key.version)


def _row(window_start: datetime, dims: tuple[str, ...], events: int, *, cube: str = "page") -> RollupRow:
    metrics = Metrics(events, events, 1, 1, 0, 10_000, 5, 0, sketch_of([f"u{events}", "x"]), sketch_of([]))
    return RollupRow(RollupKey("m1", cube, Grain.HOUR, window_start, dims, 1), metrics, events % 2 == 0, AT)


def test_a_schema_1_file_is_upgraded_to_packs_with_every_row(tmp_path: Path) -> None:
    path = tmp_path / "rollups.sqlite3"
    rows = [_row(T0 + timedelta(hours=h), (f"/p{i}",), 10 * h + i) for h in range(3) for i in range(5)]
    rows += [_row(T0, (), 99, cube="total")]
    _schema_1_file(path, rows)

    store = SqliteRollupStore(path)
    try:
        end = T0 + timedelta(days=1)
        assert store.read("m1", "page", Grain.HOUR, T0, end, 1) == rows[:15]
        assert store.read("m1", "total", Grain.HOUR, T0, end, 1) == rows[15:]
        assert store.windows("m1", "page", Grain.HOUR, T0, end, 1) == [T0 + timedelta(hours=h) for h in range(3)]
        assert store.data_version("m1") == 7
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        conn.close()
    assert "rollups" not in tables and "rollup_windows" not in tables and "rollup_packs" in tables


def test_coded_dims_may_repeat_a_value_across_codes(tmp_path: Path) -> None:
    """The aggregator's "(other)" tuple can have two codes in one block (a capped window folds a real "(other)"
    value into its "(other)" row, an uncapped window keeps it): the store writes both as the same dims."""
    from gnomon.rollups.dims import CodedDims
    from gnomon.rollups.sqlite_store import RollupColumns

    hours = [T0, T0, T0 + timedelta(hours=1)]
    block = RollupColumns(
        merchant_id="m1",
        cube="page",
        grain=Grain.HOUR,
        version=1,
        window_start_s=np.asarray([int(h.timestamp()) for h in hours], dtype=np.int64),
        dims=CodedDims(np.asarray([0, 2, 1]), [("(other)",), ("(other)",), ("/a",)]),
        counters=tuple(np.asarray([1, 2, 3], dtype=np.int64) for _ in range(N_COUNTERS)),
        users=[b"", b"", b""],
        new_users=[b"", b"", b""],
        provisional=np.asarray([False, False, False]),
        computed_at=AT,
    )
    store = SqliteRollupStore(tmp_path / "rollups.sqlite3")
    try:
        store.write_columns([block])
        got = store.read("m1", "page", Grain.HOUR, T0, T0 + timedelta(hours=2), 1)
    finally:
        store.close()
    assert [(r.key.window_start, r.key.dims, r.metrics.events) for r in got] == [
        (T0, ("(other)",), 1),
        (T0, ("/a",), 2),
        (T0 + timedelta(hours=1), ("(other)",), 3),
    ]
