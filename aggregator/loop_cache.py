"""A worker's cache of recently loaded merchant-days: saves `load_day` (the costliest step of a recompute) when the
same worker recomputes the same day again. The event store stays the truth; the cache only ever answers with
what `load_day` would return now, or not at all.

Generations. The loop numbers the upserts of each merchant-day within its process (`epoch`, a random id per loop
process): a job carries (epoch, before, after) and, when `after > before`, the rows that upsert added. A cached
day tagged (epoch, before) is exactly the store's content after generation `before` (it was loaded after that
upsert, or built from such an entry), so merging the new rows into it with the store's rule gives the store's
content after `after`. Any other tag (another loop process, a generation this worker did not see, a failed cycle
retried) means: load from the store. A merge that meets two different copies of one event received at the same
microsecond (where the store's choice is undefined) also falls back to the store.

Merging keeps one row per event_id, the copy received last, and orders rows by (event_time_us, event_id): the
same frame `EventStore.load_day` returns, so recomputations are identical with or without the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

import pandas as pd

from aggregator.frame import EVENT_ID, EVENT_TIME_US, RAW_COLUMNS, RECEIVED_TIME_US

Generation = tuple[str, int, int]  # (loop epoch, generation before this job's upsert, after it)


@dataclass(frozen=True)
class _Entry:
    epoch: str
    generation: int
    frame: pd.DataFrame


def merge_day(cached: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame | None:
    """`cached` plus `new` under the event store's rule (see the module docstring), or None when the rule is
    undefined for some event (different copies received at the same microsecond)."""
    merged = pd.concat([cached, new[list(RAW_COLUMNS)]], ignore_index=True)
    repeated = merged.duplicated(EVENT_ID, keep=False)
    if bool(repeated.any()):
        dups = merged[repeated.to_numpy()]
        latest = dups.groupby(EVENT_ID, sort=False)[RECEIVED_TIME_US].transform("max")
        tied = dups[dups[RECEIVED_TIME_US].to_numpy() == latest.to_numpy()]
        if bool(tied.drop_duplicates().duplicated(EVENT_ID).any()):
            return None
        merged = merged.sort_values(RECEIVED_TIME_US, kind="stable").drop_duplicates(EVENT_ID, keep="last")
    return merged.sort_values([EVENT_TIME_US, EVENT_ID], kind="stable", ignore_index=True)


class DayCache:
    """Merchant-days of one worker process, least recently used first out, at most `max_rows` rows in all.

    Thread-safe (a worker may run several tasks at once; one merchant-day is in one task at a time).
    """

    def __init__(self, max_rows: int = 2_000_000) -> None:
        self.max_rows = max_rows
        self._entries: OrderedDict[tuple[str, date], _Entry] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(
        self, merchant_id: str, day: date, generation: Generation | None, new: pd.DataFrame | None
    ) -> pd.DataFrame | None:
        """The day's frame after this job's upsert, from the cache; None when the store must be read."""
        if generation is None:
            return None
        epoch, before, after = generation
        with self._lock:
            entry = self._entries.get((merchant_id, day))
            if entry is not None:
                self._entries.move_to_end((merchant_id, day))
        if entry is None or entry.epoch != epoch or entry.generation != before:
            self.misses += 1
            return None
        frame = entry.frame
        if after != before:
            if new is None:
                self.misses += 1
                return None
            merged = merge_day(frame, new)
            if merged is None:
                self.misses += 1
                return None
            frame = merged
        self.hits += 1
        return frame

    def put(self, merchant_id: str, day: date, generation: Generation | None, frame: pd.DataFrame) -> None:
        """Remember `frame` as the day's content after `generation`'s upsert (ignored without a generation)."""
        if generation is None or len(frame) > self.max_rows:
            return
        key = (merchant_id, day)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._rows -= len(old.frame)
            self._entries[key] = _Entry(generation[0], generation[2], frame)
            self._rows += len(frame)
            while self._rows > self.max_rows and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._rows -= len(evicted.frame)
