"""The result cache: LRU eviction, TTL, counting; keys carry the data version (see test_query_engine)."""

from __future__ import annotations

import threading

from query_svc.cache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lru_eviction_and_counts() -> None:
    seen: list[bool] = []
    cache: ResultCache[str] = ResultCache(2, on_lookup=seen.append)
    cache.put(("m", 1), "a")
    cache.put(("m", 2), "b")
    assert cache.get(("m", 1)) == "a"  # 1 is now the most recent
    cache.put(("m", 3), "c")  # evicts 2
    assert cache.get(("m", 2)) is None
    assert cache.get(("m", 3)) == "c"
    assert seen == [True, False, True]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (2, 1, 2)


def test_a_new_data_version_is_a_new_key() -> None:
    cache: ResultCache[int] = ResultCache(10)
    cache.put(("merchant", "request", 7), 1)
    assert cache.get(("merchant", "request", 8)) is None
    assert cache.get(("merchant", "request", 7)) == 1


def test_ttl() -> None:
    clock = Clock()
    cache: ResultCache[str] = ResultCache(10, ttl_s=60, monotonic=clock)
    cache.put("k", "v")
    clock.now = 59.9
    assert cache.get("k") == "v"
    clock.now = 60
    assert cache.get("k") is None
    assert cache.stats().entries == 0


def test_disabled() -> None:
    cache: ResultCache[str] = ResultCache(0)
    cache.put("k", "v")
    assert not cache.enabled
    assert cache.get("k") is None
    assert cache.stats().misses == 0


def test_threads() -> None:
    cache: ResultCache[int] = ResultCache(50)

    def work(base: int) -> None:
        for i in range(500):
            cache.put((base, i % 80), i)
            cache.get((base, (i * 7) % 80))

    threads = [threading.Thread(target=work, args=(b,)) for b in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.stats()
    assert stats.entries == 50
    assert stats.hits + stats.misses == 8 * 500
    cache.clear()
    assert cache.stats().entries == 0
