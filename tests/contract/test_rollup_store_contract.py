"""One contract suite for the RollupStore and VersionRegistry ports, run against SQLite and Scylla/Cassandra.

The CQL run uses one fresh keyspace per test session (dropped at the end); tests stay independent by using
their own random merchant ids. The throughput test prints rows/s (it asserts nothing about speed).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gnomon.rollups import (
    DEFAULT_VERSION,
    Grain,
    Metrics,
    RollupInvalid,
    RollupKey,
    RollupRow,
    RollupStore,
    VersionRegistry,
    VersionSpan,
    day_window,
    hour_window_start,
    merge_sketches,
    sketch_of,
)
from gnomon.rollups.cql_engine import CqlEngine
from gnomon.rollups.cql_store import CqlRollupStore
from gnomon.rollups.cql_versions import CqlVersionRegistry
from gnomon.rollups.sqlite_store import ROLLUPS_FILE_NAME, RollupColumns, SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from tests.conftest import RealEngines

H = Grain.HOUR
D = Grain.DAY
T0 = datetime(2026, 1, 30, 20, 0, tzinfo=UTC)
COMPUTED = datetime(2026, 2, 3, 12, 0, 0, 123000, tzinfo=UTC)


@dataclass
class Backend:
    name: str
    store: RollupStore
    registry: VersionRegistry


@pytest.fixture(scope="module")
def cql_engine(real_engines: RealEngines) -> Iterator[CqlEngine]:
    cql = replace(real_engines.settings.cql, replication_factor=1)
    engine = CqlEngine(cql, keyspace=f"gnomon_rollups_test_{uuid.uuid4().hex[:10]}")
    try:
        yield engine
    finally:
        engine.drop_keyspace()
        engine.close()


@pytest.fixture(params=["sqlite", pytest.param("cql", marks=pytest.mark.engines)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "cql":
        engine: CqlEngine = request.getfixturevalue("cql_engine")
        yield Backend("cql", CqlRollupStore(engine), CqlVersionRegistry(engine))
        return
    path = tmp_path / ROLLUPS_FILE_NAME
    store = SqliteRollupStore(path)
    registry = SqliteVersionRegistry(path)
    try:
        yield Backend("sqlite", store, registry)
    finally:
        registry.close()
        store.close()


@pytest.fixture
def store(backend: Backend) -> RollupStore:
    return backend.store


@pytest.fixture
def registry(backend: Backend) -> VersionRegistry:
    return backend.registry


def _mid() -> str:
    return "t" + uuid.uuid4().hex[:12]


def row(
    merchant: str,
    window_start: datetime,
    dims: Sequence[str] = (),
    *,
    cube: str = "total",
    grain: Grain = H,
    version: int = 1,
    events: int = 1,
    users: bytes | None = None,
    provisional: bool = False,
) -> RollupRow:
    metrics = Metrics(
        events=events,
        pageviews=events * 2,
        sessions=3,
        engaged_sessions=2,
        bounces=1,
        session_duration_ms=61_000,
        revenue_micros=-1_500_000,
        key_events=4,
        users=users if users is not None else sketch_of([f"u{events}"]),
        new_users=sketch_of([]),
    )
    return RollupRow(
        RollupKey(merchant, cube, grain, window_start, tuple(dims), version), metrics, provisional, COMPUTED
    )


def _order(rows: Sequence[RollupRow]) -> list[RollupRow]:
    """The contract's order: window_start, then the dims' storage encoding (code-point order of the JSON)."""
    from gnomon.rollups.dims import encode_dims

    return sorted(rows, key=lambda r: (r.key.window_start, encode_dims(r.key.dims)))


# -- round trip, sketches, overwrite ------------------------------------------------------------------------------


def test_write_read_round_trip_with_sketches(store: RollupStore) -> None:
    m = _mid()
    first = sketch_of(f"user-{i}" for i in range(3000))
    second = sketch_of(f"user-{i}" for i in range(2000, 5000))
    rows = [row(m, T0, users=first, events=7, provisional=True), row(m, T0 + timedelta(hours=1), users=second)]
    store.write(rows)
    got = store.read(m, "total", H, T0, T0 + timedelta(hours=2), 1)
    assert got == rows
    assert got[0].computed_at == COMPUTED and got[0].computed_at.tzinfo is UTC
    assert got[0].provisional is True and got[1].provisional is False
    merged = merge_sketches([r.metrics.users for r in got])
    assert abs(merged.estimate - 5000) <= 5000 * 0.05  # union, not 6000: users are never summed
    assert abs(merge_sketches([merged.sketch]).estimate - merged.estimate) < 1e-9


@pytest.mark.parametrize("pinned", [False, True], ids=["range", "dims"])
@pytest.mark.parametrize("sketches", [(), ("users",), ("new_users",), ("users", "new_users")])
def test_read_fetches_only_the_sketch_columns_asked_for(
    store: RollupStore, sketches: tuple[str, ...], pinned: bool
) -> None:
    m = _mid()
    rows = [
        replace(r, metrics=replace(r.metrics, new_users=sketch_of([f"new-{i}", "x"])))
        for i, r in enumerate([row(m, T0, ("/a",), cube="page"), row(m, T0 + timedelta(hours=1), ("/b",), cube="page")])
    ]
    store.write(rows)
    dims = [("/a",), ("/b",)] if pinned else None
    got = store.read(m, "page", H, T0, T0 + timedelta(hours=2), 1, dims, sketches)
    expected = [
        replace(
            r,
            metrics=replace(
                r.metrics,
                users=r.metrics.users if "users" in sketches else b"",
                new_users=r.metrics.new_users if "new_users" in sketches else b"",
            ),
        )
        for r in rows
    ]
    assert got == expected  # counters, flags and computed_at always; a sketch not asked for is b""
    with pytest.raises(RollupInvalid, match="unknown sketch column"):
        store.read(m, "page", H, T0, T0 + timedelta(hours=2), 1, dims, ["users", "sessions"])


def test_write_twice_is_idempotent_and_overwrite_replaces_values(store: RollupStore) -> None:
    m = _mid()
    rows = [row(m, T0, (f"/p{i}",), cube="page", events=i + 1) for i in range(5)]
    store.write(rows)
    store.write(rows)
    assert store.read(m, "page", H, T0, T0 + timedelta(hours=1), 1) == _order(rows)
    newer = [replace(r, metrics=replace(r.metrics, events=100 + i)) for i, r in enumerate(rows)]
    store.write(newer[:2])
    got = store.read(m, "page", H, T0, T0 + timedelta(hours=1), 1)
    assert [r.metrics.events for r in got] == [100, 101, 3, 4, 5]


def test_repeated_key_in_one_write_last_wins(store: RollupStore) -> None:
    m = _mid()
    store.write([row(m, T0, events=1), row(m, T0, events=2), row(m, T0, events=3)])
    got = store.read(m, "total", H, T0, T0 + timedelta(hours=1), 1)
    assert [r.metrics.events for r in got] == [3]


def test_empty_write_is_a_no_op(store: RollupStore) -> None:
    store.write([])


# -- replace_window -----------------------------------------------------------------------------------------------


def test_replace_window_drops_stale_dims_only_in_that_window(store: RollupStore) -> None:
    m = _mid()
    w1, w2 = T0, T0 + timedelta(hours=1)
    store.write([row(m, w, (d,), cube="page") for w in (w1, w2) for d in ("/a", "/b", "/c")])
    store.write([row(m, w1, ("DE",), cube="country")])
    store.write([row(m, w1, ("/a",), cube="page", version=2)])
    replacement = [row(m, w1, ("/a",), cube="page", events=9), row(m, w1, ("/d",), cube="page")]
    store.replace_window(m, "page", H, w1, 1, replacement)
    got = store.read(m, "page", H, w1, w2 + timedelta(hours=1), 1)
    assert [(r.key.window_start, r.key.dims) for r in got] == [
        (w1, ("/a",)),
        (w1, ("/d",)),
        (w2, ("/a",)),
        (w2, ("/b",)),
        (w2, ("/c",)),
    ]
    assert got[0].metrics.events == 9
    assert len(store.read(m, "country", H, w1, w2, 1)) == 1  # other cube untouched
    assert len(store.read(m, "page", H, w1, w2, 2)) == 1  # other version untouched


def test_replace_window_with_no_rows_empties_the_window(store: RollupStore) -> None:
    m = _mid()
    w1, w2 = T0, T0 + timedelta(hours=1)
    store.write([row(m, w, (d,), cube="page") for w in (w1, w2) for d in ("/a", "/b")])
    store.replace_window(m, "page", H, w1, 1, [])
    assert [r.key.window_start for r in store.read(m, "page", H, w1, w2 + timedelta(hours=1), 1)] == [w2, w2]
    assert store.windows(m, "page", H, w1, w2 + timedelta(hours=1), 1) == [w2]
    store.replace_window(m, "page", H, w1, 1, [row(m, w1, ("/z",), cube="page")])
    assert store.windows(m, "page", H, w1, w2 + timedelta(hours=1), 1) == [w1, w2]


def test_replace_window_rejects_rows_of_another_window(store: RollupStore) -> None:
    m = _mid()
    with pytest.raises(RollupInvalid, match="another window"):
        store.replace_window(m, "page", H, T0, 1, [row(m, T0 + timedelta(hours=1), ("/a",), cube="page")])
    with pytest.raises(RollupInvalid):
        store.replace_window(m, "page", H, T0, 1, [row(m, T0, ("/a",), cube="page", version=2)])
    assert store.read(m, "page", H, T0, T0 + timedelta(hours=2), 1) == []


def test_replace_window_columns_equals_replace_window_with_the_same_rows(store: RollupStore) -> None:
    import numpy as np

    from gnomon.rollups.dims import CodedDims

    m, n = _mid(), _mid()
    w1, w2 = T0, T0 + timedelta(hours=1)
    for merchant in (m, n):
        store.write([row(merchant, w, (d,), cube="page") for w in (w1, w2) for d in ("/a", "/b", "/c")])
    replacement = [
        row(m, w1, ("/a",), cube="page", events=9, provisional=True),
        row(m, w1, ("/d",), cube="page", users=sketch_of(f"u{j}" for j in range(700))),
    ]
    store.replace_window(m, "page", H, w1, 1, replacement)
    (block,) = _columns([row(n, r.key.window_start, r.key.dims, cube="page", events=r.metrics.events,
                             users=r.metrics.users, provisional=r.provisional) for r in replacement])  # fmt: skip
    store.replace_window_columns(w1, replace(block, dims=CodedDims(np.asarray([1, 0]), [("/d",), ("/a",)])))
    span = (w1, w2 + timedelta(hours=1), 1)
    assert [replace(r, key=replace(r.key, merchant_id=m)) for r in store.read(n, "page", H, *span)] == store.read(
        m, "page", H, *span
    )
    assert store.windows(n, "page", H, *span) == [w1, w2]
    store.replace_window_columns(w1, replace(block, window_start_s=block.window_start_s[:0], dims=[], users=[],
                                             new_users=[], counters=tuple(c[:0] for c in block.counters),
                                             provisional=block.provisional[:0]))  # fmt: skip
    assert store.windows(n, "page", H, *span) == [w2]


def test_replace_window_columns_rejects_rows_of_another_window(store: RollupStore) -> None:
    m = _mid()
    (block,) = _columns([row(m, T0, ("/a",), cube="page"), row(m, T0 + timedelta(hours=1), ("/b",), cube="page")])
    with pytest.raises(RollupInvalid):
        store.replace_window_columns(T0, block)
    with pytest.raises(RollupInvalid):
        store.replace_window_columns(T0, replace(block, merchant_id=""))
    assert store.read(m, "page", H, T0, T0 + timedelta(hours=2), 1) == []


# -- ranges, buckets, time zones ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cube", ["total", "page"])  # wide and narrow buckets
def test_hour_range_bounds_across_days_and_months(store: RollupStore, cube: str) -> None:
    m = _mid()
    starts = [T0 + timedelta(hours=h) for h in range(24 * 4)]  # 2026-01-30 20:00 .. 2026-02-03 19:00
    store.write([row(m, s, ("x",), cube=cube, events=i + 1) for i, s in enumerate(starts)])
    lo, hi = datetime(2026, 1, 31, 5, tzinfo=UTC), datetime(2026, 2, 2, 13, tzinfo=UTC)
    got = store.read(m, cube, H, lo, hi, 1)
    assert [r.key.window_start for r in got] == [s for s in starts if lo <= s < hi]
    assert got[0].key.window_start == lo  # start inclusive
    assert got[-1].key.window_start == hi - timedelta(hours=1)  # end exclusive
    assert store.windows(m, cube, H, lo, hi, 1) == [s for s in starts if lo <= s < hi]
    everything = store.read(m, cube, H, datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), 1)
    assert [r.metrics.events for r in everything] == list(range(1, len(starts) + 1))
    # bounds that are not whole seconds: start rounds up, end excludes a window starting after it
    almost = lo - timedelta(microseconds=1)
    assert store.read(m, cube, H, almost, lo + timedelta(microseconds=1), 1)[0].key.window_start == lo
    assert store.read(m, cube, H, lo + timedelta(microseconds=1), lo + timedelta(hours=1), 1) == []
    assert store.read(m, cube, H, hi, lo, 1) == [] and store.read(m, cube, H, lo, lo, 1) == []
    assert store.windows(m, cube, H, hi, lo, 1) == []


def test_window_stamps_list_the_windows_with_rows_and_tokens_that_change_with_them(store: RollupStore) -> None:
    m = _mid()
    later = COMPUTED + timedelta(seconds=5)
    hours = [T0 + timedelta(hours=h) for h in range(0, 30, 3)]  # across two days (two buckets of narrow cubes)
    for h in hours:  # the aggregator's way: whole windows, every row with the computation time
        store.replace_window(m, "page", H, h, 1, [row(m, h, (p,), cube="page") for p in ("/a", "/b")])
    store.write([row(m, hours[4], ("/x",), cube="page", version=2), row(_mid(), hours[4], ("/x",), cube="page")])
    end = hours[-1] + timedelta(hours=1)
    first = store.window_stamps(m, "page", H, T0, end, 1)
    assert [s.window_start for s in first] == hours
    assert all(s.token is not None for s in first)
    assert store.window_stamps(m, "page", H, T0, end, 1) == first  # nothing written: the same tokens
    assert store.window_stamps(m, "page", H, hours[1], hours[3], 1) == first[1:3]
    assert store.window_stamps(m, "page", H, end, T0, 1) == []
    # rewritten whole, one row dropped; a row added by a plain write; emptied: the others keep their tokens
    store.replace_window(
        m, "page", H, hours[0], 1, [replace(row(m, hours[0], ("/a",), cube="page"), computed_at=later)]
    )
    store.write([replace(row(m, hours[1], ("/c",), cube="page"), computed_at=later)])
    store.replace_window(m, "page", H, hours[2], 1, [])
    second = store.window_stamps(m, "page", H, T0, end, 1)
    assert [s.window_start for s in second] == hours[:2] + hours[3:]
    assert second[0].token != first[0].token and second[1].token != first[1].token
    assert second[2:] == first[3:]


@pytest.mark.parametrize("cube", ["country", "page"])  # wide buckets (many per query) and narrow (one each)
def test_a_range_over_hundreds_of_partitions_comes_back_whole_and_in_order(store: RollupStore, cube: str) -> None:
    m = _mid()
    starts = [T0 + timedelta(hours=h) for h in range(0, 24 * 150, 7)]  # 150 days: 150 or 600 CQL partitions
    rows = [row(m, s, (p,), cube=cube, events=i + 1) for i, s in enumerate(starts) for p in ("/b", "/a")]
    store.write(rows)
    end = starts[-1] + timedelta(hours=1)
    assert store.read(m, cube, H, T0, end, 1) == _order(rows)
    assert store.windows(m, cube, H, T0, end, 1) == starts
    assert [s.window_start for s in store.window_stamps(m, cube, H, T0, end, 1)] == starts
    assert store.read(m, cube, H, starts[3], starts[-3], 1, [("/a",)]) == [
        r for r in _order(rows) if starts[3] <= r.key.window_start < starts[-3] and r.key.dims == ("/a",)
    ]


@pytest.mark.parametrize("cube", ["total", "page"])
def test_day_range_bounds_across_months_and_years(store: RollupStore, cube: str) -> None:
    m = _mid()
    zone = ZoneInfo("America/New_York")
    days = [date(2025, 12, 25) + timedelta(days=i) for i in range(90)]
    starts = [day_window(d, zone)[0] for d in days]
    store.write([row(m, s, ("x",), cube=cube, grain=D) for s in starts])
    lo, hi = day_window(date(2025, 12, 31), zone)[0], day_window(date(2026, 3, 9), zone)[0]
    got = [r.key.window_start for r in store.read(m, cube, D, lo, hi, 1)]
    assert got == [s for s in starts if lo <= s < hi]
    assert len(got) == 68
    assert store.windows(m, cube, D, lo, hi, 1) == got
    assert store.read(m, cube, H, lo, hi, 1) == []  # grains are separate


def test_asia_kolkata_half_hour_windows_are_exact(store: RollupStore) -> None:
    m = _mid()
    zone = ZoneInfo("Asia/Kolkata")
    day_start, day_end = day_window(date(2026, 3, 15), zone)
    assert day_start == datetime(2026, 3, 14, 18, 30, tzinfo=UTC)
    hours = [hour_window_start(day_start + timedelta(hours=h, minutes=59), zone) for h in range(-2, 26)]
    assert all(h.minute == 30 for h in hours)
    store.write([row(m, h, (), events=i + 1) for i, h in enumerate(hours)])
    store.write([row(m, day_start, (), grain=D)])
    got = store.read(m, "total", H, day_start, day_end, 1)
    assert [r.key.window_start for r in got] == [day_start + timedelta(hours=h) for h in range(24)]
    assert [r.key.window_start for r in store.read(m, "total", D, day_start, day_end, 1)] == [day_start]
    assert store.read(m, "total", H, day_start + timedelta(minutes=1), day_start + timedelta(hours=1), 1) == []


def test_dst_days_have_23_and_25_hour_windows(store: RollupStore) -> None:
    m = _mid()
    zone = ZoneInfo("Europe/Berlin")
    for day, expected in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        lo, hi = day_window(day, zone)
        starts = sorted({hour_window_start(lo + timedelta(minutes=30 * i), zone) for i in range(60)})
        store.write([row(m, s) for s in starts])
        assert len(store.read(m, "total", H, lo, hi, 1)) == expected


# -- isolation, dims ----------------------------------------------------------------------------------------------


def test_processing_versions_are_isolated(store: RollupStore) -> None:
    m = _mid()
    store.write([row(m, T0, ("/a",), cube="page", events=1), row(m, T0 + timedelta(hours=1), ("/b",), cube="page")])
    store.write([row(m, T0, ("/a",), cube="page", version=2, events=2)])
    end = T0 + timedelta(hours=2)
    assert [(r.key.version, r.metrics.events) for r in store.read(m, "page", H, T0, end, 1)] == [(1, 1), (1, 1)]
    assert [(r.key.version, r.metrics.events) for r in store.read(m, "page", H, T0, end, 2)] == [(2, 2)]
    assert store.windows(m, "page", H, T0, end, 2) == [T0]
    assert store.read(m, "page", H, T0, end, 3) == []


def test_merchants_are_isolated(store: RollupStore) -> None:
    m1, m2 = _mid(), _mid()
    store.write([row(m1, T0, ("/a",), cube="page"), row(m2, T0, ("/b",), cube="page")])
    got = store.read(m1, "page", H, T0, T0 + timedelta(hours=1), 1)
    assert [(r.key.merchant_id, r.key.dims) for r in got] == [(m1, ("/a",))]


UNUSUAL_DIMS: list[tuple[str, ...]] = [
    (),
    ("",),
    ("", ""),
    ("é", "日本語", "🙂"),
    ('a"b', "c\\d", "\x00\x1f", "a,b"),
    ("[", "]"),
    ("\u2028", "\x7f"),
    ("x" * 2000,),
]


def test_unicode_and_empty_dims_round_trip_and_filter(store: RollupStore) -> None:
    m = _mid()
    rows = [row(m, T0, d, cube="custom", events=i + 1) for i, d in enumerate(UNUSUAL_DIMS)]
    store.write(rows)
    end = T0 + timedelta(hours=1)
    got = store.read(m, "custom", H, T0, end, 1)
    assert sorted(got, key=lambda r: r.metrics.events) == rows
    assert got == _order(rows)
    for i, d in enumerate(UNUSUAL_DIMS):
        assert store.read(m, "custom", H, T0, end, 1, dims=[d]) == [rows[i]]
    both = store.read(m, "custom", H, T0, end, 1, dims=[(), ("",)])
    assert [r.key.dims for r in both] == [("",), ()]  # storage order: '[""]' sorts before '[]'


def test_dims_filter_over_many_windows(store: RollupStore) -> None:
    m = _mid()
    starts = [T0 + timedelta(hours=h) for h in range(30)]
    store.write([row(m, s, (f"/p{i}",), cube="page") for s in starts for i in range(12)])
    end = starts[-1] + timedelta(hours=1)
    wanted = [(f"/p{i}",) for i in (0, 3, 11)] + [("/missing",)]
    got = store.read(m, "page", H, starts[1], end, 1, dims=wanted + wanted)
    assert [(r.key.window_start, r.key.dims) for r in got] == [
        (s, (f"/p{i}",))
        for s in starts[1:]
        for i in (0, 11, 3)  # "/p11" sorts before "/p3" (storage order)
    ]
    assert store.read(m, "page", H, T0, end, 1, dims=[]) == []
    assert store.read(m, "page", H, T0, end, 1, dims=[("/missing",)]) == []


CASE_VARIANTS = [
    ("/Home", "DE"),
    ("/home", "DE"),
    ("/HOME", "de"),
    ("/home", "FR"),
    ("/Straße", "DE"),
    ("/STRASSE", "DE"),
    ("İx", "DE"),  # lower-cases to two code points
    ('/a"B\\c', "DE"),
    ("/Ünïcode\n", "DE"),
    ("/other", "DE"),
]


@pytest.mark.parametrize("with_growing_value", [True, False])
def test_fold_case_reads_every_stored_case_variant(store: RollupStore, with_growing_value: bool) -> None:
    m = _mid()
    variants = [d for d in CASE_VARIANTS if with_growing_value or d[0] != "İx"]
    starts = [T0 + timedelta(hours=h) for h in range(3)]
    store.write([row(m, s, d, cube="pair", events=i + 1) for s in starts for i, d in enumerate(variants)])
    end = starts[-1] + timedelta(hours=1)
    every = store.read(m, "pair", H, T0, end, 1)

    def folded(dims: Sequence[str]) -> tuple[str, ...]:
        return tuple(v.lower() for v in dims)

    asks = [
        [("/HOME", "de")],
        [("/home", "fr"), ("/strasse", "de")],
        [("i̇x", "DE"), ('/A"b\\C', "dE")],
        [("/ünÏcode\n", "de")],
        [("/missing", "de")],
        [(f"/p{i}", "de") for i in range(20)] + [("/HOME", "DE")],  # many: the SQLite split path
    ]
    for wanted in asks:
        keys = {folded(d) for d in wanted}
        expected = [r for r in every if folded(r.key.dims) in keys]
        assert expected or wanted == [("/missing", "de")]
        assert store.read(m, "pair", H, T0, end, 1, dims=wanted, fold_case=True) == expected
    assert len(store.read(m, "pair", H, T0, end, 1, dims=[("/home", "de")], fold_case=True)) == 9  # 3 variants
    assert store.read(m, "pair", H, T0, end, 1, dims=[("/home", "de")]) == []  # exact: not stored
    assert store.read(m, "pair", H, T0, end, 1, dims=[], fold_case=True) == []


def test_many_dims_filters_and_replacements_are_chunked(store: RollupStore) -> None:
    m = _mid()
    starts = [T0 + timedelta(hours=h) for h in range(3)]
    store.write([row(m, s, (f"/p{i:04d}",), cube="page") for s in starts for i in range(650)])
    end = starts[-1] + timedelta(hours=1)
    wanted = [(f"/p{i:04d}",) for i in range(620)]
    got = store.read(m, "page", H, T0, end, 1, dims=wanted)
    assert [(r.key.window_start, r.key.dims) for r in got] == [(s, d) for s in starts for d in wanted]
    store.replace_window(
        m, "page", H, starts[1], 1, [row(m, starts[1], (f"/p{i:04d}",), cube="page") for i in range(10)]
    )
    assert [len(store.read(m, "page", H, s, s + timedelta(hours=1), 1)) for s in starts] == [650, 10, 650]


def test_invalid_arguments_raise_rollup_invalid(store: RollupStore) -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(RollupInvalid, match="timezone-aware"):
        store.read("m", "total", H, naive, T0, 1)
    with pytest.raises(RollupInvalid, match="version"):
        store.read("m", "total", H, T0, T0 + timedelta(hours=1), 0)
    with pytest.raises(RollupInvalid, match="grain"):
        store.windows("m", "total", "week", T0, T0 + timedelta(hours=1), 1)  # type: ignore[arg-type]
    with pytest.raises(RollupInvalid, match="RollupRow"):
        store.write([("not", "a", "row")])  # type: ignore[list-item]


# -- data version -------------------------------------------------------------------------------------------------


def test_data_version_grows_with_every_change(backend: Backend) -> None:
    store, registry = backend.store, backend.registry
    m, other = _mid(), _mid()
    assert store.data_version(m) == 0
    store.write([row(m, T0)])
    v1 = store.data_version(m)
    assert v1 > 0
    assert store.data_version(m) == v1  # reading does not change it
    store.write([row(m, T0)])  # even an identical overwrite may have changed a provisional row elsewhere
    v2 = store.data_version(m)
    assert v2 > v1
    store.replace_window(m, "total", H, T0, 1, [])
    v3 = store.data_version(m)
    assert v3 > v2
    registry.set_active(m, T0, T0 + timedelta(days=1), 2, who="test", why="flip changes answers")
    assert store.data_version(m) > v3
    assert store.data_version(other) == 0


# -- active processing versions ----------------------------------------------------------------------------------


def test_active_version_defaults_to_1(registry: VersionRegistry) -> None:
    m = _mid()
    assert registry.active_version(m, T0) == DEFAULT_VERSION == 1
    assert registry.history(m) == []
    assert registry.active_spans(m, T0, T0 + timedelta(days=1)) == [VersionSpan(T0, T0 + timedelta(days=1), 1)]


def test_latest_flip_covering_an_instant_wins_and_history_is_kept(registry: VersionRegistry) -> None:
    m = _mid()
    jan, feb, mar, apr = (datetime(2026, month, 1, tzinfo=UTC) for month in (1, 2, 3, 4))
    f1 = registry.set_active(m, jan, mar, 2, who="reprocess-job", why="fix UA parsing")
    assert registry.active_version(m, jan) == 2
    assert registry.active_version(m, mar - timedelta(milliseconds=1)) == 2
    assert registry.active_version(m, mar) == 1  # end exclusive
    assert registry.active_version(m, jan - timedelta(milliseconds=1)) == 1
    f2 = registry.set_active(m, feb, apr, 3, who="reprocess-job", why="fix geo lookup")
    assert [registry.active_version(m, t) for t in (jan, feb, mar, apr)] == [2, 3, 3, 1]
    f3 = registry.set_active(m, feb, mar, 2, who="alice", why="roll back v3 in February")
    assert [registry.active_version(m, t) for t in (jan, feb, mar, apr)] == [2, 2, 3, 1]
    assert registry.history(m) == [f1, f2, f3]
    assert f1.flipped_at < f2.flipped_at < f3.flipped_at
    assert (f3.who, f3.why, f3.start, f3.end, f3.version) == ("alice", "roll back v3 in February", feb, mar, 2)
    assert registry.active_spans(m, jan - timedelta(days=1), apr + timedelta(days=1)) == [
        VersionSpan(jan - timedelta(days=1), jan, 1),
        VersionSpan(jan, mar, 2),
        VersionSpan(mar, apr, 3),
        VersionSpan(apr, apr + timedelta(days=1), 1),
    ]
    assert registry.history(_mid()) == []


def test_versions_in_use_cover_active_flipped_and_reserved_versions(registry: VersionRegistry) -> None:
    m = _mid()
    jan, feb, mar = (datetime(2026, month, 1, tzinfo=UTC) for month in (1, 2, 3))
    assert registry.versions_in_use(m, jan, mar) == (1,)
    registry.reserve(m, jan, feb, 3, job_id="job-a")
    registry.reserve(m, jan, feb, 3, job_id="job-a")  # idempotent
    assert registry.versions_in_use(m, jan, feb) == (1, 3)
    assert registry.versions_in_use(m, feb, mar) == (1,)  # end exclusive
    assert registry.active_version(m, jan) == 1  # a reservation changes no answer
    registry.set_active(m, feb, mar, 2, who="job-b", why="fix")
    registry.set_active(m, feb, mar, 1, who="alice", why="roll back")
    assert registry.versions_in_use(m, feb, mar) == (1, 2)  # a rolled-back version stays in use
    assert registry.versions_in_use(m, jan, mar) == (1, 2, 3)
    assert registry.versions_in_use(_mid(), jan, mar) == (1,)
    with pytest.raises(RollupInvalid, match="job_id"):
        registry.reserve(m, jan, feb, 3, job_id="")
    with pytest.raises(RollupInvalid, match="before"):
        registry.reserve(m, feb, jan, 3, job_id="job-c")


def test_set_active_validates_its_arguments(registry: VersionRegistry) -> None:
    m = _mid()
    with pytest.raises(RollupInvalid, match="before"):
        registry.set_active(m, T0, T0, 2, who="a", why="b")
    with pytest.raises(RollupInvalid, match="who"):
        registry.set_active(m, T0, T0 + timedelta(hours=1), 2, who="", why="b")
    with pytest.raises(RollupInvalid, match="why"):
        registry.set_active(m, T0, T0 + timedelta(hours=1), 2, who="a", why=" ")
    with pytest.raises(RollupInvalid, match="version"):
        registry.set_active(m, T0, T0 + timedelta(hours=1), 0, who="a", why="b")
    assert registry.history(m) == []


# -- concurrency and throughput -----------------------------------------------------------------------------------


def test_concurrent_writers_and_readers(store: RollupStore) -> None:
    merchants = [_mid() for _ in range(4)]
    errors: list[BaseException] = []

    def work(m: str) -> None:
        try:
            for h in range(10):
                store.write([row(m, T0 + timedelta(hours=h), (f"/p{i}",), cube="page") for i in range(20)])
                assert len(store.read(m, "page", H, T0, T0 + timedelta(hours=h + 1), 1)) == 20 * (h + 1)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(m,)) for m in merchants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_write_throughput_100k_rows(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    m = _mid()
    sketches = [sketch_of(f"u{j}" for j in range(n)) for n in (1, 2, 5, 20, 200, 2000)]
    rows = [
        RollupRow(
            RollupKey(m, "page", H, T0 + timedelta(hours=i // 5000), (f"/products/item-{i % 5000}",), 1),
            Metrics(i, i, 1, 1, 0, 30_000, 0, 0, sketches[i % 6], sketches[(i + 3) % 6]),
            False,
            COMPUTED,
        )
        for i in range(100_000)
    ]
    started = time.perf_counter()
    backend.store.write(rows)
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    back = backend.store.read(m, "page", H, T0, T0 + timedelta(days=1), 1)
    read_elapsed = time.perf_counter() - started
    assert len(back) == len(rows)
    with capsys.disabled():
        print(
            f"\n[rollups/{backend.name}] write 100k rows: {len(rows) / elapsed:,.0f} rows/s ({elapsed:.2f} s);"
            f" read back: {len(back) / read_elapsed:,.0f} rows/s ({read_elapsed:.2f} s)"
        )


# -- SQLite only: the columnar write path -------------------------------------------------------------------------


def _columns(rows: Sequence[RollupRow]) -> list[RollupColumns]:
    """`rows` as one RollupColumns per (merchant, cube, grain, version, computed_at), in row order."""
    import numpy as np

    from gnomon.rollups.model import COUNTER_FIELDS
    from gnomon.rollups.sqlite_db import to_s

    groups: dict[tuple[str, str, Grain, int, datetime], list[RollupRow]] = {}
    for r in rows:
        k = r.key
        groups.setdefault((k.merchant_id, k.cube, k.grain, k.version, r.computed_at), []).append(r)
    return [
        RollupColumns(
            merchant_id=merchant,
            cube=cube,
            grain=grain,
            version=version,
            window_start_s=np.asarray([to_s(r.key.window_start) for r in rs], dtype=np.int64),
            dims=[r.key.dims for r in rs],
            counters=tuple(np.asarray([getattr(r.metrics, n) for r in rs], dtype=np.int64) for n in COUNTER_FIELDS),
            users=[r.metrics.users for r in rs],
            new_users=[r.metrics.new_users for r in rs],
            provisional=np.asarray([r.provisional for r in rs], dtype=np.bool_),
            computed_at=at,
        )
        for (merchant, cube, grain, version, at), rs in groups.items()
    ]


def test_sqlite_write_columns_equals_write(tmp_path: Path) -> None:
    by_rows = SqliteRollupStore(tmp_path / "rows.sqlite3")
    by_columns = SqliteRollupStore(tmp_path / "columns.sqlite3")
    try:
        m = _mid()
        rows = [
            row(m, T0 + timedelta(hours=h), (f"/p{i}", 'ü"\\\x01'), cube="page", events=i + h, provisional=h == 2)
            for h in range(3)
            for i in range(4)
        ]
        rows += [row(m, T0, events=1), row(m, T0, events=2), row(m, T0, grain=D, version=2)]  # last one wins
        rows += [row(m, T0, (f"/p{i}", "x"), cube="page", users=sketch_of(f"u{j}" for j in range(i * 500)))
                 for i in range(3)]  # fmt: skip
        by_rows.write(rows)
        assert by_columns.data_version(m) == 0
        by_columns.write_columns(_columns(rows))
        assert by_columns.data_version(m) > 0
        by_columns.write_columns([])
        for cube, grain, version in (("page", H, 1), ("total", H, 1), ("total", D, 2)):
            args = (m, cube, grain, T0 - timedelta(days=1), T0 + timedelta(days=1), version)
            assert by_columns.read(*args) == by_rows.read(*args)
            assert by_columns.windows(*args) == by_rows.windows(*args)
        assert [r.metrics.events for r in by_columns.read(m, "total", H, T0, T0 + timedelta(hours=1), 1)] == [2]
    finally:
        by_rows.close()
        by_columns.close()


def test_sqlite_write_columns_rejects_malformed_blocks_and_writes_nothing(tmp_path: Path) -> None:
    import numpy as np

    from gnomon.rollups.dims import CodedDims

    store = SqliteRollupStore(tmp_path / ROLLUPS_FILE_NAME)
    try:
        m = _mid()
        good = _columns([row(m, T0, ("/a",), cube="page"), row(m, T0, ("/b",), cube="page")])[0]
        bad_blocks = [
            replace(good, merchant_id=""),
            replace(good, cube=""),
            replace(good, grain="week"),  # type: ignore[arg-type]
            replace(good, version=0),
            replace(good, computed_at=datetime(2026, 1, 1)),  # noqa: DTZ001
            replace(good, window_start_s=good.window_start_s[:1]),
            replace(good, window_start_s=good.window_start_s.astype(np.float64)),
            replace(good, dims=[("/a",), ["/b"]]),  # type: ignore[list-item]
            replace(good, dims=[("/a",), (1,)]),  # type: ignore[list-item]
            replace(good, dims=[("/a",), (["/b"],)]),  # type: ignore[list-item]
            replace(good, dims=CodedDims(np.asarray([0, 2]), [("/a",), ("/b",)])),  # a code without a value
            replace(good, dims=CodedDims(np.asarray([0, -1]), [("/a",), ("/b",)])),
            replace(good, dims=CodedDims(np.asarray([0]), [("/a",), ("/b",)])),  # one code for two rows
            replace(good, dims=CodedDims(np.asarray([0, 1]), [("/a",), ["/b"]])),  # type: ignore[list-item]
            replace(good, dims=CodedDims(np.asarray([0, 1]), [("/a",), (1,)])),  # type: ignore[list-item]
            replace(good, counters=good.counters[:-1]),
            replace(good, counters=(good.counters[0].astype(np.float64), *good.counters[1:])),
            replace(good, users=[b"", "x"]),  # type: ignore[list-item]
            replace(good, new_users=good.new_users[:1]),
            replace(good, provisional=np.asarray([0, 1])),
        ]
        for bad in bad_blocks:
            with pytest.raises(RollupInvalid):
                store.write_columns([good, bad])
        with pytest.raises(RollupInvalid):
            store.write_columns([row(m, T0)])  # type: ignore[list-item]
        assert store.read(m, "page", H, T0, T0 + timedelta(hours=1), 1) == []
        assert store.data_version(m) == 0
    finally:
        store.close()
