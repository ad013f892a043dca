"""EventStore adapter over Scylla/Cassandra (scylla-driver), in the rollups keyspace, shaped for ScyllaDB.

Schema (migration component `eventstore`, applied at connect; see `SCHEMA`):
- `eventstore_events`, PRIMARY KEY ((merchant_id, day, hour_bucket), event_id): one row per distinct event;
  `day` is the merchant-local day (days since 1970-01-01), `hour_bucket` the UTC hour of the event time (hours
  since the epoch), so a partition holds one merchant's events of one hour: bounded by that merchant's hourly
  volume (~300 bytes per event: 100 MB ≈ 330k events per merchant-hour; beyond that, add a sub-bucket to the key).
  Rows are written `USING TIMESTAMP received_time_us` (last write wins = the later received copy wins, the same
  rule as SQLite) and `TTL ttl_s` (default 35 days: the collector refuses events older than 72 h, so a day is
  complete long before; raw history stays in the event log). TimeWindowCompactionStrategy, 1-day windows.
  `load_day` reads the 52 hour buckets that can hold a local day in any zone (UTC-14 .. UTC+14, DST), concurrently.
- `eventstore_day_marks`, PRIMARY KEY ((shard), due_us, merchant_id, day), shard = CRC-32(merchant) % 16: a few
  rows per active merchant; gc_grace_seconds = 1 h since a resurrected mark only causes one extra recompute.
- `eventstore_watermarks` (name PRIMARY KEY): written `USING TIMESTAMP watermark_us`, so the largest value wins.

Prepared statements only, consistency level from the settings (through `CqlEngine`'s execution profile), UNLOGGED
single-partition batches, no LWT, no counters, no ALLOW FILTERING, no secondary index.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, Final

import pandas as pd
from cassandra.query import BatchStatement, BatchType

from aggregator.eventstore.codec import check_day, check_name, day_frame, stored_columns
from aggregator.eventstore.port import DayMark, EventStoreUnavailable, day_number, day_of, received_fingerprint
from gnomon.rollups.cql_engine import CqlEngine, Item
from gnomon.rollups.errors import RollupError
from gnomon.rollups.migrate import Migration, apply_migrations, split_statements
from gnomon.settings import CqlSettings

COMPONENT: Final = "eventstore"
MARK_SHARDS: Final = 16
DEFAULT_TTL_S: Final = 35 * 86_400
_US_PER_HOUR: Final = 3_600_000_000
# A local day D spans UTC [D 00:00 - 14 h, D+1 00:00 + 12 h) for offsets -12..+14 h; one hour of margin each side.
_HOURS_BEFORE: Final = 15
_HOURS_AFTER: Final = 37
_ROW_BYTES: Final = 64

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS eventstore_events (
    merchant_id text,
    day int,
    hour_bucket int,
    event_id text,
    event_time_us bigint,
    received_time_us bigint,
    event blob,
    PRIMARY KEY ((merchant_id, day, hour_bucket), event_id)
) WITH compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS',
                     'compaction_window_size': 1};
CREATE TABLE IF NOT EXISTS eventstore_day_marks (
    shard int,
    due_us bigint,
    merchant_id text,
    day int,
    PRIMARY KEY ((shard), due_us, merchant_id, day)
) WITH gc_grace_seconds = 3600 AND compaction = {'class': 'LeveledCompactionStrategy'};
CREATE TABLE IF NOT EXISTS eventstore_watermarks (
    name text PRIMARY KEY,
    watermark_us bigint
) WITH compaction = {'class': 'LeveledCompactionStrategy'};
"""

MIGRATIONS: Final = [
    Migration(
        1,
        "0001_eventstore.cql",
        tuple(split_statements(SCHEMA)),
        hashlib.sha256(SCHEMA.encode("utf-8")).hexdigest(),
    )
]


def mark_shard(merchant_id: str) -> int:
    return zlib.crc32(merchant_id.encode("utf-8")) % MARK_SHARDS


class CqlEventStore:
    """The EventStore port on Scylla/Cassandra. Thread-safe; every call blocks until the engine answered.

    `connect` opens its own engine (creating the keyspace and applying the rollup and event-store migrations).
    Raises EventStoreUnavailable for driver failures and unreachable clusters.
    """

    def __init__(
        self,
        engine: CqlEngine,
        *,
        owns_engine: bool = False,
        ttl_s: int = DEFAULT_TTL_S,
        batch_rows: int = 64,
        batch_bytes: int = 32 * 1024,
    ) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._ttl_s = ttl_s
        self._batch_rows = batch_rows
        self._batch_bytes = batch_bytes
        with self._errors("migrate"):
            apply_migrations(engine.session, engine.keyspace, MIGRATIONS, component=COMPONENT)
            p = engine.prepare
            self._insert = p(
                "INSERT INTO eventstore_events"
                " (merchant_id, day, hour_bucket, event_id, event_time_us, received_time_us, event)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?"
            )
            self._load = p(
                "SELECT event_id, received_time_us, event FROM eventstore_events"
                " WHERE merchant_id = ? AND day = ? AND hour_bucket = ?"
            )
            self._received = p(
                "SELECT received_time_us FROM eventstore_events WHERE merchant_id = ? AND day = ? AND hour_bucket = ?"
            )
            self._add_mark = p("INSERT INTO eventstore_day_marks (shard, due_us, merchant_id, day) VALUES (?, ?, ?, ?)")
            self._remove_mark = p(
                "DELETE FROM eventstore_day_marks WHERE shard = ? AND due_us = ? AND merchant_id = ? AND day = ?"
            )
            self._marks = p("SELECT due_us, merchant_id, day FROM eventstore_day_marks WHERE shard = ?")
            self._save_watermark = p(
                "INSERT INTO eventstore_watermarks (name, watermark_us) VALUES (?, ?) USING TIMESTAMP ?"
            )
            self._load_watermark = p("SELECT watermark_us FROM eventstore_watermarks WHERE name = ?")

    @classmethod
    def connect(cls, cql: CqlSettings, *, keyspace: str | None = None, **options: Any) -> CqlEventStore:
        """Open an engine on `keyspace` (default: the settings' keyspace) and a store owning it."""
        try:
            engine = CqlEngine(cql, keyspace=keyspace)
        except RollupError as exc:
            raise EventStoreUnavailable(f"event store: {exc}") from exc
        try:
            return cls(engine, owns_engine=True, **options)
        except BaseException:
            engine.close()
            raise

    @property
    def engine(self) -> CqlEngine:
        return self._engine

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            with self._engine.errors(f"event store {what}"):
                yield
        except RollupError as exc:
            raise EventStoreUnavailable(str(exc)) from exc

    def upsert(self, frame: pd.DataFrame) -> None:
        """See `EventStore.upsert`: single-partition UNLOGGED batches, sent concurrently, all acknowledged."""
        merchants, days, ids, times, received, blobs = stored_columns(frame)
        if not ids:
            return
        partitions: dict[tuple[str, int, int], list[tuple[Any, ...]]] = {}
        ttl = self._ttl_s
        for m, d, i, t, r, b in zip(merchants, days, ids, times, received, blobs, strict=True):
            hour = t // _US_PER_HOUR
            partitions.setdefault((m, d, hour), []).append((m, d, hour, i, t, r, b, r, ttl))
        items: list[Item] = []
        for rows in partitions.values():
            pending: list[tuple[Any, ...]] = []
            size = 0
            for row in rows:
                pending.append(row)
                size += _ROW_BYTES + len(row[3]) + len(row[6])
                if len(pending) >= self._batch_rows or size >= self._batch_bytes:
                    items.append(self._batch(pending))
                    pending, size = [], 0
            if pending:
                items.append(self._batch(pending))
        with self._errors("upsert"):
            self._engine.execute_all(items)

    def _batch(self, rows: list[tuple[Any, ...]]) -> Item:
        if len(rows) == 1:
            return (self._insert, rows[0])
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for row in rows:
            batch.add(self._insert, row)
        batch.is_idempotent = True
        return (batch, None)

    def load_day(self, merchant_id: str, day: date) -> pd.DataFrame:
        check_day(merchant_id, day)
        items: list[Item] = [(self._load, key) for key in self._day_partitions(merchant_id, day)]
        with self._errors("load_day"):
            results = self._engine.execute_all(items)
        best: dict[str, tuple[int, bytes]] = {}
        for rows in results:
            for event_id, received_us, blob in rows:
                candidate = (int(received_us), bytes(blob or b""))
                kept = best.get(event_id)
                if kept is None or candidate > kept:  # the same event in two hour buckets: later copy wins
                    best[event_id] = candidate
        return day_frame(merchant_id, [b for _, b in best.values()], [r for r, _ in best.values()])

    def day_fingerprint(self, merchant_id: str, day: date) -> tuple[int, int]:
        check_day(merchant_id, day)
        with self._errors("day_fingerprint"):
            results = self._engine.execute_all(
                [(self._received, key) for key in self._day_partitions(merchant_id, day)]
            )
        return received_fingerprint([r[0] for rows in results for r in rows])

    def _day_partitions(self, merchant_id: str, day: date) -> list[tuple[str, int, int]]:
        d = day_number(day)
        return [(merchant_id, d, h) for h in range(d * 24 - _HOURS_BEFORE, d * 24 + _HOURS_AFTER)]

    def put_marks(self, add: Sequence[DayMark], remove: Sequence[DayMark]) -> None:
        with self._errors("put_marks"):
            self._engine.execute_all(
                [(self._add_mark, (mark_shard(m.merchant_id), m.due_us, m.merchant_id, day_number(m.day))) for m in add]
            )
            self._engine.execute_all(
                [
                    (self._remove_mark, (mark_shard(m.merchant_id), m.due_us, m.merchant_id, day_number(m.day)))
                    for m in remove
                ]
            )

    def marks(self) -> list[DayMark]:
        with self._errors("marks"):
            results = self._engine.execute_all([(self._marks, (shard,)) for shard in range(MARK_SHARDS)])
        return sorted(DayMark(int(due), str(m), day_of(d)) for rows in results for due, m, d in rows)

    def save_watermark(self, name: str, watermark_us: int) -> None:
        check_name(name)
        us = int(watermark_us)
        with self._errors("save_watermark"):
            self._engine.execute(self._save_watermark, (name, us, us))

    def load_watermark(self, name: str) -> int:
        check_name(name)
        with self._errors("load_watermark"):
            rows = self._engine.execute(self._load_watermark, (name,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def close(self) -> None:
        if self._owns_engine:
            self._engine.close()
