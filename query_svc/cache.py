"""An LRU cache of report results that can never serve a stale answer.

Only results whose windows are all closed are stored (the engine decides: no provisional row was read and
every range ended before the request). The key holds the merchant, the full request with its dates RESOLVED
(so "yesterday" rolls over at the merchant's midnight) and `RollupStore.data_version(merchant)`, which grows
with every write of the merchant's rows and every processing-version flip: after new data or a reprocess
the key changes and the old entry simply ages out of the LRU. Entries also expire after `ttl_s` (the CQL
data version is a write clock; see the RollupStore docstring), so a skewed writer clock cannot pin an entry.

Thread-safe; every operation is O(1) under one lock. Hits and misses are counted (`stats`) and reported to
the `on_lookup` callback (the service's cache hit counter).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    entries: int


class ResultCache(Generic[V]):
    """LRU of at most `max_entries` values (0 disables caching), each kept at most `ttl_s` seconds."""

    def __init__(
        self,
        max_entries: int,
        ttl_s: float = 3600.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._now = monotonic
        self._on_lookup = on_lookup
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @property
    def enabled(self) -> bool:
        return self._max > 0

    def get(self, key: Hashable) -> V | None:
        if not self.enabled:
            return None
        now = self._now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] <= now:
                del self._entries[key]
                entry = None
            if entry is None:
                self._misses += 1
            else:
                self._hits += 1
                self._entries.move_to_end(key)
        if self._on_lookup is not None:
            self._on_lookup(entry is not None)
        return None if entry is None else entry[1]

    def put(self, key: Hashable, value: V) -> None:
        if not self.enabled:
            return
        expires = self._now() + self._ttl
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
