"""RollupStore adapter over Scylla/Cassandra (scylla-driver), shaped for ScyllaDB.

Schema: `gnomon/rollups/migrations/*.cql` (applied by `CqlEngine` at start-up). Rows live in `rollups`,
partitioned by (merchant_id, cube, grain, bucket, version) and clustered by (window_start, dims); `bucket` and
the partition-size bound are explained in `gnomon.rollups.buckets`. `rollup_windows` lists the windows of each
partition (same partition key) with each window's change token, and `rollup_data_versions` holds the
per-merchant change token.

Writes: rows are grouped by partition into UNLOGGED single-partition batches (≤ `batch_rows` rows and about
`batch_bytes` bytes, below Cassandra's 50 KiB batch_size_fail_threshold; a batch of one partition is one
mutation, applied atomically per replica) carrying the window-index row of each window they touch, and sent
with `execute_concurrent`. Once every batch (and, for `replace_window`, every deletion) is acknowledged, each
window written gets a fresh random change token (`rollup_windows.changed`), and then the data version is set.
`window_stamps` reads those tokens, a few bytes per window, instead of the rows with their ~2 KB sketches: a
reader that saw a token before a write saw the write's new token after it, so a copy cached under a token is
the window as it was when the token was read or newer. A write that fails before its tokens are set must be
retried (as the aggregator does) or the window's old token keeps vouching for a cached copy it no longer
matches. Windows written before migration 0004 have no token (None: never served from a cache).

Range reads of wide-bucket cubes (few rows per partition) ask for up to 100 buckets per query (`bucket IN ?`,
Scylla's default partition-key limit), those of narrow-bucket cubes one bucket per query; queries run
concurrently and what comes back is sorted. Reads filtered by dims first list the range's windows
(`rollup_windows`), then ask for `window_start IN ... AND dims IN ...` per partition with at most 100
combinations per query (Scylla's default max_clustering_key_restrictions_per_query).

No LWT, no counters, no ALLOW FILTERING, no secondary indexes. Deletions (replace_window) are row tombstones,
purged after gc_grace_seconds (keep repairs within it).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from cassandra.query import BatchStatement, BatchType, PreparedStatement

from gnomon.rollups.buckets import BucketPolicy
from gnomon.rollups.columns import RollupColumns
from gnomon.rollups.cql_engine import CqlEngine, Item, utc
from gnomon.rollups.dims import decode_dims, encode_dims, folded_dims
from gnomon.rollups.errors import RollupInvalid
from gnomon.rollups.model import (
    ALL_SKETCHES,
    SKETCH_COLUMNS,
    SKETCH_SELECTIONS,
    Grain,
    RollupKey,
    RollupRow,
    WindowStamp,
    ceil_second,
    check_window_rows,
    require_grain,
    require_name,
    require_sketches,
    require_utc,
    require_version,
    restore_row,
)
from gnomon.settings import CqlSettings

MAX_CLUSTERING_COMBINATIONS = 100
MAX_PARTITIONS_PER_CALL = 20_000  # 13.7 years of narrow hour buckets; longer ranges are a caller's bug
_PK = "merchant_id = ? AND cube = ? AND grain = ? AND bucket = ? AND version = ?"
_PKS = "merchant_id = ? AND cube = ? AND grain = ? AND bucket IN ? AND version = ?"  # several buckets at once
MAX_PARTITIONS_PER_QUERY = 100  # Scylla's default max_partition_key_restrictions_per_query
_COUNTERS = "events, pageviews, sessions, engaged_sessions, bounces, session_duration_ms, revenue_micros, key_events"
_METRICS = f"{_COUNTERS}, users, new_users, provisional, computed_at"
_ROW_BYTES = 160  # key columns, eight bigints, flags and cell overhead of one row (estimate for batch sizing)

Partition = tuple[str, str, str, datetime, int]  # merchant_id, cube, grain value, bucket, version


class CqlRollupStore:
    """RollupStore over a `CqlEngine`. Thread-safe; every call blocks until the engine answered.

    Raises RollupUnavailable for driver failures (no host, timeout, not enough replicas for the consistency
    level). `close()` shuts the engine down only when the store owns it (`connect`).
    """

    def __init__(
        self,
        engine: CqlEngine,
        *,
        owns_engine: bool = False,
        policy: BucketPolicy | None = None,
        batch_rows: int = 64,
        batch_bytes: int = 32 * 1024,
    ) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._policy = policy or BucketPolicy()
        self._batch_rows = batch_rows
        self._batch_bytes = batch_bytes
        # Statements are assembled from the constants above only (never from input): S608 does not apply.
        p = engine.prepare
        columns = f"merchant_id, cube, grain, bucket, version, window_start, dims, {_METRICS}"
        self._insert = p(f"INSERT INTO rollups ({columns}) VALUES ({', '.join('?' * 19)})")  # noqa: S608
        self._insert_window = p(
            "INSERT INTO rollup_windows (merchant_id, cube, grain, bucket, version, window_start)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        )
        range_ = "window_start >= ? AND window_start < ?"
        in_ = "window_start IN ? AND dims IN ?"
        self._read_range: dict[frozenset[str], PreparedStatement] = {}
        self._read_dims: dict[frozenset[str], PreparedStatement] = {}
        for chosen in SKETCH_SELECTIONS:  # one statement per sketch selection: unread blobs never leave the node
            columns = ", ".join(["window_start, dims", _COUNTERS, *(c for c in SKETCH_COLUMNS if c in chosen)])
            select = f"SELECT {columns}, provisional, computed_at FROM rollups WHERE"  # noqa: S608
            self._read_range[chosen] = p(f"{select} {_PKS} AND {range_}")
            self._read_dims[chosen] = p(f"{select} {_PK} AND {in_}")
        self._read_windows = p(f"SELECT bucket, window_start FROM rollup_windows WHERE {_PKS} AND {range_}")  # noqa: S608
        self._read_stamps = p(f"SELECT window_start, changed FROM rollup_windows WHERE {_PKS} AND {range_}")  # noqa: S608
        self._set_changed = p(f"UPDATE rollup_windows SET changed = ? WHERE {_PK} AND window_start = ?")  # noqa: S608
        self._window_dims = p(f"SELECT dims FROM rollups WHERE {_PK} AND window_start = ?")  # noqa: S608
        self._range_dims = p(f"SELECT bucket, window_start, dims FROM rollups WHERE {_PKS} AND {range_}")  # noqa: S608
        self._delete_dims = p(f"DELETE FROM rollups WHERE {_PK} AND window_start = ? AND dims IN ?")  # noqa: S608
        self._delete_window = p(f"DELETE FROM rollup_windows WHERE {_PK} AND window_start = ?")  # noqa: S608

    @classmethod
    def connect(cls, cql: CqlSettings, *, keyspace: str | None = None, **options: Any) -> CqlRollupStore:
        """Open an engine (migrating the schema) and a store owning it."""
        return cls(CqlEngine(cql, keyspace=keyspace), owns_engine=True, **options)

    @property
    def engine(self) -> CqlEngine:
        return self._engine

    def _partition(self, key: RollupKey) -> Partition:
        bucket = self._policy.bucket_of(key.cube, key.grain, key.window_start)
        return (key.merchant_id, key.cube, key.grain.value, bucket, key.version)

    def _batches(self, rows: Sequence[RollupRow]) -> tuple[list[Item], dict[Partition, set[datetime]]]:
        """Single-partition statements for `rows` (last occurrence of a key wins), window-index rows included,
        and the windows they touch per partition."""
        partitions: dict[Partition, dict[tuple[datetime, str], RollupRow]] = {}
        for row in rows:
            if type(row) is not RollupRow:
                raise RollupInvalid(f"rows must be RollupRow, got {type(row).__name__}")
            key = row.key
            partitions.setdefault(self._partition(key), {})[(key.window_start, encode_dims(key.dims))] = row
        items: list[Item] = []
        windows: dict[Partition, set[datetime]] = {}
        for pk, keyed in partitions.items():
            pending: list[Item] = []
            size = 0
            seen_windows = windows[pk] = set()
            for (window_start, dims), row in keyed.items():
                m = row.metrics
                if window_start not in seen_windows:
                    seen_windows.add(window_start)
                    pending.append((self._insert_window, (*pk, window_start)))
                pending.append(
                    (
                        self._insert,
                        (
                            *pk,
                            window_start,
                            dims,
                            m.events,
                            m.pageviews,
                            m.sessions,
                            m.engaged_sessions,
                            m.bounces,
                            m.session_duration_ms,
                            m.revenue_micros,
                            m.key_events,
                            m.users,
                            m.new_users,
                            row.provisional,
                            row.computed_at,
                        ),
                    )
                )
                size += _ROW_BYTES + len(dims) + len(m.users) + len(m.new_users)
                if len(pending) >= self._batch_rows or size >= self._batch_bytes:
                    items.append(self._batch(pending))
                    pending, size = [], 0
            if pending:
                items.append(self._batch(pending))
        return items, windows

    def _batch(self, statements: list[Item]) -> Item:
        if len(statements) == 1:
            return statements[0]
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for statement, params in statements:
            batch.add(statement, params)
        batch.is_idempotent = True
        return (batch, None)

    def write(self, rows: Sequence[RollupRow]) -> None:
        if not rows:
            return
        items, windows = self._batches(rows)
        with self._engine.errors("rollup write"):
            self._engine.execute_all(items)
            self._engine.execute_all(self._change_tokens(windows))
            self._engine.bump_data_versions(pk[0] for pk in windows)

    def _change_tokens(self, windows: Mapping[Partition, Collection[datetime]]) -> list[Item]:
        """Statements giving each window of each partition a fresh change token, batched per partition."""
        items: list[Item] = []
        for pk, starts in windows.items():
            statements: list[Item] = [(self._set_changed, (_change_token(), *pk, ws)) for ws in starts]
            items.extend(
                self._batch(statements[i : i + self._batch_rows]) for i in range(0, len(statements), self._batch_rows)
            )
        return items

    def replace_window(
        self,
        merchant_id: str,
        cube: str,
        grain: Grain,
        window_start: datetime,
        version: int,
        rows: Sequence[RollupRow],
    ) -> None:
        grain, window_start = check_window_rows(merchant_id, cube, grain, window_start, version, rows)
        items, _ = self._batches(rows)
        bucket = self._policy.bucket_of(cube, grain, window_start)
        pk = (merchant_id, cube, grain.value, bucket, version)
        keep = {encode_dims(r.key.dims) for r in rows}
        with self._engine.errors("rollup replace_window"):
            existing = {r[0] for r in self._engine.execute(self._window_dims, (*pk, window_start))}
            self._engine.execute_all(items)  # new rows first: a reader never misses a row that stays
            stale = sorted(existing - keep)
            deletes: list[Item] = [
                (self._delete_dims, (*pk, window_start, stale[i : i + MAX_CLUSTERING_COMBINATIONS]))
                for i in range(0, len(stale), MAX_CLUSTERING_COMBINATIONS)
            ]
            self._engine.execute_all(deletes)
            if rows:
                self._engine.execute_all(self._change_tokens({pk: [window_start]}))
            else:
                self._engine.execute(self._delete_window, (*pk, window_start))
            self._engine.bump_data_versions([merchant_id])

    def replace_window_columns(self, window_start: datetime, block: RollupColumns) -> None:
        if type(block) is not RollupColumns:
            raise RollupInvalid(f"block must be RollupColumns, got {type(block).__name__}")
        rows = block.rows()  # validated; CQL writes row by row anyway
        self.replace_window(block.merchant_id, block.cube, block.grain, window_start, block.version, rows)

    def _scope(
        self, merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
    ) -> tuple[datetime, datetime, list[Partition]] | None:
        """Whole-second bounds of the range and the partitions it spans; None when the range is empty."""
        require_name(merchant_id, "merchant_id")
        require_name(cube, "cube")
        require_version(version)
        lo = ceil_second(require_utc(start, "start"))  # window starts are whole seconds, CQL keeps ms
        hi = ceil_second(require_utc(end, "end"))
        if lo >= hi:
            return None
        partitions: list[Partition] = []
        for bucket in self._policy.buckets_between(cube, grain, lo, hi):
            if len(partitions) == MAX_PARTITIONS_PER_CALL:
                raise RollupInvalid(
                    f"[{lo.isoformat()}, {hi.isoformat()}) spans more than {MAX_PARTITIONS_PER_CALL} partitions of"
                    f" {cube}/{grain.value}: split the range or read a coarser grain"
                )
            partitions.append((merchant_id, cube, grain.value, bucket, version))
        return lo, hi, partitions

    def read(
        self,
        merchant_id: str,
        cube: str,
        grain: Grain,
        start: datetime,
        end: datetime,
        version: int,
        dims: Sequence[tuple[str, ...]] | None = None,
        sketches: Collection[str] = ALL_SKETCHES,
        *,
        fold_case: bool = False,
    ) -> list[RollupRow]:
        grain = require_grain(grain)
        chosen = require_sketches(sketches)
        scope = self._scope(merchant_id, cube, grain, start, end, version)
        if scope is None:
            return []
        lo, hi, partitions = scope
        make = _row_maker(merchant_id, cube, grain, version, chosen)
        if dims is None:
            with self._engine.errors("rollup read"):
                found = self._read_partitions(self._read_range[chosen], partitions, lo, hi)
            return [make(r) for r in found]
        wanted = sorted({encode_dims(folded_dims(d) if fold_case else d) for d in dims})
        if not wanted:
            return []
        with self._engine.errors("rollup read"):
            if fold_case:
                windows, wanted = self._case_variants(partitions, lo, hi, wanted)
                if not wanted:
                    return []
            else:
                windows = self._windows(partitions, lo, hi)
            items = list(self._filtered_queries(self._read_dims[chosen], windows, wanted))
            results = self._engine.execute_all(items)
        out = [make(r) for rows in results for r in rows]
        out.sort(key=lambda r: (r.key.window_start, encode_dims(r.key.dims)))
        return out

    def _case_variants(
        self, partitions: list[Partition], lo: datetime, hi: datetime, folded: list[str]
    ) -> tuple[dict[Partition, list[datetime]], list[str]]:
        """(the windows holding a match per partition, the stored encoded dims whose `str.lower()` is in
        `folded`): lists the dims of the range's rows, no values."""
        asked = set(folded)
        windows: dict[Partition, list[datetime]] = {}
        variants: set[str] = set()
        by_bucket = {utc(pk[3]): pk for pk in partitions}
        for bucket, window_start, dims in self._read_partitions(self._range_dims, partitions, lo, hi):
            if dims.lower() in asked:
                variants.add(dims)
                starts = windows.setdefault(by_bucket[utc(bucket)], [])
                if not starts or starts[-1] != utc(window_start):
                    starts.append(utc(window_start))
        return windows, sorted(variants)

    def _filtered_queries(
        self, read_dims: PreparedStatement, windows: dict[Partition, list[datetime]], wanted: list[str]
    ) -> Iterable[Item]:
        """`window_start IN ? AND dims IN ?` queries, ≤ MAX_CLUSTERING_COMBINATIONS combinations each."""
        dims_chunk = min(len(wanted), MAX_CLUSTERING_COMBINATIONS)
        windows_chunk = max(1, MAX_CLUSTERING_COMBINATIONS // dims_chunk)
        for pk, starts in windows.items():
            for i in range(0, len(starts), windows_chunk):
                for j in range(0, len(wanted), dims_chunk):
                    yield (read_dims, (*pk, starts[i : i + windows_chunk], wanted[j : j + dims_chunk]))

    def _read_partitions(
        self,
        statement: PreparedStatement,
        partitions: list[Partition],
        lo: datetime,
        hi: datetime,
        *,
        small_rows: bool = False,
    ) -> list[Sequence[Any]]:
        """The rows of a `_PKS` range statement over `partitions` (of one merchant, cube, grain and version),
        ordered by their first two columns, queries in parallel. Partitions of cubes with wide buckets (few
        rows each), or any partitions when `small_rows` (the statement reads tiny rows), go up to
        MAX_PARTITIONS_PER_QUERY per query: one query for 30 small partitions costs a fraction of 30 queries
        (a 30-day hourly read: 1.6 ms of client CPU instead of 10 ms; the coordinator fans out). Partitions of
        narrow-bucket cubes (up to ~60k rows each) get one query each, so they page in parallel."""
        merchant_id, cube, grain, _, version = partitions[0]
        buckets = [pk[3] for pk in partitions]
        per_query = MAX_PARTITIONS_PER_QUERY if small_rows or cube in self._policy.wide_cubes else 1
        items: list[Item] = [
            (statement, (merchant_id, cube, grain, buckets[i : i + per_query], version, lo, hi))
            for i in range(0, len(buckets), per_query)
        ]
        found = [r for rows in self._engine.execute_all(items) for r in rows]
        if per_query > 1 and len(buckets) > 1:  # the order of partitions in an IN result is not CQL's contract;
            found.sort(key=itemgetter(0, 1))  # one query per bucket, in bucket order, is already in order
        return found

    def _windows(self, partitions: list[Partition], lo: datetime, hi: datetime) -> dict[Partition, list[datetime]]:
        by_bucket: dict[datetime, list[datetime]] = {}
        for bucket, window_start in self._read_partitions(self._read_windows, partitions, lo, hi, small_rows=True):
            by_bucket.setdefault(utc(bucket), []).append(utc(window_start))
        out: dict[Partition, list[datetime]] = {}
        for pk in partitions:
            starts = by_bucket.get(utc(pk[3]))
            if starts:
                out[pk] = sorted(starts)
        return out

    def windows(
        self, merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
    ) -> list[datetime]:
        scope = self._scope(merchant_id, cube, require_grain(grain), start, end, version)
        if scope is None:
            return []
        lo, hi, partitions = scope
        with self._engine.errors("rollup windows"):
            return sorted(w for starts in self._windows(partitions, lo, hi).values() for w in starts)

    def window_stamps(
        self, merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
    ) -> list[WindowStamp]:
        scope = self._scope(merchant_id, cube, require_grain(grain), start, end, version)
        if scope is None:
            return []
        lo, hi, partitions = scope
        with self._engine.errors("rollup window_stamps"):
            found = self._read_partitions(self._read_stamps, partitions, lo, hi, small_rows=True)
        return [WindowStamp(utc(window_start), changed) for window_start, changed in found]

    def data_version(self, merchant_id: str) -> int:
        require_name(merchant_id, "merchant_id")
        with self._engine.errors("rollup data_version"):
            return self._engine.data_version(merchant_id)

    def close(self) -> None:
        if self._owns_engine:
            self._engine.close()


def _row_maker(
    merchant_id: str, cube: str, grain: Grain, version: int, sketches: frozenset[str]
) -> Callable[[Sequence[Any]], RollupRow]:
    """Build RollupRows from (window_start, dims, counters..., the `sketches` columns..., provisional,
    computed_at) tuples, decoding each distinct dims once; a sketch column not read is b""."""
    decoded: dict[str, tuple[str, ...]] = {}
    users_at = 10 if "users" in sketches else -1
    new_users_at = 10 + (users_at >= 0) if "new_users" in sketches else -1
    tail = 10 + len(sketches)

    def make(r: Sequence[Any]) -> RollupRow:
        dims = decoded.get(r[1])
        if dims is None:
            dims = decoded[r[1]] = decode_dims(r[1])
        users = (r[users_at] or b"") if users_at >= 0 else b""  # an empty blob may come back as None
        new_users = (r[new_users_at] or b"") if new_users_at >= 0 else b""
        metrics = (*r[2:10], users, new_users)
        return restore_row(merchant_id, cube, grain, utc(r[0]), dims, version, metrics, bool(r[tail]), utc(r[tail + 1]))

    return make


def _change_token() -> int:
    """A random 63-bit window change token (equality is all that matters; no clock, so no skew)."""
    return secrets.randbits(63)
