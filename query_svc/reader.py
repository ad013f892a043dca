"""Reading rollups for a plan: the merchant's ACTIVE processing version per time span, into columns.

For each segment of a plan, `VersionRegistry.active_spans` cuts its range into spans of one active version
(a reprocess flips ranges to a new version; queries keep being served from whichever version is active), and
each span is one `RollupStore.read` of that version. A window belongs to the version active at its start.

The rows come back as one `RowBatch`: window starts and dimension tuples factorized into small code arrays,
the eight counters as one (8, n) int64 matrix, the two sketch columns as `Sketches`. This is the only
per-row Python pass of a report; everything after it works on arrays. With a `WindowCache`, closed windows
already decoded are reused after one `window_stamps` read of the range validates them, and only new, open or
changed windows are read (see `query_svc.window_cache` for why that is never stale).

Blocking (the store and registry block); raises RollupUnavailable / RollupInvalid from them and
DeadlineExceeded (via `Deadline.check`) between reads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Final

import numpy as np
import numpy.typing as npt

from gnomon.rollups import Grain, Metrics, RollupRow, RollupStore, VersionRegistry, VersionSpan
from gnomon.rollups.model import ALL_SKETCHES, COUNTER_FIELDS
from query_svc.errors import DeadlineExceeded
from query_svc.planner import Pushdown, Segment
from query_svc.window_cache import DimsIndex, WindowCache, WindowRows

I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]

COUNTER_INDEX: Final = {name: i for i, name in enumerate(COUNTER_FIELDS)}
SMALL_PARTS: Final = 16  # Sketches joins its parts into one list when they hold fewer rows than this on average
_COUNTERS = attrgetter(*COUNTER_FIELDS)


class Deadline:
    """The time left for a call (`remaining()` in seconds, None = no deadline); `check` raises when it ran out."""

    def __init__(self, remaining: Callable[[], float | None] | None = None) -> None:
        self._remaining = remaining

    def left(self) -> float | None:
        return None if self._remaining is None else self._remaining()

    def check(self, step: str) -> None:
        left = self.left()
        if left is not None and left <= 0:
            raise DeadlineExceeded(
                f"the deadline passed before {step}; retry with a longer deadline or a smaller range"
            )


NO_DEADLINE: Final = Deadline()


class Sketches:
    """A column of serialized sketches kept as the parts it was read in (one list per window), so assembling
    a long range never copies hundreds of thousands of references; `take` picks rows by batch position."""

    def __init__(self, parts: Sequence[list[bytes]]) -> None:
        self._parts = [p for p in parts if p]
        if len(self._parts) > 1 and sum(map(len, self._parts)) < SMALL_PARTS * len(self._parts):
            self._parts = [[s for p in self._parts for s in p]]  # many tiny parts (one row per hour): one list
        sizes = [len(p) for p in self._parts]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp) if sizes else np.zeros(1, np.intp)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def take(self, rows: IntP | Sequence[int]) -> list[bytes]:
        """The sketches of batch rows `rows`."""
        if len(self._parts) == 1:
            part = self._parts[0]
            return [part[i] for i in np.asarray(rows, dtype=np.intp).tolist()]
        positions = np.asarray(rows, dtype=np.intp)
        which = np.searchsorted(self._offsets, positions, side="right") - 1
        local = positions - self._offsets[which]
        parts = self._parts
        return [parts[w][i] for w, i in zip(which.tolist(), local.tolist(), strict=True)]

    def __getitem__(self, row: int) -> bytes:
        return self.take([row])[0]

    @property
    def parts(self) -> list[list[bytes]]:
        return self._parts


@dataclass(frozen=True)
class RowBatch:
    """Rollup rows as columns: row i is (windows[window_codes[i]], dims[dims_codes[i]], counters[:, i], ...).

    `counters` has shape (len(COUNTER_FIELDS), n): each counter is one contiguous array."""

    windows: list[datetime]
    window_codes: IntP
    dims: list[tuple[str, ...]]
    dims_codes: IntP
    counters: I64
    users: Sketches
    new_users: Sketches
    provisional: bool
    sketches_read: frozenset[str] = ALL_SKETCHES  # the other sketch columns were not read (all b"")

    def __len__(self) -> int:
        return int(self.counters.shape[1])

    def sketch_column(self, sketch_field: str) -> Sketches:
        """The `users` or `new_users` column; raises ValueError when it was not read (a planning bug that would
        otherwise estimate 0 users)."""
        if sketch_field not in self.sketches_read:
            raise ValueError(f"sketch column {sketch_field!r} was not read (read: {sorted(self.sketches_read)})")
        return self.users if sketch_field == "users" else self.new_users

    @classmethod
    def from_rows(cls, rows: Sequence[RollupRow], sketches_read: frozenset[str] = ALL_SKETCHES) -> RowBatch:
        window_index: dict[datetime, int] = {}
        dims_index: dict[tuple[str, ...], int] = {}
        keys = [r.key for r in rows]
        metrics = [r.metrics for r in rows]
        window_codes = np.fromiter(
            (window_index.setdefault(k.window_start, len(window_index)) for k in keys), np.intp, len(keys)
        )
        dims_codes = np.fromiter((dims_index.setdefault(k.dims, len(dims_index)) for k in keys), np.intp, len(keys))
        return cls(
            windows=list(window_index),
            window_codes=window_codes,
            dims=list(dims_index),
            dims_codes=dims_codes,
            counters=_counters(metrics),
            users=Sketches([[m.users for m in metrics]]),
            new_users=Sketches([[m.new_users for m in metrics]]),
            provisional=any(r.provisional for r in rows),
            sketches_read=sketches_read,
        )

    @classmethod
    def from_windows(cls, windows: Sequence[WindowRows], dims: list[tuple[str, ...]]) -> RowBatch:
        """Concatenate windows coded in one DimsIndex (`dims` is a snapshot of it taken after they were coded)."""
        sizes = [len(w) for w in windows]
        return cls(
            windows=[w.window_start for w in windows],
            window_codes=np.repeat(np.arange(len(windows), dtype=np.intp), sizes),
            dims=dims,
            dims_codes=np.concatenate([w.dims_codes for w in windows]) if windows else np.zeros(0, np.intp),
            counters=np.concatenate([w.counters for w in windows], axis=1) if windows else _counters([]),
            users=Sketches([w.users for w in windows]),
            new_users=Sketches([w.new_users for w in windows]),
            provisional=any(w.provisional for w in windows),
        )

    @classmethod
    def concat(cls, batches: Sequence[RowBatch]) -> RowBatch:
        """One batch of several (their dims are re-coded into one list; windows never overlap)."""
        if len(batches) == 1:
            return batches[0]
        index: dict[tuple[str, ...], int] = {}
        dims_codes: list[IntP] = []
        window_codes: list[IntP] = []
        offset = 0
        for b in batches:
            remap = np.fromiter((index.setdefault(d, len(index)) for d in b.dims), np.intp, len(b.dims))
            dims_codes.append(remap[b.dims_codes] if len(b) else np.zeros(0, np.intp))
            window_codes.append(b.window_codes + offset)
            offset += len(b.windows)
        return cls(
            windows=[w for b in batches for w in b.windows],
            window_codes=np.concatenate(window_codes) if batches else np.zeros(0, np.intp),
            dims=list(index),
            dims_codes=np.concatenate(dims_codes) if batches else np.zeros(0, np.intp),
            counters=np.concatenate([b.counters for b in batches], axis=1) if batches else _counters([]),
            users=Sketches([p for b in batches for p in b.users.parts]),
            new_users=Sketches([p for b in batches for p in b.new_users.parts]),
            provisional=any(b.provisional for b in batches),
            sketches_read=frozenset.intersection(*(b.sketches_read for b in batches)) if batches else ALL_SKETCHES,
        )


def _counters(metrics: Sequence[Metrics]) -> I64:
    """The counters of `metrics` as a (len(COUNTER_FIELDS), n) int64 array, each counter contiguous."""
    if not metrics:
        return np.zeros((len(COUNTER_FIELDS), 0), dtype=np.int64)
    return np.ascontiguousarray(np.array([_COUNTERS(m) for m in metrics], dtype=np.int64).T)


def window_rows(
    rows: Sequence[RollupRow], index: DimsIndex, tokens: Mapping[datetime, Hashable | None]
) -> list[WindowRows]:
    """`rows` (ordered by window, as the store returns them) cut into windows, dims coded in `index`, each
    stamped with its change token from `tokens` (read before `rows`; no token: None)."""
    out: list[WindowRows] = []
    i = 0
    while i < len(rows):
        start = rows[i].key.window_start
        j = i
        while j < len(rows) and rows[j].key.window_start == start:
            j += 1
        part = rows[i:j]
        metrics = [r.metrics for r in part]
        out.append(
            WindowRows(
                index=index,
                window_start=start,
                dims_codes=index.codes([r.key.dims for r in part]),
                counters=_counters(metrics),
                users=[m.users for m in metrics],
                new_users=[m.new_users for m in metrics],
                provisional=any(r.provisional for r in part),
                stamp=tokens.get(start),
            )
        )
        i = j
    return out


@dataclass(frozen=True)
class ReadStats:
    reads: int
    rows: int
    grains: tuple[str, ...]
    cached_windows: int = 0


class RollupReader:
    """Reads a plan's segments of one cube at the active versions. Thread-safe if the store and registry are.

    With a `WindowCache`, closed windows already decoded are reused and only new, open or changed windows are
    re-read with their sketches. Each version span is validated by one `window_stamps` read of its range (a
    change token per window, no values): a cached window is valid when its token equals the one read before it
    was fetched. Reads pinned to dimension values (`pushdown`) go to the store, except DAY segments pinned
    case-insensitively: those windows are read whole through the cache (the caller filters), which costs less
    than the store's case-folding search of them. Reads of `small_cubes` (a few rows per window, e.g. `total`)
    without sketches also go to the store: they cost what their validation would. Reads that go to the store
    fetch only the `sketches` asked for (see `RollupStore.read`); windows kept in the cache always hold both.
    """

    def __init__(
        self,
        store: RollupStore,
        registry: VersionRegistry,
        window_cache: WindowCache | None = None,
        small_cubes: frozenset[str] = frozenset({"total"}),
    ) -> None:
        self._store = store
        self._registry = registry
        self._cache = window_cache if window_cache is not None and window_cache.enabled else None
        self._small = small_cubes

    def read(
        self,
        merchant_id: str,
        cube: str,
        plan: Sequence[Segment],
        pushdown: Pushdown | None = None,
        deadline: Deadline = NO_DEADLINE,
        sketches: frozenset[str] = ALL_SKETCHES,
    ) -> tuple[RowBatch, ReadStats]:
        """The rows of `plan` at the active versions (at least those `pushdown` allows, when given: a superset
        the caller filters); the batch's `sketches_read` covers at least `sketches`."""
        # a small cube read without sketches is as cheap as its validation: no cache then
        cacheable = self._cache is not None and (bool(sketches) or cube not in self._small)
        dims, fold_case = (None, False) if pushdown is None else (pushdown.dims, pushdown.fold_case)
        batches: list[RowBatch] = []
        reads = rows = cached = 0
        for segment in plan:
            # A case-insensitive pin makes the store search every window's dims (on CQL: list them all); DAY
            # windows, 24x fewer rows than hours, are cheaper whole from the window cache, filtered afterwards.
            whole = pushdown is None or (fold_case and segment.grain is Grain.DAY and cacheable)
            use_cache = cacheable and whole
            deadline.check(f"reading {segment.grain.value} rows of cube {cube}")
            for span in self._registry.active_spans(merchant_id, segment.start, segment.end):
                deadline.check(f"reading {segment.grain.value} rows of cube {cube}")
                if use_cache:
                    batch, span_reads, span_cached = self._read_cached(merchant_id, cube, segment, span)
                else:
                    found = self._store.read(
                        merchant_id,
                        cube,
                        segment.grain,
                        span.start,
                        span.end,
                        span.version,
                        None if whole else dims,
                        sketches,
                        fold_case=fold_case and not whole,
                    )
                    batch, span_reads, span_cached = RowBatch.from_rows(found, sketches), 1, 0
                batches.append(batch)
                reads += span_reads
                cached += span_cached
                rows += len(batch)
        deadline.check("aggregating")
        grains = tuple(dict.fromkeys(s.grain.value for s in plan))
        batch = RowBatch.concat(batches) if batches else RowBatch.from_rows([], sketches)
        return batch, ReadStats(reads, rows, grains, cached)

    def _read_cached(
        self, merchant_id: str, cube: str, segment: Segment, span: VersionSpan
    ) -> tuple[RowBatch, int, int]:
        """One version span through the window cache: (batch, store calls, windows served from the cache).

        Windows without a valid cached copy are read in contiguous runs, with both sketches, and cached.
        """
        cache = self._cache
        assert cache is not None
        store, version, grain = self._store, span.version, segment.grain
        index = cache.scope(merchant_id, cube, version)
        listed, valid, tokens = self._validate_by_stamps(merchant_id, cube, segment, span, index)
        reads = 1
        parts = dict(valid)
        i = 0
        while i < len(listed):
            if listed[i] in valid:
                i += 1
                continue
            j = i
            while j < len(listed) and listed[j] not in valid:
                j += 1
            hi = listed[j] if j < len(listed) else span.end
            for w in window_rows(store.read(merchant_id, cube, grain, listed[i], hi, version), index, tokens):
                parts[w.window_start] = w
                cache.put((merchant_id, cube, grain, version, w.window_start), w)
            reads += 1
            i = j
        ordered = [parts[ws] for ws in sorted(parts)]
        return RowBatch.from_windows(ordered, index.snapshot()), reads, len(valid)

    def _cached_windows(
        self, merchant_id: str, cube: str, grain: Grain, version: int, listed: Sequence[datetime], index: DimsIndex
    ) -> dict[datetime, WindowRows]:
        cache = self._cache
        assert cache is not None
        found: dict[datetime, WindowRows] = {}
        for ws in listed:
            entry = cache.get((merchant_id, cube, grain, version, ws), index)
            if entry is not None:
                found[ws] = entry
        return found

    def _validate_by_stamps(
        self, merchant_id: str, cube: str, segment: Segment, span: VersionSpan, index: DimsIndex
    ) -> tuple[list[datetime], dict[datetime, WindowRows], dict[datetime, Hashable | None]]:
        """(the span's windows with rows, the valid cached ones, each window's change token): one
        `window_stamps` read, no values."""
        cache = self._cache
        assert cache is not None
        grain, version = segment.grain, span.version
        stamps = self._store.window_stamps(merchant_id, cube, grain, span.start, span.end, version)
        tokens = dict(stamps)
        listed = list(tokens)
        candidates = self._cached_windows(merchant_id, cube, grain, version, listed, index)
        valid = {ws: entry for ws, entry in candidates.items() if entry.stamp is not None and entry.stamp == tokens[ws]}
        cache.counted(len(valid), len(candidates) - len(valid))
        return listed, valid, tokens
