"""The embedded rollup engine: one SQLite file (WAL) holding rollups, data versions and version flips.

Several processes (aggregator workers, the query service) may open the same file: WAL lets readers proceed
while one writer commits; `busy_timeout` makes a writer wait for another instead of failing. Within one
process writes go through one connection behind a lock (`transaction`), reads use one connection per thread
(`reader`), so reads never wait for a write.

Durability: `synchronous=FULL` by default, so a committed write survives a power loss, not only a crash.
Schema version lives in `PRAGMA user_version`; a file written by a newer Gnomon is refused, one written by an
older one is upgraded when opened (`sqlite_upgrade`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gnomon.rollups.errors import RollupUnavailable
from gnomon.rollups.sqlite_upgrade import upgrade
from gnomon.sqlite_wal import WalDatabase

SCHEMA_VERSION = 2  # 1: one SQLite row per rollup row (tables rollups, rollup_windows); 2: one pack per window
PAGE_SIZE = 16384  # packs hold a window's sketches (up to MBs); applies only before the first table exists

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollup_packs (  -- one row per window: its rows as columns (gnomon.rollups.sqlite_packs)
    merchant_id TEXT NOT NULL,
    cube TEXT NOT NULL,
    grain TEXT NOT NULL,
    version INTEGER NOT NULL,
    window_start INTEGER NOT NULL,  -- Unix seconds (UTC)
    n INTEGER NOT NULL,             -- rows in the window (>= 1: a window without rows has no pack)
    provisional INTEGER NOT NULL,   -- rows flagged provisional
    computed_min_ms INTEGER NOT NULL,
    computed_max_ms INTEGER NOT NULL,
    dims TEXT NOT NULL,             -- small columns first: reading them never walks the sketches' overflow pages
    counters BLOB NOT NULL,
    flags BLOB NOT NULL,
    computed_at BLOB NOT NULL,
    users_ends BLOB NOT NULL,
    new_users_ends BLOB NOT NULL,
    users BLOB NOT NULL,
    new_users BLOB NOT NULL,
    UNIQUE (merchant_id, cube, grain, version, window_start)
);
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


def open_db(path: Path, *, synchronous: str = "FULL") -> WalDatabase:
    """The rollup SQLite file at `path` with its schema (created or checked); raises RollupUnavailable when it
    cannot be opened or was written by a newer Gnomon, ValueError for an unknown `synchronous` mode."""
    return WalDatabase(
        path,
        schema=SCHEMA,
        schema_version=SCHEMA_VERSION,
        what="rollup store",
        unavailable=RollupUnavailable,
        synchronous=synchronous,
        page_size=PAGE_SIZE,
        upgrade=upgrade,
    )
