"""The RollupStore port: where the aggregator's windowed rollups live and the query service reads them.

Two adapters implement it and one contract suite (tests/contract/test_rollup_store_contract.py) runs against
both: `SqliteRollupStore` (embedded, one SQLite file) and `CqlRollupStore` (Scylla/Cassandra).

Shared contract:
- Rows are keyed by `RollupKey` (merchant, cube, grain, window_start, dims, version); every write is an
  idempotent overwrite of whole rows: no counters, no read-modify-write, replaying a write changes nothing.
- Reads are merchant-scoped (every method takes one merchant_id; no call returns another merchant's rows) and
  version-scoped (rows of another processing version are invisible).
- Ranges are half-open over `window_start`: start <= window_start < end; `start >= end` selects nothing.
- Rows come back ordered by window_start, then by the storage encoding of dims (`gnomon.rollups.dims`),
  which is the same order in every adapter.
- Every method blocks until done; every method may raise RollupUnavailable (engine down, timeout) and raises
  RollupInvalid for malformed arguments. Implementations are safe to call from many threads.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from gnomon.rollups.columns import RollupColumns
from gnomon.rollups.model import ALL_SKETCHES, Grain, RollupRow, WindowStamp


class RollupStore(Protocol):
    """Windowed rollups of every merchant, per cube, grain, window, dimension value and processing version."""

    def write(self, rows: Sequence[RollupRow]) -> None:
        """Store `rows`, overwriting rows with the same keys (same rows twice = same state).

        When `rows` repeats a key the last occurrence wins. Returns once every row is durable: committed (SQLite)
        or acknowledged at the configured consistency level (CQL). Advances `data_version` of every merchant in
        `rows` after the rows are durable. Not atomic across rows on CQL: after RollupUnavailable, retry.
        """
        ...

    def replace_window(
        self,
        merchant_id: str,
        cube: str,
        grain: Grain,
        window_start: datetime,
        version: int,
        rows: Sequence[RollupRow],
    ) -> None:
        """Make `rows` the complete content of one window of one cube and version: rows of that window whose
        dims are not in `rows` are deleted (a recomputation may drop a dimension value). `rows` may be empty
        (the window then has no rows). Every row must belong to that merchant/cube/grain/window/version, else
        RollupInvalid.

        SQLite: one transaction, readers see the old or the new window. CQL (no LWT): the new rows are written
        first, then the stale ones are deleted, so a concurrent reader may briefly see the new rows plus some of
        the rows being removed, never a window missing a row that stays. One writer per window at a time.
        """
        ...

    def replace_window_columns(self, window_start: datetime, block: RollupColumns) -> None:
        """`replace_window` of the window at `window_start` of the block's merchant, cube, grain and version, with
        the rows `block` holds (an empty block empties the window). Every row's `window_start_s` must be that
        window's, else RollupInvalid. Same atomicity as `replace_window`; the SQLite adapter builds no object per
        row (the aggregator writes its recomputed windows this way)."""
        ...

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
        """Rows with start <= window_start < end; when `dims` is given, only rows whose dims equal one of them
        (an empty `dims` selects nothing); with `fold_case`, rows whose dims equal one of them once every value
        on both sides is lower-cased (`str.lower`, as case-insensitive filters compare): every stored case
        variant. With `fold_case`, SQLite searches each pack's lower-cased dims; CQL first lists the dims of the
        range's rows (no values), then reads the matching rows. The CQL adapter refuses (RollupInvalid) ranges
        spanning more than 20,000 partitions (~13 years of hour rows of a narrow cube): long ranges read the DAY
        grain.

        `sketches` names the sketch columns to read (of `model.SKETCH_COLUMNS`; unknown names → RollupInvalid):
        a sketch column not named is not read and comes back as b"" in every row (a series of pageviews and
        users need not fetch the ~2 KB new-users sketch of each row)."""
        ...

    def windows(
        self, merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
    ) -> list[datetime]:
        """The distinct window starts in [start, end) that have at least one row, ascending."""
        ...

    def window_stamps(
        self, merchant_id: str, cube: str, grain: Grain, start: datetime, end: datetime, version: int
    ) -> list[WindowStamp]:
        """For each window in [start, end) with rows, ascending: its change token. Reads no values: a cheap way
        to tell whether a cached copy of a window is still current.

        Contract: a copy of a window read after its token was read is current as long as a later call returns
        an equal, non-None token; None means unknown (never trust a copy). SQLite: the token is derived from the
        window's rows (row count and the computation time they share; None while any row is provisional or
        their times differ), which relies on the aggregator rewriting a changed window whole with a new
        computation time. CQL: a random token set by every write or `replace_window` that touches the window,
        after its rows are durable (None for windows written before schema migration 0004)."""
        ...

    def data_version(self, merchant_id: str) -> int:
        """A token that grows whenever the merchant's rows (or active processing versions) change: caches of
        query results may be keyed by it. 0 before the first write. One point read.

        SQLite: strictly increasing per change. CQL: the largest write clock (µs) seen; strictly increasing as
        long as writers' clocks are synchronised better than their write interval (NTP) — a write stamped
        earlier than the current token by a skewed clock does not advance it, so caches should also expire.
        """
        ...

    def close(self) -> None:
        """Release connections and files; the store is unusable afterwards. Idempotent."""
        ...
