"""Per-merchant token buckets: `rate` events per second sustained, bursts up to `burst` events.

A batch costs one token per event (at least one, so empty or garbage batches are not free). A batch that
does not fit is refused whole with the time after which it would fit (RetryInfo); nothing is queued.
A batch larger than the burst is charged the burst, so it can always pass eventually. The bucket table is
bounded: past `max_merchants`, the least recently seen merchant's bucket is dropped (it restarts full).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Thread-safe token buckets; `rate <= 0` disables limiting."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_merchants: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = float(rate)
        self._burst = max(float(burst), 1.0)
        self._max = max_merchants
        self._now = monotonic
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # merchant -> [tokens, last refill]
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def acquire(self, merchant_id: str, cost: int) -> float:
        """Take `cost` tokens and return 0.0, or take none and return the seconds to wait before a retry."""
        if self._rate <= 0:
            return 0.0
        need = min(max(float(cost), 1.0), self._burst)
        with self._lock:
            now = self._now()
            bucket = self._buckets.get(merchant_id)
            if bucket is None:
                bucket = self._buckets[merchant_id] = [self._burst, now]
                if len(self._buckets) > self._max:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(merchant_id)
                bucket[0] = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
                bucket[1] = now
            if bucket[0] + 1e-9 >= need:  # tolerate float rounding of the refill
                bucket[0] = max(0.0, bucket[0] - need)
                return 0.0
            return (need - bucket[0]) / self._rate
