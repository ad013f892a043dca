"""Embedded EventStore adapter: one SQLite file in WAL mode (default `<data_dir>/eventstore.sqlite3`).

Tables (WITHOUT ROWID, so each is one B-tree ordered by its key):
- `events (merchant_id, day, event_id) -> event_time_us, received_time_us, event` — one row per distinct event of
  a merchant-local day; `event` is the serialized gnomon.v1.Event. `load_day` is one primary-key range scan.
- `day_marks (merchant_id, day, due_us)` and `watermarks (name) -> watermark_us` (see the port).

Durability: `synchronous=FULL`: a returned `upsert` survives a process crash and a power loss. Several processes
may open the file (the aggregator's loop writes, its Dask workers read): WAL lets readers run beside the one
writer, `busy_timeout` makes a writer wait for another. Writes go through one connection behind a lock; reads
use one connection per thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd

from aggregator.eventstore.codec import check_day, check_name, day_frame, stored_columns
from aggregator.eventstore.port import DayMark, EventStoreUnavailable, day_number, day_of, received_fingerprint
from gnomon.sqlite_wal import WalDatabase

EVENTSTORE_FILE_NAME = "eventstore.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    merchant_id TEXT NOT NULL,
    day INTEGER NOT NULL,               -- merchant-local calendar day, days since 1970-01-01
    event_id TEXT NOT NULL,
    event_time_us INTEGER NOT NULL,
    received_time_us INTEGER NOT NULL,
    event BLOB NOT NULL,                -- serialized gnomon.v1.Event
    PRIMARY KEY (merchant_id, day, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS day_marks (
    merchant_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    due_us INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, day, due_us)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watermarks (
    name TEXT PRIMARY KEY,
    watermark_us INTEGER NOT NULL
) WITHOUT ROWID;
"""

# The later received copy wins; equal received times: the greater payload (Cassandra's tie rule for one cell).
_UPSERT = """
INSERT INTO events (merchant_id, day, event_id, event_time_us, received_time_us, event) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (merchant_id, day, event_id) DO UPDATE SET
    event_time_us = excluded.event_time_us, received_time_us = excluded.received_time_us, event = excluded.event
WHERE excluded.received_time_us > events.received_time_us
   OR (excluded.received_time_us = events.received_time_us AND excluded.event > events.event)
"""
_LOAD_DAY = "SELECT event, received_time_us FROM events WHERE merchant_id = ? AND day = ?"
_DAY_RECEIVED = "SELECT received_time_us FROM events WHERE merchant_id = ? AND day = ?"
_ADD_MARK = "INSERT OR IGNORE INTO day_marks (merchant_id, day, due_us) VALUES (?, ?, ?)"
_REMOVE_MARK = "DELETE FROM day_marks WHERE merchant_id = ? AND day = ? AND due_us = ?"
_MARKS = "SELECT due_us, merchant_id, day FROM day_marks"
_SAVE_WATERMARK = (
    "INSERT INTO watermarks (name, watermark_us) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET watermark_us = max(watermark_us, excluded.watermark_us)"
)
_LOAD_WATERMARK = "SELECT watermark_us FROM watermarks WHERE name = ?"


class SqliteEventStore:
    """The EventStore port on one SQLite file (see the module docstring). Thread-safe.

    Opening creates the file and schema when missing; raises EventStoreUnavailable when it cannot be opened.
    """

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self._db = WalDatabase(
            Path(path),
            schema=_SCHEMA,
            schema_version=SCHEMA_VERSION,
            what="event store",
            unavailable=EventStoreUnavailable,
            synchronous=synchronous,
        )
        self.path = self._db.path

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            with self._db.transaction() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise EventStoreUnavailable(f"{what} on {self.path}: {exc}") from exc

    def _reader(self) -> sqlite3.Connection:
        return self._db.reader()

    def upsert(self, frame: pd.DataFrame) -> None:
        """See `EventStore.upsert`: one transaction, durable (fsync'd) when it returns."""
        merchants, days, ids, times, received, blobs = stored_columns(frame)
        if not ids:
            return
        rows = zip(merchants, days, ids, times, received, blobs, strict=True)
        with self._transaction("upsert") as tx:
            tx.executemany(_UPSERT, rows)

    def load_day(self, merchant_id: str, day: date) -> pd.DataFrame:
        check_day(merchant_id, day)
        try:
            rows = self._reader().execute(_LOAD_DAY, (merchant_id, day_number(day))).fetchall()
        except sqlite3.Error as exc:
            raise EventStoreUnavailable(f"load_day on {self.path}: {exc}") from exc
        return day_frame(merchant_id, [r[0] for r in rows], [r[1] for r in rows])

    def day_fingerprint(self, merchant_id: str, day: date) -> tuple[int, int]:
        check_day(merchant_id, day)
        try:
            rows = self._reader().execute(_DAY_RECEIVED, (merchant_id, day_number(day))).fetchall()
        except sqlite3.Error as exc:
            raise EventStoreUnavailable(f"day_fingerprint on {self.path}: {exc}") from exc
        return received_fingerprint([r[0] for r in rows])

    def put_marks(self, add: Sequence[DayMark], remove: Sequence[DayMark]) -> None:
        if not add and not remove:
            return
        with self._transaction("put_marks") as tx:
            tx.executemany(_ADD_MARK, [(m.merchant_id, day_number(m.day), m.due_us) for m in add])
            tx.executemany(_REMOVE_MARK, [(m.merchant_id, day_number(m.day), m.due_us) for m in remove])

    def marks(self) -> list[DayMark]:
        try:
            rows = self._reader().execute(_MARKS).fetchall()
        except sqlite3.Error as exc:
            raise EventStoreUnavailable(f"marks on {self.path}: {exc}") from exc
        return sorted(DayMark(int(due), str(m), day_of(d)) for due, m, d in rows)

    def save_watermark(self, name: str, watermark_us: int) -> None:
        check_name(name)
        with self._transaction("save_watermark") as tx:
            tx.execute(_SAVE_WATERMARK, (name, int(watermark_us)))

    def load_watermark(self, name: str) -> int:
        check_name(name)
        try:
            row = self._reader().execute(_LOAD_WATERMARK, (name,)).fetchone()
        except sqlite3.Error as exc:
            raise EventStoreUnavailable(f"load_watermark on {self.path}: {exc}") from exc
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()
