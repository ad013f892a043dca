"""Schema, statements and row conversion of the embedded (SQLite) event log; see `embedded` for the design."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gnomon.eventlog.port import LogUnavailable, Position, Record, Stream

log = logging.getLogger(__name__)

DB_NAME = "eventlog.db"
SCHEMA_VERSION = 1
PAGE_SIZE = 16384  # ~100 KB payloads: 7 pages each, at most 16 KiB slack; fixed when the file is created
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # the WAL file is truncated back to this size when it restarts
CHECKPOINT_EVERY_BYTES = 32 * 1024 * 1024  # a writer asks for a checkpoint after writing this much
WAL_RESTART_BYTES = 128 * 1024 * 1024  # a WAL longer than this is restarted after the checkpoint

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Row = tuple[int, str, bytes, str | None, int]  # seq, key, payload, properties (JSON), publish_time (us)


def to_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float rounding)."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """The UTC datetime of `us` microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=us)


def now_us() -> int:
    """The wall clock in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def properties_json(props: Mapping[str, str]) -> str:
    """Compact JSON of string properties, as stored in the `properties` column."""
    return json.dumps(props, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class TableSql:
    """The statements of one partition table (names come from Stream values and ints, never from input)."""

    create: str
    index: str
    last: str
    insert: str
    after: str
    first_at: str
    from_seq: str
    max_seq: str


def table_sql(stream: Stream, partition: int) -> TableSql:
    """The statements of `stream`'s partition `partition` table."""
    t = f"log_{stream.value.replace('-', '_')}_{partition}"
    cols = "seq, key, payload, properties, publish_time"
    return TableSql(
        create=(
            f"CREATE TABLE IF NOT EXISTS {t} (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, "
            "payload BLOB NOT NULL, properties TEXT, publish_time INTEGER NOT NULL)"
        ),
        index=f"CREATE INDEX IF NOT EXISTS {t}_publish_time ON {t}(publish_time)",
        last=f"SELECT seq, publish_time FROM {t} ORDER BY seq DESC LIMIT 1",  # noqa: S608
        insert=f"INSERT INTO {t} ({cols}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
        after=f"SELECT {cols} FROM {t} WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
        first_at=f"SELECT seq FROM {t} WHERE publish_time >= ? ORDER BY publish_time, seq LIMIT 1",  # noqa: S608
        from_seq=f"SELECT {cols} FROM {t} WHERE seq >= ? ORDER BY seq LIMIT ?",  # noqa: S608
        max_seq=f"SELECT max(seq) FROM {t}",  # noqa: S608
    )


UPSERT_CURSOR = (
    "INSERT INTO cursors (stream, grp, part, committed_seq, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (stream, grp, part) DO UPDATE SET "
    "committed_seq = max(committed_seq, excluded.committed_seq), updated_at = excluded.updated_at"
)
SELECT_CURSORS = "SELECT part, committed_seq FROM cursors WHERE stream = ? AND grp = ?"


def connect(path: Path, *, busy_timeout_s: float, fsync: bool) -> sqlite3.Connection:
    """Blocking: a new autocommit connection usable from any thread (one at a time).

    `fsync` picks synchronous=FULL (every commit fsyncs the WAL) over NORMAL (fsync only at checkpoints).
    """
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    return conn


class Checkpointer:
    """Keeps the WAL short without making the writer thread copy it into the database.

    PASSIVE checkpoints run on their own thread and connection (the writer's connection has autocheckpoint
    off) every `every_bytes` written; they block neither readers nor writers, in any process. Under constant
    load the WAL still never starts over, because new frames arrive while a checkpoint runs. So when it has
    grown past `restart_bytes`, the writer thread itself runs `restart_if_due()` between two transactions: a
    RESTART checkpoint that copies only the frames written since the last PASSIVE pass, waits (at most
    RESTART_WAIT_MS) for readers to leave the WAL, and lets the next transaction start the WAL over.
    """

    RESTART_WAIT_MS = 200

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        every_bytes: int = CHECKPOINT_EVERY_BYTES,
        restart_bytes: int = WAL_RESTART_BYTES,
    ) -> None:
        self._connect = connect
        self._every_bytes = every_bytes
        self._restart_bytes = restart_bytes
        self._written = 0
        self._restart_due = threading.Event()
        self._checkpointing = threading.Lock()  # one checkpoint at a time in this process
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="eventlog-checkpointer", daemon=True)
        self._thread.start()

    def wrote(self, nbytes: int) -> None:
        """Writer thread: count `nbytes` just committed; wake the checkpointer when enough piled up."""
        self._written += nbytes
        if self._written >= self._every_bytes:
            self._written = 0
            self._wake.set()

    def restart_if_due(self, writer: sqlite3.Connection, busy_timeout_s: float) -> None:
        """Writer thread, outside any transaction: restart the WAL if the checkpointer found it too long."""
        if not self._restart_due.is_set() or not self._checkpointing.acquire(blocking=False):
            return  # not due, or a PASSIVE pass is running: try again after the next transaction
        try:
            writer.execute(f"PRAGMA busy_timeout={self.RESTART_WAIT_MS}")
            busy, _, _ = writer.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if not busy:
                self._restart_due.clear()
        except sqlite3.Error as exc:
            log.warning("event log: WAL restart failed: %s", exc)
        finally:
            self._checkpointing.release()
            writer.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")

    def close(self) -> None:
        """Blocking: run a last checkpoint and stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                try:
                    conn = conn or self._connect()
                    with self._checkpointing:
                        _, wal_frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if wal_frames * PAGE_SIZE > self._restart_bytes:
                        self._restart_due.set()
                except sqlite3.Error as exc:
                    log.warning("event log: WAL checkpoint failed: %s", exc)
                if self._stopping:
                    return
        finally:
            if conn is not None:
                conn.close()


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any; never raises."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("event log: ROLLBACK failed")


def init_schema(conn: sqlite3.Connection, partitions: int) -> dict[Stream, int]:
    """Blocking: switch to WAL and create missing tables; return each stream's partition count.

    Safe to run concurrently from several processes (one IMMEDIATE transaction). A stream that exists keeps
    its count. Raises LogUnavailable for a database of a newer schema or one that cannot use WAL, and
    sqlite3.Error for I/O problems.
    """
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise LogUnavailable(f"cannot switch the event log to WAL mode (got {mode!r})")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LogUnavailable(f"event log has schema {version}; this Gnomon knows up to {SCHEMA_VERSION}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, "
            "partitions INTEGER NOT NULL, created_at INTEGER NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS cursors (stream TEXT NOT NULL, grp TEXT NOT NULL, "
            "part INTEGER NOT NULL, committed_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
            "PRIMARY KEY (stream, grp, part))"
        )
        counts: dict[Stream, int] = {}
        for stream in Stream:
            conn.execute(
                "INSERT OR IGNORE INTO streams (stream, partitions, created_at) VALUES (?, ?, ?)",
                (stream.value, partitions, now_us()),
            )
            row = conn.execute("SELECT partitions FROM streams WHERE stream = ?", (stream.value,))
            counts[stream] = int(row.fetchone()[0])
            for p in range(counts[stream]):
                sql = table_sql(stream, p)
                conn.execute(sql.create)
                conn.execute(sql.index)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return counts


def row_to_record(stream: Stream, partition: int, row: Row) -> Record:
    """A Record from a `seq, key, payload, properties, publish_time` row."""
    seq, key, payload, props, publish_time = row
    return Record(
        stream=stream,
        position=Position(partition, int(seq)),
        key=key,
        payload=bytes(payload),
        properties=json.loads(props) if props else {},
        publish_time=from_us(int(publish_time)),
    )
