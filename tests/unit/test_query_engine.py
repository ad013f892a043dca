"""QueryEngine over the embedded stores (files in tmp_path, no network): reports, versions, comparison, cache."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gnomon.control import SqliteControlStore
from gnomon.rollups import Grain, RollupRow, day_window
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from query_svc.engine import EngineConfig, QueryEngine
from query_svc.errors import DeadlineExceeded, Incompatible, InvalidQuery, MerchantUnknown, UnknownName
from query_svc.model import (
    CompatibilityRequest,
    DateSpec,
    InList,
    MatchType,
    NumericCompare,
    NumericOp,
    OrderBy,
    PreviousPeriod,
    ReportRequest,
    StringMatch,
)
from query_svc.reader import Deadline
from query_svc.testing import rollup_row

ZONE = "Asia/Kolkata"
NOW = datetime(2026, 2, 1, 6, 0, tzinfo=UTC)  # 2026-02-01 11:30 in Kolkata
DAY = timedelta(days=1)


@dataclass
class Env:
    engine: QueryEngine
    store: SqliteRollupStore
    registry: SqliteVersionRegistry
    merchant: str
    other: str
    lookups: list[bool]
    control: SqliteControlStore

    def write(self, rows: list[RollupRow]) -> None:
        self.store.write(rows)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    merchant = control.create_merchant("A", ZONE, "INR").merchant_id
    other = control.create_merchant("B", ZONE, "INR").merchant_id
    store = SqliteRollupStore(tmp_path / "rollups.sqlite3", synchronous="OFF")
    registry = SqliteVersionRegistry(tmp_path / "rollups.sqlite3", synchronous="OFF")
    lookups: list[bool] = []
    engine = QueryEngine(store, registry, control, clock=lambda: NOW, on_cache_lookup=lookups.append)
    yield Env(engine, store, registry, merchant, other, lookups, control)
    registry.close()
    store.close()
    control.close()


def day_start(d: date) -> datetime:
    return day_window(d, ZONE)[0]


def report(env: Env, **kwargs: object) -> ReportRequest:
    base = ReportRequest(env.merchant, DateSpec("2026-01-10", "2026-01-11"), ("sessions",))
    return replace(base, **kwargs)  # type: ignore[arg-type]


def seed_pages(env: Env, merchant: str | None = None, version: int = 1) -> None:
    m = merchant or env.merchant
    rows = []
    for i, d in enumerate([date(2026, 1, 10), date(2026, 1, 11)]):
        start = day_start(d)
        rows.append(rollup_row(m, "total", Grain.DAY, start, users=[f"u{i}", "shared"], sessions=10 + i, events=50,
                               pageviews=20, version=version))  # fmt: skip
        for page, views in (("/a", 5 + i), ("/b", 3), ("/Shop", 9 - i)):
            rows.append(rollup_row(m, "page", Grain.DAY, start, (page,), users=[f"{page}{i}", "shared"],
                                   sessions=2, pageviews=views, events=views, version=version))  # fmt: skip
    env.write(rows)


def test_breakdown_top_n_with_totals_from_the_total_cube(env: Env) -> None:
    seed_pages(env)
    metrics = ("screenPageViews", "totalUsers", "sessions")
    result = env.engine.report(report(env, dimensions=("pagePath",), metrics=metrics, limit=2))
    assert [r.dimensions for r in result.rows] == [("/Shop",), ("/a",)]
    assert [r.values for r in result.rows] == [(17, 3, 4), (11, 3, 4)]
    assert result.row_count == 3
    # totals: the total cube (sessions are not summed over pages), users = union of the two days
    assert result.totals.values == (40, 3, 21)
    assert result.meta.cube == "page"
    assert result.meta.grains == ("day",)
    assert result.meta.limit == 2
    assert result.date_range.start_time == day_start(date(2026, 1, 10))


def test_only_the_sketch_columns_a_report_needs_are_read(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    m = env.merchant
    env.write(
        [
            rollup_row(m, "total", Grain.DAY, day_start(d), users=users, new_users=new, sessions=s, pageviews=s)
            for d, users, new, s in (
                (date(2026, 1, 10), ["u1", "u2"], ["u1"], 4),
                (date(2026, 1, 11), ["u1", "u2", "u3"], [], 5),
            )
        ]
    )
    asked: list[frozenset[str]] = []
    real_read = env.store.read

    def recording_read(*args: Any, **kwargs: Any) -> list[RollupRow]:
        asked.append(frozenset(kwargs.get("sketches", args[7] if len(args) > 7 else {"users", "new_users"})))
        return real_read(*args, **kwargs)

    monkeypatch.setattr(env.store, "read", recording_read)
    uncached = QueryEngine(
        env.store,
        env.registry,
        env.control,
        config=EngineConfig(cache_entries=0, window_cache_rows=0),
        clock=lambda: NOW,
    )

    def run(engine: QueryEngine = uncached, **kwargs: Any) -> list[tuple[tuple[str, ...], tuple[object, ...]]]:
        asked.clear()
        result = engine.report(report(env, dimensions=("date",), **kwargs))
        return [(r.dimensions, r.values) for r in result.rows]

    # without the window cache, what leaves the store is what the report needs
    assert run(metrics=("screenPageViews", "totalUsers")) == [(("20260110",), (4, 2)), (("20260111",), (5, 3))]
    assert set(asked) == {frozenset({"users"})}
    assert run(metrics=("screenPageViews",)) == [(("20260110",), (4,)), (("20260111",), (5,))]
    assert set(asked) == {frozenset()}
    # newUsers only in the metric filter, totalUsers only in the ordering: both sketches are read
    found = run(
        metrics=("sessions",),
        metric_filter=NumericCompare("newUsers", NumericOp.GREATER_THAN, 0),
        order_bys=(OrderBy("totalUsers", desc=True),),
    )
    assert found == [(("20260110",), (4,))]
    assert set(asked) == {frozenset({"users", "new_users"})}
    # with it, the small total cube is validated by window stamps (no values); closed windows stay cached
    windowed = QueryEngine(
        env.store, env.registry, env.control, config=EngineConfig(cache_entries=0), clock=lambda: NOW
    )
    expected = [(("20260110",), (4, 2)), (("20260111",), (5, 3))]
    assert run(windowed, metrics=("screenPageViews", "totalUsers")) == expected
    assert asked == [frozenset({"users", "new_users"})]
    assert run(windowed, metrics=("screenPageViews", "totalUsers")) == expected
    assert asked == []


def test_filtered_totals_cover_the_filtered_rows(env: Env) -> None:
    seed_pages(env)
    shop = StringMatch("pagePath", MatchType.BEGINS_WITH, "/s")
    result = env.engine.report(
        report(env, dimensions=("pagePath",), metrics=("screenPageViews",), dimension_filter=shop)
    )
    assert [(r.dimensions, r.values) for r in result.rows] == [(("/Shop",), (17,))]
    assert result.totals.values == (17,)


def test_metric_filter_ordering_offset(env: Env) -> None:
    seed_pages(env)
    result = env.engine.report(
        report(
            env,
            dimensions=("pagePath",),
            metrics=("screenPageViews",),
            metric_filter=NumericCompare("screenPageViews", NumericOp.GREATER_THAN, 6),
            order_bys=(OrderBy("pagePath", desc=True, is_metric=False),),
            offset=1,
        )
    )
    assert result.row_count == 2
    assert [r.dimensions for r in result.rows] == [("/Shop",)]  # ("/a", "/Shop") desc, after skipping one
    assert result.totals.values == (40,)  # totals ignore the metric filter (as in GA4)


def test_pushdown_gives_the_same_answer(env: Env) -> None:
    seed_pages(env)
    pinned = InList("pagePath", ("/a", "/b"), case_sensitive=True)
    loose = InList("pagePath", ("/A", "/B"))
    a = env.engine.report(report(env, dimensions=("pagePath",), metrics=("screenPageViews",), dimension_filter=pinned))
    b = env.engine.report(report(env, dimensions=("pagePath",), metrics=("screenPageViews",), dimension_filter=loose))
    assert a.rows == b.rows
    assert a.totals == b.totals


def test_time_series_fills_gaps_and_groups_weeks_and_months(env: Env) -> None:
    seed_pages(env)
    spec = DateSpec("2026-01-09", "2026-01-12")
    days = env.engine.report(report(env, date_range=spec, dimensions=("date",), fill_time_gaps=True))
    assert [(r.dimensions[0], r.values[0]) for r in days.rows] == [
        ("20260109", 0),
        ("20260110", 10),
        ("20260111", 11),
        ("20260112", 0),
    ]
    weeks = env.engine.report(report(env, date_range=spec, metrics=("sessions", "totalUsers"), dimensions=("week",)))
    # 2026-01-10/11 are Saturday/Sunday of ISO week 2, the 12th a Monday (week 3)
    assert [(r.dimensions, r.values) for r in weeks.rows] == [(("202602",), (21, 3))]
    months = env.engine.report(report(env, date_range=spec, dimensions=("month",), fill_time_gaps=True))
    assert [(r.dimensions, r.values) for r in months.rows] == [(("202601",), (21,))]


def test_hourly_series_reads_hour_rows(env: Env) -> None:
    start = day_start(date(2026, 1, 10))
    env.write([rollup_row(env.merchant, "total", Grain.HOUR, start + timedelta(hours=h), events=h) for h in range(24)])
    result = env.engine.report(
        report(
            env,
            date_range=DateSpec("2026-01-10", "2026-01-10"),
            metrics=("eventCount",),
            dimensions=("dateHour",),
            fill_time_gaps=True,
        )
    )
    assert [r.dimensions[0] for r in result.rows][:2] == ["2026011000", "2026011001"]
    assert [r.values[0] for r in result.rows] == list(range(24))
    assert result.meta.grains == ("hour",)


def test_comparison_pairs_rows(env: Env) -> None:
    seed_pages(env)
    by_page = env.engine.report(
        report(
            env,
            date_range=DateSpec("2026-01-11", "2026-01-11"),
            dimensions=("pagePath",),
            metrics=("screenPageViews",),
            comparison=PreviousPeriod(),
        )
    )
    assert [(r.dimensions, r.values, r.comparison) for r in by_page.rows] == [
        (("/Shop",), (8,), (9,)),
        (("/a",), (6,), (5,)),
        (("/b",), (3,), (3,)),
    ]
    assert by_page.comparison_range is not None
    assert by_page.comparison_range.start_date == date(2026, 1, 10)
    assert (by_page.totals.values, by_page.totals.comparison) == ((20,), (20,))
    series = env.engine.report(
        report(
            env,
            date_range=DateSpec("2026-01-11", "2026-01-12"),
            dimensions=("date",),
            fill_time_gaps=True,
            comparison=DateSpec("2026-01-10", "2026-01-11"),
        )
    )
    assert [(r.dimensions, r.values, r.comparison) for r in series.rows] == [
        (("20260111",), (11,), (10,)),
        (("20260112",), (0,), (11,)),
    ]


def test_reads_the_active_version_per_span(env: Env) -> None:
    seed_pages(env, version=1)
    rows = [rollup_row(env.merchant, "total", Grain.DAY, day_start(date(2026, 1, 11)), sessions=100, version=2)]
    env.write(rows)
    request = report(env, dimensions=("date",))
    assert [r.values[0] for r in env.engine.report(request).rows] == [10, 11]
    start, end = day_window(date(2026, 1, 11), ZONE)
    env.registry.set_active(env.merchant, start, end, 2, "test", "reprocess of the 11th")
    assert [r.values[0] for r in env.engine.report(request).rows] == [10, 100]


def test_cache_hits_and_is_invalidated_by_new_data(env: Env) -> None:
    seed_pages(env)
    request = report(env, dimensions=("pagePath",), metrics=("screenPageViews",))
    first = env.engine.report(request)
    second = env.engine.report(request)
    assert not first.meta.from_cache
    assert second.meta.from_cache
    assert second.rows == first.rows
    assert env.lookups == [False, True]
    # the aggregator rewrites a changed window whole (replace_window), stamped with the new computation time
    start = day_start(date(2026, 1, 10))
    later = datetime(2026, 1, 31, tzinfo=UTC)
    window = [
        rollup_row(env.merchant, "page", Grain.DAY, start, (page,), pageviews=views, computed_at=later)
        for page, views in (("/new", 99), ("/a", 5), ("/b", 3), ("/Shop", 9))
    ]
    env.store.replace_window(env.merchant, "page", Grain.DAY, start, 1, window)
    third = env.engine.report(request)
    assert not third.meta.from_cache
    assert third.rows[0].dimensions == ("/new",)
    assert third.meta.data_version > first.meta.data_version
    stats = env.engine.cache_stats()
    assert (stats.hits, stats.misses) == (1, 2)


def test_cache_is_invalidated_by_a_version_flip(env: Env) -> None:
    seed_pages(env)
    env.write([rollup_row(env.merchant, "total", Grain.DAY, day_start(date(2026, 1, 10)), sessions=7, version=3)])
    request = report(env)
    assert env.engine.report(request).rows[0].values == (21,)
    start, end = day_window(date(2026, 1, 10), ZONE)
    env.registry.set_active(env.merchant, start, end, 3, "test", "flip")
    flipped = env.engine.report(request)
    assert not flipped.meta.from_cache
    assert flipped.rows[0].values == (18,)


def test_open_windows_and_today_are_not_cached(env: Env) -> None:
    today = date(2026, 2, 1)
    env.write([rollup_row(env.merchant, "total", Grain.DAY, day_start(today), sessions=1, provisional=True)])
    request = report(env, date_range=DateSpec("today", "today"))
    first = env.engine.report(request)
    assert first.meta.provisional
    assert first.rows[0].values == (1,)
    assert not env.engine.report(request).meta.from_cache
    closed_but_provisional = report(env, date_range=DateSpec("2026-01-31", "2026-01-31"))
    env.write(
        [rollup_row(env.merchant, "total", Grain.DAY, day_start(date(2026, 1, 31)), sessions=1, provisional=True)]
    )
    env.engine.report(closed_but_provisional)
    assert not env.engine.report(closed_but_provisional).meta.from_cache


def test_merchant_isolation_in_the_engine(env: Env) -> None:
    seed_pages(env)
    result = env.engine.report(report(env, merchant_id=env.other, dimensions=("pagePath",)))
    assert result.rows == ()
    assert result.totals.values == (0,)
    with pytest.raises(MerchantUnknown):
        env.engine.report(report(env, merchant_id="nobody-here"))


def test_empty_range_has_one_zero_totals_row(env: Env) -> None:
    result = env.engine.report(report(env, metrics=("sessions", "totalRevenue", "engagementRate", "activeUsers")))
    assert [r.values for r in result.rows] == [(0, Decimal("0E-6"), 0.0, 0)]
    assert result.row_count == 1


def test_errors_name_the_problem(env: Env) -> None:
    with pytest.raises(UnknownName, match=r"'pageViews'.*valid metrics:.*screenPageViews"):
        env.engine.report(report(env, metrics=("pageViews",)))
    with pytest.raises(UnknownName, match=r"'page'.*valid dimensions:.*pagePath"):
        env.engine.report(report(env, dimensions=("page",)))
    with pytest.raises(Incompatible):
        env.engine.report(report(env, dimensions=("pagePath", "eventName")))
    with pytest.raises(InvalidQuery, match="regular expression"):
        env.engine.report(report(env, dimension_filter=StringMatch("pagePath", MatchType.FULL_REGEXP, "(")))
    with pytest.raises(InvalidQuery, match="repeat"):
        env.engine.report(report(env, metrics=("sessions", "sessions")))
    with pytest.raises(InvalidQuery, match="date range"):
        env.engine.report(report(env, dimension_filter=StringMatch("date", MatchType.EXACT, "20260110")))
    with pytest.raises(InvalidQuery, match="limit"):
        env.engine.report(report(env, limit=-1))
    assert env.engine.report(report(env, limit=10**9)).meta.limit == 100_000


def test_deadline_is_checked_between_steps(env: Env) -> None:
    seed_pages(env)
    with pytest.raises(DeadlineExceeded):
        env.engine.report(report(env, dimensions=("pagePath",)), Deadline(lambda: 0.0))


def test_rolled_up_dimension_is_noted(env: Env) -> None:
    start = day_start(date(2026, 1, 10))
    env.write(
        [
            rollup_row(env.merchant, "source_medium", Grain.DAY, start, ("google", "organic"), sessions=3, users=["a"]),
            rollup_row(
                env.merchant, "source_medium", Grain.DAY, start, ("google", "cpc"), sessions=2, users=["a", "b"]
            ),
            rollup_row(env.merchant, "source_medium", Grain.DAY, start, ("bing", "organic"), sessions=1),
        ]
    )
    result = env.engine.report(report(env, dimensions=("sessionSource",), metrics=("sessions", "totalUsers")))
    assert [(r.dimensions, r.values) for r in result.rows] == [(("google",), (5, 2)), (("bing",), (1, 0))]
    assert result.meta.cube == "source_medium"
    assert result.meta.notes and "medium" in result.meta.notes[0]
    joined = env.engine.report(report(env, dimensions=("sessionSourceMedium",)))
    assert [r.dimensions[0] for r in joined.rows] == ["google / organic", "google / cpc", "bing / organic"]


def test_metadata_and_compatibility(env: Env) -> None:
    meta = env.engine.metadata(env.merchant)
    assert meta.time_zone == ZONE
    assert meta.currency_code == "INR"
    assert {"activeUsers", "totalRevenue", "engagementRate"} <= {m.api_name for m in meta.metrics}
    assert {"pagePath", "country", "minutesAgo"} <= {d.api_name for d in meta.dimensions}
    ok = env.engine.check_compatibility(CompatibilityRequest(env.merchant, ("date", "pagePath"), ("sessions",)))
    assert ok.compatible
    assert ok.cube == "page"
    bad = env.engine.check_compatibility(
        CompatibilityRequest(
            env.merchant,
            ("pagePath", "eventName", "nope"),
            ("sessions", "bogus"),
            StringMatch("country", MatchType.EXACT, "India"),
        )
    )
    assert not bad.compatible
    assert [d.compatible for d in bad.dimensions] == [False, False, False]
    assert [m.compatible for m in bad.metrics] == [True, False]
    assert len(bad.reasons) == 3


def test_config_caps(env: Env, tmp_path: Path) -> None:
    engine = QueryEngine(
        env.store, env.registry, SqliteControlStore(tmp_path / "control.sqlite3"),
        config=EngineConfig(max_limit=5, cache_entries=0), clock=lambda: NOW,
    )  # fmt: skip
    seed_pages(env)
    request = report(env, dimensions=("pagePath",), limit=50)
    assert engine.report(request).meta.limit == 5
    assert not engine.report(request).meta.from_cache  # cache disabled
