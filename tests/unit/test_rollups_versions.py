"""Resolution of active processing versions from flips (pure code, no engine)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnomon.rollups import RollupInvalid, VersionFlip, VersionSpan
from gnomon.rollups.versions import FlipClock, spans_between, validate_flip, version_at

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _at(hours: int) -> datetime:
    return BASE + timedelta(hours=hours)


def flip(start: int, end: int, version: int, order: int) -> VersionFlip:
    return VersionFlip(
        "m", _at(start), _at(end), version, "who", "why", BASE + timedelta(seconds=order), f"{order:04d}"
    )


flips_strategy = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 20), st.integers(1, 5)),
    max_size=8,
).map(lambda specs: [flip(s, s + n, v, i) for i, (s, n, v) in enumerate(specs)])


def test_latest_covering_flip_wins() -> None:
    flips = [flip(0, 10, 2, 0), flip(5, 20, 3, 1), flip(6, 7, 1, 2)]
    assert [version_at(flips, _at(h)) for h in (-1, 0, 4, 5, 6, 7, 19, 20)] == [1, 2, 2, 3, 1, 3, 3, 1]
    # the order is (flipped_at, flip_id), not the list order
    assert version_at(list(reversed(flips)), _at(6)) == 1
    tie = [flip(0, 10, 2, 0), VersionFlip("m", _at(0), _at(10), 4, "w", "y", BASE, "0000z")]
    assert version_at(tie, _at(1)) == 4


@given(flips_strategy, st.integers(-5, 70), st.integers(0, 70))
def test_spans_agree_with_point_lookups(flips: list[VersionFlip], start: int, length: int) -> None:
    spans = spans_between(flips, _at(start), _at(start + length))
    if length == 0:
        assert spans == []
        return
    assert spans[0].start == _at(start) and spans[-1].end == _at(start + length)
    for a, b in itertools.pairwise(spans):
        assert a.end == b.start and a.version != b.version  # contiguous and maximal
    for h in range(start, start + length):
        covering = [s for s in spans if s.start <= _at(h) < s.end]
        assert len(covering) == 1
        assert covering[0].version == version_at(flips, _at(h))


def test_spans_of_no_flips() -> None:
    assert spans_between([], _at(0), _at(5)) == [VersionSpan(_at(0), _at(5), 1)]


def test_flip_clock_is_strictly_increasing_and_millisecond() -> None:
    frozen = datetime(2026, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)
    clock = FlipClock(lambda: frozen)
    stamps = [clock.stamp() for _ in range(3)]
    assert [s[0].microsecond for s in stamps] == [999000, 0, 1000]
    assert stamps[0][0] < stamps[1][0] < stamps[2][0]
    assert len({s[1] for s in stamps}) == 3


def test_validate_flip() -> None:
    ok = validate_flip("m", _at(0), _at(1), 2, "alice", "because")
    assert (ok.start, ok.end, ok.version) == (_at(0), _at(1), 2)
    with pytest.raises(RollupInvalid, match="milliseconds"):
        validate_flip("m", _at(0) + timedelta(microseconds=1), _at(1), 2, "a", "b")
    with pytest.raises(RollupInvalid, match="timezone-aware"):
        validate_flip("m", datetime(2026, 1, 1), _at(1), 2, "a", "b")  # noqa: DTZ001
    with pytest.raises(RollupInvalid, match="merchant_id"):
        validate_flip("", _at(0), _at(1), 2, "a", "b")
