"""Per-merchant token buckets with a fake monotonic clock."""

from __future__ import annotations

import pytest

from collector_svc.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refuse_with_wait_time() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=100, burst=500, monotonic=clock)
    assert limiter.acquire("m", 500) == 0.0
    assert limiter.acquire("m", 50) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("m", 50) == 0.0


def test_merchants_are_independent() -> None:
    limiter = RateLimiter(rate=10, burst=10, monotonic=Clock())
    assert limiter.acquire("a", 10) == 0.0
    assert limiter.acquire("a", 1) > 0
    assert limiter.acquire("b", 10) == 0.0


def test_cost_at_least_one_and_at_most_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=5, monotonic=clock)
    assert limiter.acquire("m", 0) == 0.0  # charged 1
    assert limiter.acquire("m", 1000) == pytest.approx(0.1)  # charged the burst, 4 left
    clock.now += 0.1
    assert limiter.acquire("m", 1000) == 0.0


def test_disabled() -> None:
    limiter = RateLimiter(rate=0, burst=0)
    assert not limiter.enabled
    assert all(limiter.acquire("m", 10**9) == 0.0 for _ in range(10))


def test_bucket_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_merchants=2, monotonic=Clock())
    for m in ("a", "b", "c"):
        limiter.acquire(m, 1)
    assert len(limiter._buckets) == 2
