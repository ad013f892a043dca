"""Unit tests of the aggregator loop (no network, no Dask, no engine process): the commit comes only after the
store writes, failures are retried without committing, and the pure helpers (local days, window closing, task
sizing, settings). The stores are the embedded SQLite adapters behind recording proxies; the consumer is a fake
over a list of records (the contract suites cover the real adapters)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import runtime
from aggregator.compute import aggregate_day
from aggregator.cubes import DEFAULT_CUBES
from aggregator.eventstore import SqliteEventStore, day_number
from aggregator.loop_days import local_days
from aggregator.loop_plan import DAY_OVERHEAD_EVENTS, closed_before_us, next_due_us, plan_tasks
from aggregator.loop_runners import InlineRunner
from aggregator.loop_tasks import Resources
from aggregator.runtime import Aggregator, AggregatorDeps
from aggregator.settings import AggregatorSettings, CrashAt, CrashPoint
from gnomon.control import SqliteControlStore
from gnomon.eventlog import Position, Record, Stream
from gnomon.rollups import Grain, RollupRow, RollupUnavailable
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings, SettingsError
from gnomon.telemetry import Exporter, TelemetrySettings, setup_telemetry
from tests.integration.test_aggregator_harness import event, logged

T = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


class Journal(list[str]):
    pass


@dataclass
class FakeConsumer:
    """Delivers `records` in polls of at most `max_records`; journals commits."""

    records: list[Record]
    journal: Journal
    committed: list[Record] = field(default_factory=list)
    delivered: int = 0

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        out = self.records[self.delivered : self.delivered + max_records]
        self.delivered += len(out)
        return out

    def commit(self, records: Sequence[Record]) -> None:
        self.journal.append(f"commit:{len(records)}")
        self.committed.extend(records)

    def lag(self) -> int:
        return len(self.records) - len(self.committed)

    def close(self) -> None:
        pass


class Recording:
    """Delegates to `inner`, journaling the calls named in `names`; `fail` makes calls of a name raise."""

    def __init__(self, inner: Any, journal: Journal, names: set[str]) -> None:
        self._inner = inner
        self._journal = journal
        self._names = names
        self.fail: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._names:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                self._journal.append(f"fail:{name}")
                raise RollupUnavailable(f"{name} failed on purpose")
            self._journal.append(name)
            return attr(*args, **kwargs)

        return call


@dataclass
class Loop:
    aggregator: Aggregator
    consumer: FakeConsumer
    journal: Journal
    events: Recording
    rollups: Recording
    telemetry: Any


def record(offset: int, payload: bytes) -> Record:
    return Record(Stream.EVENTS, Position(0, offset), "m", payload, {}, T)


@pytest.fixture
def make_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(runtime, "RETRY_FIRST_S", 0.01)
    closing: list[Any] = []

    def make(payloads: list[bytes], **overrides: Any) -> Loop:
        journal = Journal()
        common = CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)})
        control = SqliteControlStore(tmp_path / "control.sqlite3")
        if control.get_merchant("shop-a") is None:
            control.create_merchant("shop-a", "Asia/Kolkata", "EUR", "shop-a")
        events = Recording(SqliteEventStore(tmp_path / "events.sqlite3"), journal, {"upsert", "put_marks"})
        rollups = Recording(SqliteRollupStore(tmp_path / "rollups.sqlite3"), journal, {"replace_window_columns"})
        versions = SqliteVersionRegistry(tmp_path / "rollups.sqlite3")
        consumer = FakeConsumer([record(i + 1, p) for i, p in enumerate(payloads)], journal)
        telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY))
        runner = InlineRunner(Resources(events, rollups, aggregate_day, DEFAULT_CUBES))
        settings = AggregatorSettings(common=common, flush_interval_s=0.05, idle_watermark=False, **overrides)
        deps = AggregatorDeps(consumer, events, control, versions, runner, telemetry)
        closing.extend([control.close, versions.close, events.close, rollups.close, telemetry.shutdown])
        return Loop(Aggregator(settings, deps), consumer, journal, events, rollups, telemetry)

    yield make
    for fn in closing:
        fn()


def traffic_payloads(n_batches: int) -> list[bytes]:
    return [
        logged(
            "shop-a",
            [event(f"b{b}-{i}", T + timedelta(minutes=7 * b + i), client=f"c{i % 3}") for i in range(5)],
            T + timedelta(minutes=7 * b + 6),
        )
        for b in range(n_batches)
    ]


def test_every_cycle_commits_only_after_its_store_writes(make_loop: Any) -> None:
    loop = make_loop(traffic_payloads(6), max_records=2)
    for _ in range(3):
        result = loop.aggregator.cycle()
        assert result.committed and result.stats.records == 2
    cycles = "|".join(loop.journal).split("|commit:2")
    assert len(cycles) == 4 and cycles[-1] == ""
    for entries in cycles[:-1]:
        names = entries.strip("|").split("|")
        assert names[0] == "upsert" and "replace_window_columns" in names and names[-1] == "put_marks", names
    assert len(loop.consumer.committed) == 6


def test_a_failing_write_is_retried_and_the_commit_waits_for_it(make_loop: Any) -> None:
    loop = make_loop(traffic_payloads(2))
    loop.rollups.fail["replace_window_columns"] = 3
    result = loop.aggregator.cycle()
    assert result.committed
    journal = list(loop.journal)
    assert journal.count("fail:replace_window_columns") == 3
    assert journal[-1] == "commit:2" and journal.count("commit:2") == 1
    last_failure = max(i for i, name in enumerate(journal) if name.startswith("fail"))
    assert "replace_window_columns" in journal[last_failure:]
    rows = loop.aggregator.deps.events.load_day("shop-a", date(2026, 6, 1))
    assert len(rows) == 10  # the retried upsert stored each event once


def test_stopping_during_retries_commits_nothing(make_loop: Any) -> None:
    loop = make_loop(traffic_payloads(2))
    loop.events.fail["upsert"] = 1_000
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    result = loop.aggregator.cycle(stop)
    assert not result.committed
    assert not any(name.startswith("commit") for name in loop.journal)
    assert loop.consumer.committed == []


def test_unknown_merchants_and_undecodable_records_are_skipped_but_committed(make_loop: Any) -> None:
    payloads = [*traffic_payloads(1), logged("nobody", [event("x", T)], T), b"\xff\xfe not protobuf"]
    loop = make_loop(payloads)
    stats = loop.aggregator.cycle().stats
    assert (stats.records, stats.events, stats.unknown_events, stats.undecodable) == (3, 5, 1, 1)
    assert loop.consumer.committed == loop.consumer.records
    assert [p.value for p in loop.telemetry.metric_points("gnomon.aggregator.unknown_merchant.events")] == [1]
    assert [p.value for p in loop.telemetry.metric_points("gnomon.aggregator.undecodable.records")] == [1]


def test_duplicates_and_metrics(make_loop: Any) -> None:
    payload = traffic_payloads(1)[0]
    loop = make_loop([payload, payload])
    stats = loop.aggregator.cycle().stats
    assert (stats.events, stats.duplicates) == (5, 5)
    assert stats.freshness_s is not None and stats.freshness_s > 0
    points = {
        name: [p.value for p in loop.telemetry.metric_points(name)]
        for name in ("gnomon.aggregator.events", "gnomon.aggregator.duplicates.dropped")
    }
    assert points == {"gnomon.aggregator.events": [5], "gnomon.aggregator.duplicates.dropped": [5]}
    assert loop.telemetry.metric_points("gnomon.aggregator.consumer.lag")[0].value == 0
    assert loop.telemetry.metric_points("gnomon.aggregator.freshness")[0].count == 1


def test_unchanged_windows_are_not_rewritten_and_closes_are_counted(make_loop: Any) -> None:
    payloads = traffic_payloads(3)
    loop = make_loop(payloads[:2])
    loop.aggregator.cycle()
    first = loop.journal.count("replace_window_columns")
    assert first >= 2 * len(DEFAULT_CUBES)  # every window of the day written once (HOUR + DAY of each cube)
    loop.consumer.records.append(
        record(3, logged("shop-a", [event("late", T + timedelta(hours=5))], T + timedelta(hours=5)))
    )
    stats = loop.aggregator.cycle().stats
    # new hour window + the day window of every cube, and the hours that just closed; not the others again
    assert 0 < stats.windows_written < first + 2 * len(DEFAULT_CUBES)
    assert stats.window_closes > 0
    rows = loop.aggregator.deps.events.load_day("shop-a", date(2026, 6, 1))
    assert len(rows) == 11


# ---- pure helpers ---------------------------------------------------------------------------------------------

ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
         "Pacific/Kiritimati", "Etc/GMT+12", "America/Santiago"]  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ZONES), st.integers(1_700_000_000_000_000, 1_900_000_000_000_000)),
        min_size=1,
        max_size=50,
    )
)
def test_local_days_match_zoneinfo_per_event(items: list[tuple[str, int]]) -> None:
    merchants = np.array([z for z, _ in items], dtype=object)
    times = np.array([t for _, t in items], dtype=np.int64)
    got = local_days(pd.Series(merchants), times, {z: z for z in ZONES})
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    want = [day_number((epoch + timedelta(microseconds=int(t))).astimezone(ZoneInfo(z)).date()) for z, t in items]
    assert got.tolist() == want


def test_local_days_at_midnight_boundaries() -> None:
    # Kolkata midnight is 18:30 UTC: the UTC hour 18:00-19:00 holds two local days.
    t = datetime(2026, 6, 1, 18, 29, 59, 999999, tzinfo=UTC)
    times = np.array([int((x - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
                      for x in (t, t + timedelta(microseconds=1))], dtype=np.int64)  # fmt: skip
    got = local_days(pd.Series(["k", "k"]), times, {"k": "Asia/Kolkata"})
    assert got.tolist() == [day_number(date(2026, 6, 1)), day_number(date(2026, 6, 2))]


def test_next_due_is_the_next_window_end_plus_lateness() -> None:
    def us(x: datetime) -> int:
        return int((x - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))

    lateness = 300_000_000
    day = date(2026, 6, 1)
    # UTC: closed_before 10:20 -> next window ends 11:00
    assert next_due_us(day, "UTC", us(T + timedelta(minutes=20)), lateness) == us(T + timedelta(hours=1)) + lateness
    # exactly on a boundary: the window ending there is closed, the next one ends an hour later
    assert next_due_us(day, "UTC", us(T), lateness) == us(T + timedelta(hours=1)) + lateness
    # Kolkata windows end at hh:30 UTC
    assert next_due_us(day, "Asia/Kolkata", us(T), lateness) == us(T + timedelta(minutes=30)) + lateness
    # before the day: its first hour; after the day: nothing
    assert next_due_us(day, "UTC", us(T - timedelta(days=3)), 0) == us(datetime(2026, 6, 1, 1, tzinfo=UTC))
    assert next_due_us(day, "UTC", us(datetime(2026, 6, 2, tzinfo=UTC)), lateness) is None
    # the last window of the day is the day window's end (23:00-24:00)
    last = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert next_due_us(day, "UTC", us(last), 0) == us(datetime(2026, 6, 2, tzinfo=UTC))
    assert closed_before_us(10_500_000 + lateness, lateness) == 10_000_000


def test_plan_tasks_balances_and_bounds_the_task_count() -> None:
    items = list(range(10))
    weights = {i: (i + 1) * 100_000 for i in items}
    groups = plan_tasks(items, weights.__getitem__, slots=4, task_events=200_000)
    assert len(groups) == 4 and sorted(i for g in groups for i in g) == items
    loads = [sum(weights[i] + DAY_OVERHEAD_EVENTS for i in g) for g in groups]
    assert max(loads) - min(loads) <= max(weights.values())
    assert plan_tasks(items, lambda i: 10, slots=4, task_events=200_000) == [items]  # small work: one task
    assert plan_tasks([], lambda i: 1, slots=4, task_events=1) == []


def test_settings_and_crash_hook_parsing() -> None:
    assert CrashAt.parse("after_write:3") == CrashAt(CrashPoint.AFTER_WRITE, 3)
    assert CrashAt.parse("mid_write") == CrashAt(CrashPoint.MID_WRITE, 1)
    with pytest.raises(SettingsError, match="one of"):
        CrashAt.parse("nowhere")
    with pytest.raises(SettingsError, match="positive"):
        CrashAt.parse("after_write:0")
    env = {"GNOMON_AGGREGATOR_FLUSH_MS": "500", "GNOMON_AGGREGATOR_KEY_EVENTS": "purchase, sign_up",
           "GNOMON_AGGREGATOR_IDLE_WATERMARK": "0", "GNOMON_AGGREGATOR_CRASH_AT": "during_close:2"}  # fmt: skip
    s = AggregatorSettings.from_env(env)
    assert (s.flush_interval_s, s.key_events, s.idle_watermark) == (0.5, frozenset({"purchase", "sign_up"}), False)
    assert s.crash_at == CrashAt(CrashPoint.DURING_CLOSE, 2)
    with pytest.raises(SettingsError, match="GNOMON_AGGREGATOR_FLUSH_MS"):
        AggregatorSettings.from_env({"GNOMON_AGGREGATOR_FLUSH_MS": "abc"})


def test_rows_of_a_day_go_to_the_rollup_store(make_loop: Any) -> None:
    loop = make_loop(traffic_payloads(2))
    loop.aggregator.cycle()
    store = loop.rollups._inner
    rows: list[RollupRow] = store.read("shop-a", "total", Grain.DAY, T - timedelta(days=1), T + timedelta(days=1), 1)
    assert [r.metrics.events for r in rows] == [10]
