"""RecentIds: per-merchant scope, a global bound, and whole generations evicted oldest first."""

from __future__ import annotations

from collector_svc.dedup import RecentIds


def test_duplicates_are_per_merchant() -> None:
    recent = RecentIds(100)
    recent.add("a", ["e1", "e2"])
    assert recent.duplicates("a", ["e0", "e1", "e2"]) == [1, 2]
    assert recent.duplicates("b", ["e1"]) == []


def test_skip_indexes() -> None:
    recent = RecentIds(100)
    recent.add("a", ["e1"])
    assert recent.duplicates("a", ["e1", "e1"], skip={0}) == [1]


def test_bounded_and_keeps_at_least_half_the_capacity() -> None:
    recent = RecentIds(4)  # generations of 2 ids
    recent.add("a", ["1", "2"])  # fills a generation: it becomes the previous one
    recent.add("a", ["3"])
    assert len(recent) == 3
    assert recent.duplicates("a", ["1", "2", "3"]) == [0, 1, 2]
    recent.add("b", ["b1"])  # current generation full again: ids 1 and 2 are dropped
    assert len(recent) == 2
    assert recent.duplicates("a", ["1", "2", "3"]) == [2]
    assert recent.duplicates("b", ["b1"]) == [0]


def test_never_more_than_capacity() -> None:
    recent = RecentIds(1000)
    for batch in range(100):
        recent.add(f"m{batch % 7}", [f"{batch}-{i}" for i in range(50)])
        assert len(recent) <= 1000
    assert len(recent) >= 500


def test_disabled() -> None:
    recent = RecentIds(0)
    recent.add("a", ["1"])
    assert recent.duplicates("a", ["1"]) == []
    assert len(recent) == 0
