"""One contract suite for the EventStore port, run against SQLite and Scylla/Cassandra.

The CQL run uses one fresh keyspace per test session (dropped at the end); tests stay independent by using their
own random merchant ids. The throughput test prints events/s (it asserts nothing about speed).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from aggregator.decode import decode_batches
from aggregator.eventstore import (
    DAY,
    DayMark,
    EventStore,
    EventStoreInvalid,
    SqliteEventStore,
    day_number,
    day_of,
)
from aggregator.eventstore.cql_store import CqlEventStore
from aggregator.frame import EVENT_BYTES, EVENT_ID, EVENT_TIME_US, PAGE_PATH, PAGE_TITLE, RAW_COLUMNS, RECEIVED_TIME_US
from gnomon.rollups.cql_engine import CqlEngine
from gnomon.v1 import event_pb2
from tests.conftest import RealEngines

DAY1 = date(2026, 3, 10)
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@dataclass
class Backend:
    name: str
    store: EventStore
    reopen: Callable[[], EventStore]  # another store over the same storage


@pytest.fixture(scope="module")
def eventstore_engine(real_engines: RealEngines) -> Iterator[CqlEngine]:
    cql = replace(real_engines.settings.cql, replication_factor=1)
    engine = CqlEngine(cql, keyspace=f"gnomon_events_test_{uuid.uuid4().hex[:10]}")
    try:
        yield engine
    finally:
        engine.drop_keyspace()
        engine.close()


@pytest.fixture(params=["sqlite", pytest.param("cql", marks=pytest.mark.engines)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "cql":
        engine: CqlEngine = request.getfixturevalue("eventstore_engine")
        yield Backend("cql", CqlEventStore(engine), lambda: CqlEventStore(engine))
        return
    path = tmp_path / "eventstore.sqlite3"
    store = SqliteEventStore(path)
    opened: list[SqliteEventStore] = [store]

    def reopen() -> EventStore:
        again = SqliteEventStore(path)
        opened.append(again)
        return again

    try:
        yield Backend("sqlite", store, reopen)
    finally:
        for s in opened:
            s.close()


def merchant() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def batch(
    merchant_id: str,
    ids: list[str],
    *,
    start: datetime = T0,
    step: timedelta = timedelta(minutes=1),
    received: datetime | None = None,
    title: str = "t",
) -> bytes:
    b = event_pb2.LoggedBatch(merchant_id=merchant_id)
    b.received_time.FromDatetime(received or start + timedelta(hours=1))
    for i, event_id in enumerate(ids):
        e = b.events.add(event_id=event_id, name="page_view", client_id=f"c{i % 3}")
        e.event_time.FromDatetime(start + i * step)
        e.page.url = f"https://shop.example/p/{i}?q=1"
        e.page.title = title
        e.params["k"] = "v"
    return b.SerializeToString()


def frame_of(*payloads: bytes, day: date = DAY1, with_bytes: bool = True) -> pd.DataFrame:
    frame = decode_batches(list(payloads), with_event_bytes=with_bytes)
    frame[DAY] = day_number(day)
    return frame


def test_upsert_then_load_day_returns_each_event_once(backend: Backend) -> None:
    m = merchant()
    frame = frame_of(batch(m, ["b", "a", "c"]))
    backend.store.upsert(frame)
    got = backend.store.load_day(m, DAY1)
    assert list(got.columns) == list(RAW_COLUMNS)
    assert got[EVENT_ID].tolist() == ["b", "a", "c"]  # ordered by (event_time_us, event_id)
    expected = frame[list(RAW_COLUMNS)].sort_values([EVENT_TIME_US, EVENT_ID], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)
    assert got[PAGE_PATH].tolist() == ["/p/0", "/p/1", "/p/2"]


def test_upsert_is_idempotent_and_dedups_by_event_id(backend: Backend) -> None:
    m = merchant()
    first = frame_of(batch(m, ["e1", "e2", "e3"]))
    backend.store.upsert(first)
    backend.store.upsert(first)
    backend.store.upsert(frame_of(batch(m, ["e2", "e3", "e4"])))  # two already stored
    got = backend.store.load_day(m, DAY1)
    assert sorted(got[EVENT_ID]) == ["e1", "e2", "e3", "e4"]


def test_in_frame_duplicates_are_stored_once(backend: Backend) -> None:
    m = merchant()
    payload = batch(m, ["x", "y"])
    backend.store.upsert(frame_of(payload, payload))
    assert sorted(backend.store.load_day(m, DAY1)[EVENT_ID]) == ["x", "y"]


@pytest.mark.parametrize("order", ["early_first", "late_first"])
def test_the_later_received_copy_wins_whatever_the_order(backend: Backend, order: str) -> None:
    m = merchant()
    early = frame_of(batch(m, ["e"], received=T0 + timedelta(hours=1), title="early"))
    late = frame_of(batch(m, ["e"], received=T0 + timedelta(hours=2), title="late"))
    for frame in (early, late) if order == "early_first" else (late, early):
        backend.store.upsert(frame)
    got = backend.store.load_day(m, DAY1)
    assert got[PAGE_TITLE].tolist() == ["late"]
    assert got[RECEIVED_TIME_US].tolist() == [late[RECEIVED_TIME_US].iloc[0]]


def test_same_event_id_with_another_time_of_the_same_day_is_one_event(backend: Backend) -> None:
    m = merchant()
    backend.store.upsert(frame_of(batch(m, ["e"], start=T0, received=T0 + timedelta(hours=9), title="a")))
    later = T0 + timedelta(hours=5)  # another hour bucket (CQL partition) of the same day
    backend.store.upsert(frame_of(batch(m, ["e"], start=later, received=T0 + timedelta(hours=10), title="b")))
    got = backend.store.load_day(m, DAY1)
    assert got[PAGE_TITLE].tolist() == ["b"]


def test_days_and_merchants_are_separate(backend: Backend) -> None:
    m1, m2 = merchant(), merchant()
    evening = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)  # DAY1 in UTC, the next day in UTC+14
    backend.store.upsert(frame_of(batch(m1, ["a"], start=evening)))
    backend.store.upsert(frame_of(batch(m1, ["a"], start=evening), day=DAY1 + timedelta(days=1)))
    backend.store.upsert(frame_of(batch(m2, ["b"], start=evening)))
    assert backend.store.load_day(m1, DAY1)[EVENT_ID].tolist() == ["a"]
    assert backend.store.load_day(m1, DAY1 + timedelta(days=1))[EVENT_ID].tolist() == ["a"]
    assert backend.store.load_day(m2, DAY1)[EVENT_ID].tolist() == ["b"]
    assert backend.store.load_day(m2, DAY1 + timedelta(days=1)).empty


def test_local_day_may_span_utc_hours_far_from_utc_midnight(backend: Backend) -> None:
    """A UTC-12 day ends at 12:00 UTC the next day; a UTC+14 day starts at 10:00 UTC the day before."""
    m = merchant()
    late = datetime(2026, 3, 11, 11, 59, tzinfo=UTC)
    early = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    backend.store.upsert(frame_of(batch(m, ["late"], start=late), batch(m, ["early"], start=early)))
    assert backend.store.load_day(m, DAY1)[EVENT_ID].tolist() == ["early", "late"]


def test_frames_without_event_bytes_are_encoded(backend: Backend) -> None:
    m = merchant()
    frame = frame_of(batch(m, ["a", "b"]), with_bytes=False)
    assert EVENT_BYTES not in frame.columns
    backend.store.upsert(frame)
    got = backend.store.load_day(m, DAY1)
    pd.testing.assert_frame_equal(got, frame[list(RAW_COLUMNS)])


def test_empty_and_unknown(backend: Backend) -> None:
    backend.store.upsert(frame_of())
    got = backend.store.load_day(merchant(), DAY1)
    assert got.empty
    assert list(got.columns) == list(RAW_COLUMNS)


def test_invalid_input_is_refused(backend: Backend) -> None:
    frame = frame_of(batch(merchant(), ["a"])).drop(columns=[DAY])
    with pytest.raises(EventStoreInvalid, match="day"):
        backend.store.upsert(frame)
    far = frame_of(batch(merchant(), ["a"]), day=DAY1 + timedelta(days=2))  # no zone makes T0 that local day
    with pytest.raises(EventStoreInvalid, match="local day"):
        backend.store.upsert(far)
    with pytest.raises(EventStoreInvalid):
        backend.store.load_day("", DAY1)


def test_stored_events_survive_reopening(backend: Backend) -> None:
    m = merchant()
    backend.store.upsert(frame_of(batch(m, ["a", "b"])))
    again = backend.reopen()
    assert sorted(again.load_day(m, DAY1)[EVENT_ID]) == ["a", "b"]


def test_marks_add_remove_list(backend: Backend) -> None:
    m = merchant()
    a, b, c = DayMark(100, m, DAY1), DayMark(50, m, DAY1), DayMark(70, m, DAY1 + timedelta(days=1))
    backend.store.put_marks([a, b, c], [])
    backend.store.put_marks([a], [])  # idempotent
    mine = [x for x in backend.store.marks() if x.merchant_id == m]
    assert mine == [b, c, a]
    backend.store.put_marks([DayMark(60, m, DAY1)], [b, DayMark(1, m, DAY1)])  # removing a missing mark: no-op
    mine = [x for x in backend.reopen().marks() if x.merchant_id == m]
    assert mine == [DayMark(60, m, DAY1), c, a]
    backend.store.put_marks([], [a, c, DayMark(60, m, DAY1)])
    assert [x for x in backend.store.marks() if x.merchant_id == m] == []


def test_watermark_only_moves_forward(backend: Backend) -> None:
    name = f"group-{uuid.uuid4().hex[:8]}"
    assert backend.store.load_watermark(name) == 0
    backend.store.save_watermark(name, 2_000)
    backend.store.save_watermark(name, 1_000)
    assert backend.store.load_watermark(name) == 2_000
    backend.store.save_watermark(name, 3_000)
    assert backend.reopen().load_watermark(name) == 3_000


def test_day_numbers_roundtrip() -> None:
    for d in (date(1970, 1, 1), DAY1, date(2100, 12, 31)):
        assert day_of(day_number(d)) == d
    assert day_number(date(1970, 1, 2)) == 1


def test_concurrent_upserts_of_the_same_events_converge(backend: Backend) -> None:
    m = merchant()
    ids = [f"e{i}" for i in range(200)]
    frame = frame_of(batch(m, ids, step=timedelta(seconds=7)))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            backend.store.upsert(frame)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(backend.store.load_day(m, DAY1)) == 200


def test_throughput(backend: Backend) -> None:
    m = merchant()
    payloads = [batch(m, [f"b{j}-e{i}" for i in range(500)], step=timedelta(seconds=1)) for j in range(10)]
    frame = frame_of(*payloads)
    started = time.perf_counter()
    backend.store.upsert(frame)
    stored = time.perf_counter() - started
    started = time.perf_counter()
    loaded = backend.store.load_day(m, DAY1)
    load = time.perf_counter() - started
    assert len(loaded) == 5000
    print(f"\n[{backend.name}] upsert {len(frame) / stored:,.0f} events/s, load_day {len(loaded) / load:,.0f} events/s")


def test_day_fingerprint_changes_exactly_when_the_day_changes(backend: Backend) -> None:
    m = merchant()
    store = backend.store
    assert store.day_fingerprint(m, DAY1) == (0, 0)
    store.upsert(frame_of(batch(m, ["a", "b"], received=T0 + timedelta(hours=1))))
    first = store.day_fingerprint(m, DAY1)
    assert first[0] == 2
    store.upsert(frame_of(batch(m, ["a", "b"], received=T0 + timedelta(hours=1))))  # the same events again
    assert store.day_fingerprint(m, DAY1) == first
    store.upsert(frame_of(batch(m, ["a"], received=T0 + timedelta(hours=3), title="later copy")))
    replaced = store.day_fingerprint(m, DAY1)
    assert replaced[0] == 2 and replaced != first
    store.upsert(frame_of(batch(m, ["c"])))
    assert store.day_fingerprint(m, DAY1)[0] == 3
    assert store.day_fingerprint(m, DAY1 + timedelta(days=1)) == (0, 0)
