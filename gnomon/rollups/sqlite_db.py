"""The embedded rollup engine: one SQLite file (WAL) holding rollups, data versions and version flips.

Several processes (aggregator workers, the query service) may open the same file: WAL lets readers proceed
while one writer commits; `busy_timeout` makes a writer wait for another instead of failing. Within one
process writes go through one connection behind a lock (`transaction`), reads use one connection per thread
(`reader`), so reads never wait for a write.

Durability: `synchronous=FULL` by default, so a committed write survives a power loss, not only a crash.
Schema version lives in `PRAGMA user_version`; a file written by a newer Gnomon is refused.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gnomon.rollups.errors import RollupUnavailable

SCHEMA_VERSION = 1
PAGE_SIZE = 16384  # rows carry sketches of up to ~2 KB each; applies only before the first table exists
BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollups (
    merchant_id TEXT NOT NULL,
    cube TEXT NOT NULL,
    grain TEXT NOT NULL,
    version INTEGER NOT NULL,
    window_start INTEGER NOT NULL,  -- Unix seconds (UTC)
    dims TEXT NOT NULL,             -- gnomon.rollups.dims encoding (JSON array)
    events INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    engaged_sessions INTEGER NOT NULL,
    bounces INTEGER NOT NULL,
    session_duration_ms INTEGER NOT NULL,
    revenue_micros INTEGER NOT NULL,
    key_events INTEGER NOT NULL,
    users BLOB NOT NULL,
    new_users BLOB NOT NULL,
    provisional INTEGER NOT NULL,
    computed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, cube, grain, version, window_start, dims)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_windows (
    merchant_id TEXT NOT NULL,
    cube TEXT NOT NULL,
    grain TEXT NOT NULL,
    version INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, cube, grain, version, window_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_data_versions (
    merchant_id TEXT PRIMARY KEY,
    data_version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS processing_version_flips (
    merchant_id TEXT NOT NULL,
    flipped_at_ms INTEGER NOT NULL,
    flip_id TEXT NOT NULL,
    range_start_ms INTEGER NOT NULL,
    range_end_ms INTEGER NOT NULL,
    version INTEGER NOT NULL,
    who TEXT NOT NULL,
    why TEXT NOT NULL,
    PRIMARY KEY (merchant_id, flipped_at_ms, flip_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS processing_version_builds (
    merchant_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    range_start_ms INTEGER NOT NULL,
    range_end_ms INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, job_id)
) WITHOUT ROWID;
"""

BUMP_DATA_VERSION = (
    "INSERT INTO rollup_data_versions (merchant_id, data_version) VALUES (?, ?)"
    " ON CONFLICT (merchant_id) DO UPDATE SET data_version = max(data_version + 1, excluded.data_version)"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)


def to_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime (floored)."""
    return (value - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def to_s(value: datetime) -> int:
    """Unix seconds of an aware datetime that is a whole second."""
    return (value - _EPOCH) // _SECOND


def ceil_s(value: datetime) -> int:
    """The smallest whole Unix second >= value: `ws >= value` ⟺ `to_s(ws) >= ceil_s(value)` for whole seconds."""
    return -((_EPOCH - value) // _SECOND)


def from_s(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def now_us() -> int:
    return time.time_ns() // 1000


def bump_data_versions(conn: sqlite3.Connection, merchant_ids: Iterable[str]) -> None:
    """Advance each merchant's data version inside the caller's transaction (max(old + 1, now µs))."""
    now = now_us()
    conn.executemany(BUMP_DATA_VERSION, [(m, now) for m in sorted(set(merchant_ids))])


class SqliteDb:
    """Connections to one rollup SQLite file. Raises RollupUnavailable when it cannot be opened."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = path
        self._synchronous = synchronous
        self._write_lock = threading.Lock()
        self._readers_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            self._create_schema()
        except (OSError, sqlite3.Error) as exc:
            raise RollupUnavailable(f"cannot open rollup store {path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _create_schema(self) -> None:
        conn = self._writer
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RollupUnavailable(f"{self.path}: cannot switch to WAL journal mode (got {mode})")
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                raise RollupUnavailable(
                    f"{self.path} has rollup schema {found}; this Gnomon knows up to {SCHEMA_VERSION}: upgrade it"
                )
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The write connection inside BEGIN IMMEDIATE; commits on success, rolls back on any exception."""
        with self._write_lock:
            if self._closed:
                raise RollupUnavailable("the rollup store is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: each statement sees the latest committed state)."""
        if self._closed:
            raise RollupUnavailable("the rollup store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._readers_lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._writer.close()
