"""RecentIds: per-merchant scope, global bound, least recently active merchant evicted first."""

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


def test_bounded_oldest_first() -> None:
    recent = RecentIds(3)
    recent.add("a", ["1", "2"])
    recent.add("a", ["3", "4"])
    assert len(recent) == 3
    assert recent.duplicates("a", ["1", "2", "3", "4"]) == [1, 2, 3]


def test_least_recent_merchant_evicted_first() -> None:
    recent = RecentIds(4)
    recent.add("a", ["a1", "a2"])
    recent.add("b", ["b1", "b2"])
    recent.add("a", ["a3"])  # a is now the most recent merchant
    assert len(recent) == 4
    assert recent.duplicates("b", ["b1", "b2"]) == [1]
    assert recent.duplicates("a", ["a1", "a2", "a3"]) == [0, 1, 2]


def test_disabled() -> None:
    recent = RecentIds(0)
    recent.add("a", ["1"])
    assert recent.duplicates("a", ["1"]) == []
    assert len(recent) == 0
