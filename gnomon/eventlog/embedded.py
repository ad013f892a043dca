"""Embedded EventLog adapter: one SQLite database in WAL mode, safe for several processes on one machine.

Layout under `directory`:
- `eventlog.db` (+ `-wal`, `-shm`): per stream and partition a table `log_<stream>_<p>` (`seq INTEGER
  PRIMARY KEY` = the offset, dense from 1; key; payload BLOB; properties as JSON text; publish_time in UTC
  microseconds, indexed), `streams` (partition count of each stream, fixed at creation) and `cursors`
  (committed seq per stream, group and partition).
- `groups/<stream>.<group>.lock`: consumer-group lock files (see below).

Durability: `synchronous=FULL` in WAL mode, so every commit fsyncs the WAL before it returns; a future
resolves only after that commit. An acknowledged message therefore survives a process crash (kill -9) *and* an
OS crash or power loss. (NORMAL would survive only process crashes; pass `fsync=False` to trade that for
speed.) Throughput comes from group commit: each process has one writer thread that takes everything queued
(up to 64 MiB) and writes it in one transaction with one fsync, so all batches of a group share the fsync.

WAL upkeep: the writer's connection never checkpoints (that would stall acks); a checkpointer thread per
writing process folds the WAL into the database every 32 MiB written (PASSIVE: blocks nobody), and the writer
restarts the WAL between two transactions once it is longer than 128 MiB, so it stays bounded even under
constant load (`sqlite_schema.Checkpointer`). Pages are 16 KiB (a ~100 KB payload takes 7).

Several processes: each process opens its own `EmbeddedEventLog`; SQLite's write lock serialises the writer
threads of different processes (they wait up to `busy_timeout_s`, then fail the group with LogUnavailable).
Offsets and publish times are assigned inside the write transaction, so they are consistent across processes.
The directory must be on a local file system (SQLite WAL and flock need it).

Publish times: the commit's wall clock, clamped so that within a partition they never decrease (a clock step
back reuses the last time). Hence a publish-time range is a contiguous offset range in each partition, which
makes `read_by_publish_time` an index seek plus a sequential scan.

Consumer groups: one active member per (stream, group) at a time, enforced with an exclusive `flock` on the
group's lock file. The OS releases it when the member closes or its process dies (even kill -9), and another
member — in any process — takes over on its next poll, resuming after the group's committed cursors.
Members that do not hold the lock are hot standbys: `poll` returns [] for them. This is Pulsar's Failover
subscription with a single active consumer; it keeps one key's records in order and never delivers a
partition to two members at once. Do not fork a process that holds an active consumer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gnomon.eventlog.embedded_consumer import EmbeddedConsumer
from gnomon.eventlog.inflight import InFlightBudget
from gnomon.eventlog.port import (
    LogUnavailable,
    OutgoingMessage,
    Position,
    Record,
    Stream,
    check_group,
    check_partitions,
    check_properties,
    check_utc_range,
    partition_for_key,
)
from gnomon.eventlog.sqlite_schema import (
    CHECKPOINT_EVERY_BYTES,
    DB_NAME,
    WAL_RESTART_BYTES,
    Checkpointer,
    TableSql,
    connect,
    init_schema,
    now_us,
    properties_json,
    rollback,
    row_to_record,
    table_sql,
    to_us,
)

log = logging.getLogger(__name__)

MAX_GROUP_MESSAGES = 4096  # per write transaction
MAX_GROUP_BYTES = 64 * 1024 * 1024
READ_PAGE_ROWS = 256


@dataclass
class _Pending:
    stream: Stream
    partition: int
    key: str
    payload: bytes
    properties: str | None
    future: Future[Position]


class EmbeddedEventLog:
    """The EventLog port on SQLite (see the module docstring for layout, durability and groups).

    Constructing it creates the directory and schema if missing (blocking; raises LogUnavailable when the
    database cannot be opened). `partitions` applies only when the streams are first created; an existing
    database keeps its counts (see `partition_count`). `max_in_flight` / `max_in_flight_bytes` bound the
    publishes queued or being written in this process. `fsync=False` trades OS-crash durability for speed
    (synchronous=NORMAL). Writers wait up to `busy_timeout_s` for another process's transaction; consumers
    look for new rows every `poll_interval_s`. `checkpoint_every_bytes` / `wal_restart_bytes` tune how the
    WAL is folded back into the database (see `sqlite_schema.Checkpointer`).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        partitions: int = 4,
        max_in_flight: int = 1000,
        max_in_flight_bytes: int = 256 * 1024 * 1024,
        fsync: bool = True,
        busy_timeout_s: float = 30.0,
        poll_interval_s: float = 0.01,
        checkpoint_every_bytes: int = CHECKPOINT_EVERY_BYTES,
        wal_restart_bytes: int = WAL_RESTART_BYTES,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self._fsync = fsync
        self._busy_timeout_s = busy_timeout_s
        self.poll_interval_s = poll_interval_s
        self._checkpoint_every_bytes = checkpoint_every_bytes
        self._wal_restart_bytes = wal_restart_bytes
        self._budget = InFlightBudget(max_in_flight, max_in_flight_bytes)
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._writer: threading.Thread | None = None
        self._consumers: set[EmbeddedConsumer] = set()
        self._consumers_lock = threading.Lock()
        try:
            (self.directory / "groups").mkdir(parents=True, exist_ok=True)
            self._partitions = self._init_schema(partitions)
        except (OSError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot open the embedded event log at {self.path}: {exc}") from exc
        self._sql = {(s, p): table_sql(s, p) for s, n in self._partitions.items() for p in range(n)}

    def connect(self) -> sqlite3.Connection:
        """A new autocommit connection with this log's pragmas (blocking; the caller closes it)."""
        return connect(self.path, busy_timeout_s=self._busy_timeout_s, fsync=self._fsync)

    def _init_schema(self, partitions: int) -> dict[Stream, int]:
        conn = self.connect()
        try:
            counts = init_schema(conn, partitions)
        finally:
            conn.close()
        for stream, n in counts.items():
            if n != partitions:
                log.info("event log %s: %s keeps its %d partitions (asked %d)", self.path, stream, n, partitions)
        return counts

    # ---- publishing --------------------------------------------------------------------------------------

    def partition_count(self, stream: Stream) -> int:
        return self._partitions[Stream(stream)]

    def publish(
        self, stream: Stream, key: str, payload: bytes, properties: Mapping[str, str] | None = None
    ) -> Future[Position]:
        """See `EventLog.publish`; the future resolves once its group's transaction is fsync'd."""
        return self._enqueue(Stream(stream), [OutgoingMessage(key, payload, properties)])[0]

    def publish_many(self, stream: Stream, messages: Sequence[OutgoingMessage]) -> list[Future[Position]]:
        """See `EventLog.publish_many`."""
        return self._enqueue(Stream(stream), messages)

    def _enqueue(self, stream: Stream, messages: Sequence[OutgoingMessage]) -> list[Future[Position]]:
        n = self._partitions[stream]
        items: list[_Pending] = []
        for m in messages:
            if not isinstance(m.payload, bytes | bytearray | memoryview):
                raise TypeError(f"payload must be bytes, got {type(m.payload).__name__}")
            props = check_properties(m.properties)
            items.append(
                _Pending(
                    stream=stream,
                    partition=partition_for_key(m.key, n),
                    key=m.key,
                    payload=bytes(m.payload),
                    properties=properties_json(props) if props else None,
                    future=Future(),
                )
            )
        if not items:
            return []
        with self._cond:
            if self._closed:
                raise LogUnavailable("the event log is closed")
            self._budget.acquire(len(items), sum(len(i.payload) for i in items))
            if self._writer is None:
                self._writer = threading.Thread(target=self._run_writer, name="eventlog-writer", daemon=True)
                self._writer.start()
            self._queue.extend(items)
            self._cond.notify()
        return [i.future for i in items]

    def _run_writer(self) -> None:
        conn: sqlite3.Connection | None = None
        checkpointer = Checkpointer(self.connect, self._checkpoint_every_bytes, self._wal_restart_bytes)
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if not self._queue:
                        return  # closed and drained
                    group = self._take_group()
                if conn is None:
                    try:
                        conn = self.connect()
                        conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
                    except sqlite3.Error as exc:
                        conn = None
                        self._settle(group, None, exc)
                        continue
                if self._write_group(conn, group):
                    checkpointer.wrote(sum(len(p.payload) for p in group))
                    checkpointer.restart_if_due(conn, self._busy_timeout_s)
        finally:
            checkpointer.close()
            if conn is not None:
                conn.close()

    def _take_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        nbytes = 0
        while self._queue and len(group) < MAX_GROUP_MESSAGES:
            if group and nbytes + len(self._queue[0].payload) > MAX_GROUP_BYTES:
                break
            item = self._queue.popleft()
            group.append(item)
            nbytes += len(item.payload)
        return group

    def _write_group(self, conn: sqlite3.Connection, group: list[_Pending]) -> bool:
        """Write one group in one transaction and settle its futures; True if it was committed."""
        # Futures cancelled while queued are skipped (set_running... returns False for them).
        live = [p for p in group if p.future.set_running_or_notify_cancel()]
        try:
            positions = self._insert(conn, live) if live else []
        except Exception as exc:  # every failure must settle the futures; the writer keeps running
            log.warning("event log: writing %d messages failed: %s", len(live), exc)
            self._settle(group, None, exc, live)
            return False
        self._settle(group, positions, None, live)
        return True

    def _settle(
        self,
        group: list[_Pending],
        positions: list[Position] | None,
        error: BaseException | None,
        live: list[_Pending] | None = None,
    ) -> None:
        # Free the budget first, so that whoever sees a result can publish again at once.
        self._budget.release(len(group), sum(len(p.payload) for p in group))
        if live is None:
            live = [p for p in group if p.future.set_running_or_notify_cancel()]
        if positions is not None:
            for p, pos in zip(live, positions, strict=True):
                p.future.set_result(pos)
            return
        for p in live:
            exc = LogUnavailable(f"event log write failed: {error}")
            exc.__cause__ = error
            p.future.set_exception(exc)

    def _insert(self, conn: sqlite3.Connection, items: list[_Pending]) -> list[Position]:
        by_table: dict[tuple[Stream, int], list[int]] = {}
        for i, item in enumerate(items):
            by_table.setdefault((item.stream, item.partition), []).append(i)
        positions: list[Position | None] = [None] * len(items)
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = now_us()  # taken under the write lock, so times and offsets agree across processes
            for (stream, partition), indexes in by_table.items():
                sql = self._sql[(stream, partition)]
                row = conn.execute(sql.last).fetchone()
                last_seq, last_time = (int(row[0]), int(row[1])) if row else (0, 0)
                publish_time = max(now, last_time)
                rows = []
                for n, i in enumerate(indexes, start=last_seq + 1):
                    it = items[i]
                    rows.append((n, it.key, it.payload, it.properties, publish_time))
                    positions[i] = Position(partition, n)
                conn.executemany(sql.insert, rows)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        return [p for p in positions if p is not None]

    # ---- reading -----------------------------------------------------------------------------------------

    def subscribe(self, stream: Stream, group: str) -> EmbeddedConsumer:
        """See `EventLog.subscribe`; the member becomes active on its first poll if the group is free."""
        with self._cond:
            if self._closed:
                raise LogUnavailable("the event log is closed")
        consumer = EmbeddedConsumer(self, Stream(stream), check_group(group))
        with self._consumers_lock:
            self._consumers.add(consumer)
        return consumer

    def _forget(self, consumer: EmbeddedConsumer) -> None:
        with self._consumers_lock:
            self._consumers.discard(consumer)

    def table_sql(self, stream: Stream, partition: int) -> TableSql:
        """The statements of one partition table of this log."""
        return self._sql[(stream, partition)]

    def read_by_publish_time(
        self, stream: Stream, start: datetime, end: datetime, partitions: Sequence[int] | None = None
    ) -> Iterator[Record]:
        """See `EventLog.read_by_publish_time`. Holds no read transaction between pages of 256 rows."""
        check_utc_range(start, end)
        stream = Stream(stream)
        chosen = check_partitions(partitions, self._partitions[stream])
        return self._read_range(stream, to_us(start), to_us(end), chosen)

    def _read_range(self, stream: Stream, start_us: int, end_us: int, partitions: list[int]) -> Iterator[Record]:
        if start_us >= end_us:
            return
        try:
            conn = self.connect()
        except sqlite3.Error as exc:
            raise LogUnavailable(f"cannot open {self.path}: {exc}") from exc
        try:
            for partition in partitions:
                sql = self._sql[(stream, partition)]
                try:
                    first = conn.execute(sql.first_at, (start_us,)).fetchone()
                except sqlite3.Error as exc:
                    raise LogUnavailable(f"reading {self.path}: {exc}") from exc
                seq = int(first[0]) if first else None
                while seq is not None:
                    try:
                        rows = conn.execute(sql.from_seq, (seq, READ_PAGE_ROWS)).fetchall()
                    except sqlite3.Error as exc:
                        raise LogUnavailable(f"reading {self.path}: {exc}") from exc
                    seq = int(rows[-1][0]) + 1 if len(rows) == READ_PAGE_ROWS else None
                    for row in rows:
                        if row[4] >= end_us:  # publish times never decrease within a partition
                            seq = None
                            break
                        if row[4] >= start_us:
                            yield row_to_record(stream, partition, row)
        finally:
            conn.close()

    def close(self) -> None:
        """Blocking: stop accepting publishes, write every queued one, stop the writer, close consumers."""
        with self._cond:
            already = self._closed
            self._closed = True
            self._cond.notify_all()
            writer = self._writer
        if not already and writer is not None and writer is not threading.current_thread():
            writer.join()
        with self._consumers_lock:
            consumers = list(self._consumers)
        for c in consumers:
            c.close()
