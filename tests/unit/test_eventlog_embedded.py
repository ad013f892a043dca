"""What only the embedded event log has to prove: several OS processes on one SQLite file, crash safety,
the single-active-member rule of consumer groups, and its bounded writer queue."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gnomon.eventlog import (
    LogBackpressure,
    LogUnavailable,
    OutgoingMessage,
    Position,
    Record,
    Stream,
    open_event_log,
)
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.eventlog.sqlite_schema import DB_NAME
from gnomon.settings import CommonSettings

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "eventlog"


@pytest.fixture
def event_log(log_dir: Path) -> Iterator[EmbeddedEventLog]:
    opened = EmbeddedEventLog(log_dir)
    yield opened
    opened.close()


def drain(consumer: object, quiet_s: float = 1.0) -> list[Record]:
    out: list[Record] = []
    while batch := consumer.poll(1000, quiet_s):  # type: ignore[attr-defined]
        out.extend(batch)
    return out


# ---- several processes -----------------------------------------------------------------------------------


def _write_in_child(directory: str, count: int) -> None:
    """Runs in a spawned process: publish `count` messages on keys child-0..9, then close (flushes)."""
    child_log = EmbeddedEventLog(directory)
    futures = []
    for i in range(count):
        if i % 100 == 0:
            time.sleep(0.005)  # spread the writes over the parent's reads
        while True:
            try:
                futures.append(child_log.publish(Stream.EVENTS, f"child-{i % 10}", f"child:{i}".encode()))
                break
            except LogBackpressure:
                time.sleep(0.001)
    child_log.close()
    assert all(f.result() for f in futures)


def test_another_process_writes_while_this_one_writes_and_reads(event_log: EmbeddedEventLog) -> None:
    child_count, own_count = 3000, 1000
    child = SPAWN.Process(target=_write_in_child, args=(str(event_log.directory), child_count))
    child.start()
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    got: list[Record] = []
    own: list[Future[Position]] = []
    deadline = time.monotonic() + 60
    while len(got) < child_count + own_count and time.monotonic() < deadline:
        if len(own) < own_count:
            own.extend(
                event_log.publish(Stream.EVENTS, f"parent-{i % 3}", f"parent:{i}".encode())
                for i in range(len(own), min(own_count, len(own) + 50))
            )
        batch = consumer.poll(500, 0.2)
        consumer.commit(batch)
        got.extend(batch)
    child.join(30)
    assert child.exitcode == 0
    payloads = [r.payload.decode() for r in got]
    assert len(payloads) == len(set(payloads)) == child_count + own_count
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in got:
        per_key[r.key].append(int(r.payload.split(b":")[1]))
    assert all(seqs == sorted(seqs) for seqs in per_key.values())
    assert consumer.lag() == 0


KILLED_WRITER = r"""
import sys, threading, time
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.eventlog.port import LogBackpressure, Stream

event_log = EmbeddedEventLog(sys.argv[1], max_in_flight=64)
lock = threading.Lock()

def report(i):
    def done(future):
        position = future.result()
        with lock:
            sys.stdout.write(f"{position.partition} {position.offset} {i}\n")
            sys.stdout.flush()
    return done

i = 0
while True:
    try:
        future = event_log.publish(Stream.EVENTS, f"m-{i % 5}", b"payload-%d|" % i + b"." * 3000)
    except LogBackpressure:
        time.sleep(0.0005)
        continue
    future.add_done_callback(report(i))
    i += 1
"""


def test_kill_9_of_a_writer_loses_no_acknowledged_message(log_dir: Path) -> None:
    EmbeddedEventLog(log_dir).close()  # create the schema first, so the child starts publishing at once
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(log_dir)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acked: list[tuple[Position, int]] = []
    try:
        for line in child.stdout:
            partition, offset, seq = line.split()
            acked.append((Position(int(partition), int(offset)), int(seq)))
            if len(acked) >= 2000:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-stream: more publishes are queued and being written
        rest, _ = child.communicate(timeout=30)
    for line in rest.splitlines():
        fields = line.split()
        if len(fields) == 3:  # a line cut by the kill is ignored: its message was not reported as acked
            acked.append((Position(int(fields[0]), int(fields[1])), int(fields[2])))
    assert len(acked) >= 2000

    reopened = EmbeddedEventLog(log_dir)
    try:
        stored = {r.position: r.payload for r in drain(reopened.subscribe(Stream.EVENTS, "verify"))}
        for position, i in acked:
            assert stored[position].startswith(b"payload-%d|" % i), f"acked message {i} at {position} lost"
        conn = reopened.connect()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
    finally:
        reopened.close()


def _hold_group_in_child(directory: str, active: multiprocessing.synchronize.Event) -> None:
    """Runs in a spawned process: become the group's active member, commit 10 records, then hang."""
    child_log = EmbeddedEventLog(directory)
    consumer = child_log.subscribe(Stream.EVENTS, "aggregator")
    first = consumer.poll(10, 10.0)
    consumer.commit(first)
    active.set()
    time.sleep(600)


def test_standby_takes_over_when_the_active_process_is_killed(event_log: EmbeddedEventLog) -> None:
    positions = [event_log.publish(Stream.EVENTS, "m-1", b"%d" % i).result() for i in range(30)]
    active = SPAWN.Event()
    child = SPAWN.Process(target=_hold_group_in_child, args=(str(event_log.directory), active))
    child.start()
    try:
        assert active.wait(30)
        standby = event_log.subscribe(Stream.EVENTS, "aggregator")
        assert standby.poll(100, 0.5) == []
        assert not standby.active
    finally:
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
    got = drain(standby)
    assert standby.active
    assert [r.position for r in got] == positions[10:]  # resumes after what the dead member committed


# ---- consumer groups in one process ----------------------------------------------------------------------


def test_standby_member_takes_over_after_close_from_the_committed_cursor(event_log: EmbeddedEventLog) -> None:
    for future in [event_log.publish(Stream.EVENTS, "m-1", b"%d" % i) for i in range(20)]:
        future.result(timeout=10)  # poll returns what is durable so far: wait for all twenty
    first = event_log.subscribe(Stream.EVENTS, "aggregator")
    second = event_log.subscribe(Stream.EVENTS, "aggregator")
    got = first.poll(5, 5.0)
    assert len(got) == 5
    assert second.poll(5, 0.3) == []
    first.commit(got)
    assert second.lag() == 15
    first.close()
    rest = drain(second)
    assert [r.payload for r in rest] == [b"%d" % i for i in range(5, 20)]


# ---- the writer ------------------------------------------------------------------------------------------


def _lock_database(path: Path) -> sqlite3.Connection:
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock until ROLLBACK
    return blocker


def test_backpressure_is_exact_while_the_writer_waits(log_dir: Path) -> None:
    event_log = EmbeddedEventLog(log_dir, max_in_flight=3, max_in_flight_bytes=10_000)
    blocker = _lock_database(log_dir / DB_NAME)
    try:
        futures = [event_log.publish(Stream.EVENTS, "m", b"x" * 100) for _ in range(3)]
        with pytest.raises(LogBackpressure):
            event_log.publish(Stream.EVENTS, "m", b"x")
        assert not any(f.done() for f in futures)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [f.result(timeout=10).offset for f in futures] == [1, 2, 3]
    event_log.close()


def test_bytes_budget_admits_one_oversized_message_at_a_time(log_dir: Path) -> None:
    event_log = EmbeddedEventLog(log_dir, max_in_flight_bytes=1000)
    blocker = _lock_database(log_dir / DB_NAME)
    try:
        big = event_log.publish(Stream.EVENTS, "m", b"x" * 5000)
        with pytest.raises(LogBackpressure):
            event_log.publish(Stream.EVENTS, "m", b"x")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert big.result(timeout=10) == Position(big.result().partition, 1)
    event_log.close()


def test_writes_fail_with_log_unavailable_when_the_database_stays_locked(log_dir: Path) -> None:
    event_log = EmbeddedEventLog(log_dir, busy_timeout_s=0.2)
    blocker = _lock_database(log_dir / DB_NAME)
    try:
        future = event_log.publish(Stream.EVENTS, "m", b"x")
        with pytest.raises(LogUnavailable, match="locked"):
            future.result(timeout=10)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert event_log.publish(Stream.EVENTS, "m", b"x").result(timeout=10).offset == 1  # the writer lives on
    event_log.close()


def test_publish_many_is_all_or_nothing(log_dir: Path) -> None:

    event_log = EmbeddedEventLog(log_dir, max_in_flight=4)
    blocker = _lock_database(log_dir / DB_NAME)
    try:
        first = event_log.publish_many(Stream.BAD_EVENTS, [OutgoingMessage("", b"a"), OutgoingMessage("", b"b")])
        with pytest.raises(LogBackpressure):
            event_log.publish_many(Stream.BAD_EVENTS, [OutgoingMessage("", b"c")] * 3)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [f.result(timeout=10).offset for f in first] == [1, 2]
    event_log.close()


def test_concurrent_publishers_get_distinct_dense_offsets(event_log: EmbeddedEventLog) -> None:
    results: list[Future[Position]] = []
    lock = threading.Lock()

    def publish(n: int) -> None:
        for i in range(500):
            while True:
                try:
                    f = event_log.publish(Stream.EVENTS, "one-key", b"%d-%d" % (n, i))
                    break
                except LogBackpressure:
                    time.sleep(0.001)
            with lock:
                results.append(f)

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait(results, timeout=30)
    offsets = sorted(f.result().offset for f in results)
    assert offsets == list(range(1, 2001))


# ---- schema, times, settings -----------------------------------------------------------------------------


def test_an_existing_log_keeps_its_partition_count(log_dir: Path) -> None:
    EmbeddedEventLog(log_dir, partitions=3).close()
    reopened = EmbeddedEventLog(log_dir, partitions=8)
    assert reopened.partition_count(Stream.EVENTS) == 3
    reopened.close()


def test_publish_times_never_decrease_within_a_partition(event_log: EmbeddedEventLog) -> None:
    start = datetime.now(UTC)
    for i in range(200):
        event_log.publish(Stream.EVENTS, f"m-{i % 3}", b"x")
    event_log.publish(Stream.EVENTS, "m-0", b"last").result()
    records = list(event_log.read_by_publish_time(Stream.EVENTS, start, datetime.now(UTC) + timedelta(seconds=1)))
    assert len(records) == 201
    last: dict[int, datetime] = {}
    for r in records:
        assert r.publish_time >= last.get(r.partition, r.publish_time)
        last[r.partition] = r.publish_time


def test_commits_and_writes_are_fsynced(event_log: EmbeddedEventLog) -> None:
    conn = event_log.connect()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_factory_opens_the_embedded_log_under_the_data_dir(tmp_path: Path) -> None:
    settings = CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path), "GNOMON_ENGINES": "embedded"})
    opened = open_event_log(settings, producer_name="ignored", partitions=2)
    assert isinstance(opened, EmbeddedEventLog)
    assert opened.directory == tmp_path / "eventlog"
    assert opened.partition_count(Stream.BAD_EVENTS) == 2
    opened.close()


def test_consumer_rejects_bad_arguments(event_log: EmbeddedEventLog) -> None:
    with pytest.raises(ValueError, match="consumer group"):
        event_log.subscribe(Stream.EVENTS, "../escape")
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    with pytest.raises(ValueError, match="max_records"):
        consumer.poll(0, 0.1)
    consumer.close()
    with pytest.raises(LogUnavailable):
        consumer.poll(1, 0.1)
