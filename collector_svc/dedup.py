"""Recently accepted event ids, so that a retried batch is answered DUPLICATE instead of written again.

How far this reaches, and no further:
- One collector process, memory only. Another collector instance, or this one after a restart, does not know
  these ids; two copies of a batch in flight at the same time both pass.
- Bounded by generations: ids go into the current generation; when it holds `capacity / 2` ids (all merchants
  together) it becomes the previous generation and the one before is dropped. So the cache always knows at
  least the last `capacity / 2` accepted ids and never holds more than `capacity` — "the last few minutes" of
  traffic, best effort.
- Only ids whose batch was durably accepted are added.
The real guarantee is downstream: the aggregator keeps one copy per (merchant, event id), so a duplicate that
slips past this cache is never double-counted. This cache only saves log space and tells honest clients.

Cost: every operation is a C-level set operation over the batch (no per-id Python work on the common path
where a batch holds no duplicate), because this sits on the collector's hot path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence


class RecentIds:
    """Per-merchant recently accepted ids in two generations under one global bound. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._generation_size = capacity // 2 if capacity > 1 else capacity
        self._current: dict[str, set[str]] = {}
        self._previous: dict[str, set[str]] = {}
        self._current_size = 0
        self._previous_size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._current_size + self._previous_size

    def duplicates(self, merchant_id: str, event_ids: Sequence[str], skip: Iterable[int] = ()) -> list[int]:
        """Indexes of `event_ids` recently accepted for this merchant (not counting indexes in `skip`)."""
        current = self._current.get(merchant_id, set())
        previous = self._previous.get(merchant_id, set())
        if current.isdisjoint(event_ids) and previous.isdisjoint(event_ids):
            return []
        skipped = set(skip)
        return [i for i, eid in enumerate(event_ids) if (eid in current or eid in previous) and i not in skipped]

    def add(self, merchant_id: str, event_ids: Iterable[str]) -> None:
        """Remember these ids as accepted for the merchant; rotates generations when the current one is full."""
        if self._generation_size == 0:
            return
        with self._lock:
            ids = self._current.setdefault(merchant_id, set())
            before = len(ids)
            ids.update(event_ids)
            self._current_size += len(ids) - before
            if self._current_size >= self._generation_size:
                self._previous, self._previous_size = self._current, self._current_size
                self._current, self._current_size = {}, 0
