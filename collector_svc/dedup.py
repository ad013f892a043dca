"""Recently accepted event ids, so that a retried batch is answered DUPLICATE instead of written again.

How far this reaches, and no further:
- One collector process, memory only. Another collector instance, or this one after a restart, does not know
  these ids; two copies of a batch in flight at the same time both pass.
- Bounded: at most `capacity` ids in all; when full, the ids of the merchant that sent least recently go
  first (oldest first), so the cache covers "the last few minutes" of each active merchant, best effort.
- Only ids whose batch was durably accepted are added.
The real guarantee is downstream: the aggregator drops repeated event_ids per merchant, so a duplicate that
slips past this cache is never double-counted. This cache only saves log space and tells honest clients.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence


class RecentIds:
    """Per-merchant LRU of accepted event ids under one global bound. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._capacity = capacity
        self._by_merchant: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def duplicates(self, merchant_id: str, event_ids: Sequence[str], skip: Iterable[int] = ()) -> list[int]:
        """Indexes of `event_ids` recently accepted for this merchant (not counting indexes in `skip`)."""
        ids = self._by_merchant.get(merchant_id)
        if not ids or ids.keys().isdisjoint(event_ids):
            return []
        skipped = set(skip)
        return [i for i, eid in enumerate(event_ids) if eid in ids and i not in skipped]

    def add(self, merchant_id: str, event_ids: Iterable[str]) -> None:
        """Remember these ids as accepted for the merchant, evicting the least recent when over capacity."""
        if self._capacity == 0:
            return
        with self._lock:
            ids = self._by_merchant.get(merchant_id)
            if ids is None:
                ids = self._by_merchant[merchant_id] = OrderedDict()
            else:
                self._by_merchant.move_to_end(merchant_id)
            before = len(ids)
            ids.update(dict.fromkeys(event_ids))
            self._size += len(ids) - before
            while self._size > self._capacity:
                oldest_merchant, oldest = next(iter(self._by_merchant.items()))
                for _ in range(min(len(oldest), self._size - self._capacity)):
                    oldest.popitem(last=False)
                    self._size -= 1
                if not oldest:
                    del self._by_merchant[oldest_merchant]
