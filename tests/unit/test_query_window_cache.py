"""The window cache: closed windows are reused only while unchanged (the window's change token from
`window_stamps`), never stale under the aggregator's way of writing (whole windows via replace_window, stamped
with the computation time). Against the SQLite store and against Cassandra."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gnomon.control import SqliteControlStore
from gnomon.rollups import Grain, RollupRow, RollupStore, VersionRegistry, day_window
from gnomon.rollups.cql_store import CqlRollupStore
from gnomon.rollups.cql_versions import CqlVersionRegistry
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from query_svc.engine import EngineConfig, QueryEngine
from query_svc.model import DateSpec, InList, MatchType, Or, ReportRequest, StringMatch
from query_svc.testing import rollup_row
from query_svc.window_cache import DimsIndex, WindowCache, WindowRows
from tests.conftest import RealEngines

ZONE = "Europe/Berlin"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = [date(2026, 2, 1) + timedelta(days=i) for i in range(6)]


@dataclass
class Env:
    store: RollupStore
    registry: VersionRegistry
    cached: QueryEngine  # window cache on, result cache off
    plain: QueryEngine  # no cache at all: the reference
    merchant: str
    clock: list[int]

    def stamp(self) -> datetime:
        self.clock[0] += 1
        return datetime(2026, 2, 20, tzinfo=UTC) + timedelta(seconds=self.clock[0])

    def replace(self, day: date, pages: dict[str, int], *, provisional: bool = False, version: int = 1) -> None:
        """Rewrite a day's page window whole, as the aggregator does."""
        start = day_window(day, ZONE)[0]
        at = self.stamp()
        rows = [
            rollup_row(self.merchant, "page", Grain.DAY, start, (p,), pageviews=v, users=[f"{p}-{v}"],
                       provisional=provisional, version=version, computed_at=at)
            for p, v in pages.items()
        ]  # fmt: skip
        self.store.replace_window(self.merchant, "page", Grain.DAY, start, version, rows)

    def report(self, engine: QueryEngine) -> list[tuple[tuple[str, ...], tuple[object, ...]]]:
        request = ReportRequest(
            self.merchant, DateSpec(str(DAYS[0]), str(DAYS[-1])), ("screenPageViews", "totalUsers"), ("pagePath",)
        )
        return [(r.dimensions, r.values) for r in engine.report(request).rows]

    def check(self) -> None:
        assert self.report(self.cached) == self.report(self.plain)


@pytest.fixture(scope="module")
def cql_store(real_engines: RealEngines) -> Iterator[CqlRollupStore]:
    cql = replace(real_engines.settings.cql, replication_factor=1)
    store = CqlRollupStore.connect(cql, keyspace=f"gnomon_window_cache_test_{uuid.uuid4().hex[:10]}")
    try:
        yield store
    finally:
        store.engine.drop_keyspace()
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("cql", marks=pytest.mark.engines)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """A fresh merchant; its rollups in SQLite or in a Cassandra keyspace shared by the module's tests."""
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    merchant = control.create_merchant("W", ZONE, "EUR").merchant_id
    store: RollupStore
    registry: VersionRegistry
    if request.param == "cql":
        cql: CqlRollupStore = request.getfixturevalue("cql_store")
        store, registry = cql, CqlVersionRegistry(cql.engine)
    else:
        store = SqliteRollupStore(tmp_path / "rollups.sqlite3", synchronous="OFF")
        registry = SqliteVersionRegistry(tmp_path / "rollups.sqlite3", synchronous="OFF")
    cached = QueryEngine(store, registry, control, config=EngineConfig(cache_entries=0), clock=lambda: NOW)
    plain = QueryEngine(
        store, registry, control, config=EngineConfig(cache_entries=0, window_cache_rows=0), clock=lambda: NOW
    )
    yield Env(store, registry, cached, plain, merchant, [0])
    registry.close()
    if request.param != "cql":
        store.close()
    control.close()


def test_closed_windows_are_reused_across_data_versions(env: Env) -> None:
    for i, day in enumerate(DAYS):
        env.replace(day, {"/a": 1 + i, "/b": 2, "/c": 3 * i})
    env.check()
    before = env.cached.window_cache_stats()
    assert (before.windows, before.hits) == (6, 0)
    # another cube changes (the data version moves): the page windows are still valid
    env.store.write([rollup_row(env.merchant, "total", Grain.DAY, day_window(DAYS[0], ZONE)[0], sessions=1)])
    env.check()
    after = env.cached.window_cache_stats()
    assert after.hits == 6
    assert after.invalidated == 0


def test_cached_windows_cost_one_token_read_per_range(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validating cached windows of a large cube reads their change tokens only: one `window_stamps` call of the
    page cube, no rows; a rewritten window is then the only one read again. (The report's totals read the
    `total` cube.)"""
    for i, day in enumerate(DAYS):
        env.replace(day, {f"/p{j}": 1 + i + j for j in range(50)})
    env.check()
    calls: dict[tuple[str, object], int] = {}
    for name in ("read", "windows", "window_stamps"):
        method = getattr(env.store, name)

        def counted(*args: object, _name: str = name, _method: Any = method, **kwargs: object) -> Any:
            cube = (_name, args[1])
            calls[cube] = calls.get(cube, 0) + 1
            return _method(*args, **kwargs)

        monkeypatch.setattr(env.store, name, counted)
    before = env.cached.window_cache_stats()
    env.report(env.cached)
    assert {call: n for call, n in calls.items() if call[1] == "page"} == {("window_stamps", "page"): 1}
    assert env.cached.window_cache_stats().hits - before.hits == len(DAYS)
    env.replace(DAYS[3], {"/p1": 1000})
    calls.clear()
    assert env.report(env.cached)[0] == (("/p1",), (1000 + sum(1 + i + 1 for i in range(6) if i != 3), 6))
    assert {call: n for call, n in calls.items() if call[1] == "page"} == {
        ("window_stamps", "page"): 1,
        ("read", "page"): 1,
    }
    monkeypatch.undo()
    env.check()


def test_case_insensitive_pins_read_every_case_variant_and_only_those(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case-insensitive EXACT / IN_LIST filter is pushed down as a `fold_case` read of HOUR windows (and of DAY
    windows without a window cache; with one, DAY windows come whole from it). Every answer equals the one
    computed from the whole cube (an OR keeps the same filter from being pushed down)."""
    pages = {"/Home": 1, "/home": 2, "/HOME": 3, "/other": 4, "/Straße": 5, "/STRASSE": 6}
    for day in DAYS:
        env.replace(day, pages)
    first = day_window(DAYS[0], ZONE)[0]
    for h in range(3):
        hour = first + timedelta(hours=h)
        rows = [rollup_row(env.merchant, "page", Grain.HOUR, hour, (p,), pageviews=v, computed_at=env.stamp())
                for p, v in pages.items()]  # fmt: skip
        env.store.replace_window(env.merchant, "page", Grain.HOUR, hour, 1, rows)
    folded: list[bool] = []
    read = env.store.read

    def recording(*args: Any, **kwargs: Any) -> Any:
        folded.append(kwargs.get("fold_case", False))
        return read(*args, **kwargs)

    monkeypatch.setattr(env.store, "read", recording)
    pins = (
        StringMatch("pagePath", MatchType.EXACT, "/HoMe"),
        InList("pagePath", ("/home", "/strasse")),
        InList("pagePath", ("/Home",), case_sensitive=True),
    )
    for engine, dimensions, fold_case_reads in (
        (env.plain, ("pagePath",), 2),  # no window cache: DAY windows pushed down too
        (env.cached, ("pagePath",), 0),  # DAY windows whole from the window cache
        (env.cached, ("dateHour", "pagePath"), 2),
    ):
        folded.clear()
        for pin in pins:
            answers = []
            for expr in (pin, Or((pin, pin))):
                request = ReportRequest(
                    env.merchant, DateSpec(str(DAYS[0]), str(DAYS[-1])), ("screenPageViews",), dimensions, expr
                )
                answers.append([(r.dimensions, r.values) for r in engine.report(request).rows])
            assert answers[0] == answers[1]
            assert answers[0]
        assert folded.count(True) == fold_case_reads


def test_rewritten_emptied_new_and_open_windows(env: Env) -> None:
    for day in DAYS[:4]:
        env.replace(day, {"/a": 1, "/b": 2})
    env.check()
    env.replace(DAYS[1], {"/a": 10, "/z": 7})  # rewritten: /b disappears, /z appears
    env.check()
    assert env.cached.window_cache_stats().invalidated == 1
    env.replace(DAYS[2], {})  # emptied
    env.check()
    env.replace(DAYS[5], {"/new": 4})  # a new window after the cached ones
    env.check()
    env.replace(DAYS[4], {"/open": 1}, provisional=True)  # open windows are never kept
    env.check()
    env.replace(DAYS[4], {"/open": 2}, provisional=True)
    env.check()
    assert env.report(env.cached)[0] == (("/a",), (12, 2))


def test_version_flip(env: Env) -> None:
    for day in DAYS:
        env.replace(day, {"/a": 1})
        env.replace(day, {"/a": 100}, version=2)
    env.check()
    start, end = day_window(DAYS[2], ZONE)[0], day_window(DAYS[3], ZONE)[1]
    env.registry.set_active(env.merchant, start, end, 2, "test", "flip two days")
    env.check()
    assert env.report(env.cached) == [(("/a",), (4 + 200, 2))]  # users "/a-1" and "/a-100"


def test_random_histories_match_the_uncached_engine(env: Env) -> None:
    rnd = random.Random(5)
    for _ in range(40):
        day = rnd.choice(DAYS)
        pages = {f"/p{rnd.randrange(8)}": rnd.randrange(1, 50) for _ in range(rnd.randrange(0, 6))}
        env.replace(day, pages, provisional=rnd.random() < 0.2)
        env.check()


def test_small_cube_hours_validated_by_a_read_without_sketches(env: Env) -> None:
    """The `total` cube (one row per window) through the stamp validation: random rewrites, open and emptied
    hours; the cached engine always equals the uncached one and reuses the unchanged hours."""
    rnd = random.Random(11)
    first = day_window(DAYS[0], ZONE)[0]
    hours = [first + timedelta(hours=h) for h in range(48)]
    request = ReportRequest(
        env.merchant, DateSpec(str(DAYS[0]), str(DAYS[1])), ("screenPageViews", "totalUsers"), ("dateHour",)
    )

    def rows(engine: QueryEngine) -> list[tuple[tuple[str, ...], tuple[object, ...]]]:
        return [(r.dimensions, r.values) for r in engine.report(request).rows]

    def rewrite(hour: datetime, empty: bool = False) -> None:
        at = env.stamp()
        views = rnd.randrange(1, 99)
        found = [] if empty else [
            rollup_row(env.merchant, "total", Grain.HOUR, hour, pageviews=views, users=[f"u{views}", "x"],
                       provisional=rnd.random() < 0.2, computed_at=at)
        ]  # fmt: skip
        env.store.replace_window(env.merchant, "total", Grain.HOUR, hour, 1, found)

    for hour in hours:
        rewrite(hour)
    assert rows(env.cached) == rows(env.plain)
    for _ in range(30):
        for hour in rnd.sample(hours, 3):
            rewrite(hour, empty=rnd.random() < 0.1)
        assert rows(env.cached) == rows(env.plain)
    stats = env.cached.window_cache_stats()
    assert stats.hits > 30 * 25 and stats.invalidated > 0  # ~80% of the hours are closed and unchanged


def _rows(index: DimsIndex, n: int, at: datetime) -> WindowRows:
    dims = [(f"/p{i}",) for i in range(n)]
    return WindowRows(
        index=index,
        window_start=at,
        dims_codes=index.codes(dims),
        counters=np.zeros((8, n), dtype=np.int64),
        users=[b""] * n,
        new_users=[b""] * n,
        provisional=False,
        stamp=("token", at),
    )


def test_lru_by_rows_and_scopes() -> None:
    cache = WindowCache(max_rows=25)
    index = cache.scope("m", "page", 1)
    assert cache.scope("m", "page", 1) is index
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(3):
        cache.put(("m", "page", Grain.DAY, 1, t0 + timedelta(days=i)), _rows(index, 10, t0))
    stats = cache.stats()
    assert (stats.windows, stats.rows) == (2, 20)  # the oldest was evicted
    assert cache.get(("m", "page", Grain.DAY, 1, t0), index) is None
    assert cache.get(("m", "page", Grain.DAY, 1, t0 + timedelta(days=2)), index) is not None
    assert cache.get(("m", "page", Grain.DAY, 1, t0 + timedelta(days=2)), DimsIndex()) is None  # another index
    assert index.codes([("/p3",), ("/q",)]).tolist() == [3, 10]
    small = WindowCache(max_rows=100, max_scope_values=5)
    scope = small.scope("m", "page", 1)
    small.put(("m", "page", Grain.DAY, 1, t0), _rows(scope, 10, t0))
    fresh = small.scope("m", "page", 1)  # the index outgrew its bound: replaced, its windows dropped
    assert fresh is not scope
    assert small.stats().windows == 0
    unstamped = WindowCache(max_rows=100)
    unstamped.put(("m", "page", Grain.DAY, 1, t0), replace(_rows(unstamped.scope("m", "page", 1), 1, t0), stamp=None))
    assert unstamped.stats().windows == 0  # a window without a change token could never be validated
    off = WindowCache(0)
    off.put(("m", "page", Grain.DAY, 1, t0), _rows(off.scope("m", "page", 1), 1, t0))
    assert not off.enabled
    assert off.stats().windows == 0


def test_rows_of_the_helper_are_rollup_rows() -> None:
    row = rollup_row("m", "page", Grain.DAY, datetime(2026, 1, 1, tzinfo=UTC), ("/x",), computed_at=NOW)
    assert isinstance(row, RollupRow)
    assert row.computed_at == NOW
