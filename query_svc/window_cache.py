"""A cache of CLOSED rollup windows as columns, so long ranges do not re-read (and re-decode) unchanged windows.

Why: a 30-day top-10 over a cube of ~10k values per day reads ~300k rows; decoding them through the
RollupStore port costs seconds (mostly building RollupRow objects), while the result cache misses whenever
the merchant's `data_version` moved — every few seconds for an active merchant, whose open hour is re-emitted
continuously. Closed windows of past days almost never change, so the reader keeps them here and re-reads
only the windows that are new, open (provisional) or changed.

Validation, on every use, with one small read: a query reads the change tokens of its range's windows
(`RollupStore.window_stamps`: a few bytes per window, no values; on SQLite a window pack's summary columns, on
CQL the window index), before reading any rows. Each cached window carries the token read before its rows were
fetched, and is used only while the range's current token for it is equal and not None; otherwise the window is
read again, and cached under the token just read. Windows without a token (provisional ones on SQLite, windows
written before migration 0004 on CQL) are never cached.

On CQL every write of a window sets a new random token. On SQLite the token is derived from the window's rows
(row count and their shared computation time), which relies on how windows change, as the aggregator guarantees
(aggregator.loop_tasks.write_day and aggregator.compute.aggregate_day): a changed window is rewritten WHOLE,
every row of a recomputation carrying the new computation time, and a dropped window is emptied (so it has no
token). A writer that overwrote single rows of a closed window keeping an old `computed_at` would make this cache
serve stale rows from SQLite: turn it off (GNOMON_QUERY_WINDOW_CACHE_ROWS=0) for such a writer. Processing-version flips
need nothing: versions are part of the key and the reader asks the registry for the active spans every time.

Dimension tuples are coded in one append-only `DimsIndex` per (merchant, cube, version) scope, so assembling a
range from cached windows is array concatenation. Memory is bounded by `max_rows` (LRU over windows); a scope
whose index outgrows `max_scope_values` is dropped with its windows. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from gnomon.rollups import Grain

I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]

DEFAULT_MAX_SCOPE_VALUES: Final = 2_000_000


class DimsIndex:
    """Append-only codes for dimension tuples of one (merchant, cube, version) scope. Thread-safe."""

    def __init__(self) -> None:
        self._values: list[tuple[str, ...]] = []
        self._codes: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def codes(self, dims: Sequence[tuple[str, ...]]) -> IntP:
        """The code of each tuple (new tuples are appended)."""
        with self._lock:
            table = self._codes
            values = self._values
            out = np.empty(len(dims), dtype=np.intp)
            for i, d in enumerate(dims):
                code = table.get(d)
                if code is None:
                    code = table[d] = len(values)
                    values.append(d)
                out[i] = code
            return out

    def snapshot(self) -> list[tuple[str, ...]]:
        """The tuples known now, by code (a copy: later additions do not change it)."""
        with self._lock:
            return list(self._values)


@dataclass(frozen=True)
class WindowRows:
    """The rows of one window, dims coded in `index`; `stamp` validates it (see module doc)."""

    index: DimsIndex
    window_start: datetime
    dims_codes: IntP
    counters: I64  # (len(COUNTER_FIELDS), n)
    users: list[bytes]
    new_users: list[bytes]
    provisional: bool
    stamp: Hashable | None  # the window's change token read before these rows were (None: never valid)

    def __len__(self) -> int:
        return len(self.users)


WindowKey = tuple[str, str, Grain, int, datetime]  # merchant, cube, grain, version, window_start
ScopeKey = tuple[str, str, int]  # merchant, cube, version


@dataclass(frozen=True)
class WindowCacheStats:
    windows: int
    rows: int
    scopes: int
    hits: int
    misses: int
    invalidated: int


class WindowCache:
    """LRU of closed windows' rows, at most `max_rows` rows in all (0 disables it)."""

    def __init__(self, max_rows: int, max_scope_values: int = DEFAULT_MAX_SCOPE_VALUES) -> None:
        self._max_rows = max_rows
        self._max_scope_values = max_scope_values
        self._windows: OrderedDict[WindowKey, WindowRows] = OrderedDict()
        self._scopes: dict[ScopeKey, DimsIndex] = {}
        self._rows = 0
        self._hits = 0
        self._misses = 0
        self._invalidated = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._max_rows > 0

    def scope(self, merchant_id: str, cube: str, version: int) -> DimsIndex:
        """The dims index of a scope (a fresh one when the old grew too large: its windows are dropped)."""
        key = (merchant_id, cube, version)
        with self._lock:
            index = self._scopes.get(key)
            if index is not None and len(index) > self._max_scope_values:
                stale = [k for k, w in self._windows.items() if w.index is index]
                for k in stale:
                    self._rows -= len(self._windows.pop(k))
                index = None
            if index is None:
                index = self._scopes[key] = DimsIndex()
            return index

    def get(self, key: WindowKey, index: DimsIndex) -> WindowRows | None:
        """The cached window (not yet validated) if it was coded in `index`."""
        with self._lock:
            entry = self._windows.get(key)
            if entry is None or entry.index is not index:
                self._misses += 1
                return None
            self._windows.move_to_end(key)
            return entry

    def put(self, key: WindowKey, rows: WindowRows) -> None:
        if not self.enabled or rows.provisional or rows.stamp is None or len(rows) > self._max_rows:
            return
        with self._lock:
            old = self._windows.pop(key, None)
            if old is not None:
                self._rows -= len(old)
            self._windows[key] = rows
            self._rows += len(rows)
            while self._rows > self._max_rows and self._windows:
                _, evicted = self._windows.popitem(last=False)
                self._rows -= len(evicted)
            live = {id(w.index) for w in self._windows.values()}
            if len(self._scopes) > 4 * max(len(self._windows), 1_000):
                self._scopes = {k: v for k, v in self._scopes.items() if id(v) in live}

    def counted(self, hits: int, invalidated: int) -> None:
        """Record the outcome of one validation: `hits` windows used, `invalidated` found changed."""
        with self._lock:
            self._hits += hits
            self._invalidated += invalidated

    def stats(self) -> WindowCacheStats:
        with self._lock:
            return WindowCacheStats(
                len(self._windows), self._rows, len(self._scopes), self._hits, self._misses, self._invalidated
            )
