"""aggregator.sessions: ordering, the 30-minute rule, splits, durations and engagement, vectorized."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.sessions import SESSION_GAP_US, engaged, event_order, per_session_sum, sessionize

S = 1_000_000
MIN = 60 * S


def _arr(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def test_gap_of_exactly_30_minutes_continues_the_session_and_30_01_does_not() -> None:
    clients = _arr([0, 0, 0, 0])
    times = _arr([0, 30 * MIN, 30 * MIN + 30 * MIN + S, 30 * MIN + 30 * MIN + S + 30 * MIN + 1])
    sessions = sessionize(clients, times)
    assert sessions.session_of.tolist() == [0, 0, 1, 2]  # 30:00 same, 30:01 new, 30:00.000001 new
    assert sessions.first.tolist() == [0, 2, 3] and sessions.last.tolist() == [1, 2, 3]
    assert sessions.duration_ms.tolist() == [30 * 60 * 1000, 0, 0]
    assert SESSION_GAP_US == 30 * MIN


def test_new_client_and_split_codes_start_sessions() -> None:
    clients = _arr([0, 0, 1, 1, 1])
    times = _arr([0, MIN, MIN, 2 * MIN, 3 * MIN])
    split = _arr([7, 7, 7, 7, 8])  # e.g. local day numbers: midnight between the 4th and 5th event
    sessions = sessionize(clients, times, split_codes=split)
    assert sessions.session_of.tolist() == [0, 0, 1, 1, 2]
    assert sessions.start_us.tolist() == [0, MIN, 3 * MIN]
    assert sessionize(clients, times).count == 2


def test_duration_is_floored_milliseconds_and_engagement_rules() -> None:
    clients = _arr([0, 0, 1, 1, 2, 3, 4, 4])
    times = _arr([0, 10 * S, 0, 10 * S - 1, 0, 0, 0, 5])
    sessions = sessionize(clients, times)
    assert sessions.duration_ms.tolist() == [10_000, 9_999, 0, 0, 0]
    is_pv = np.array([0, 0, 0, 0, 1, 0, 1, 1], dtype=bool)
    is_key = np.array([0, 0, 0, 0, 0, 1, 0, 0], dtype=bool)
    # 10 s: engaged; 9.999 s: bounce; 1 page view: bounce; 1 key event: engaged; 2 page views: engaged
    assert engaged(sessions, is_pv, is_key).tolist() == [True, False, False, True, True]
    assert per_session_sum(sessions, is_pv).tolist() == [0, 0, 1, 0, 2]


def test_event_order_sorts_by_client_time_then_tie_key() -> None:
    clients = _arr([1, 0, 1, 0, 0])
    times = _arr([5, 9, 5, 3, 9])
    ids = np.array(["b", "z", "a", "m", "c"], dtype=object)
    order = event_order(clients, times, lambda rows: ids[rows])
    assert order.tolist() == [3, 4, 1, 2, 0]  # (0,3,m) (0,9,c) (0,9,z) (1,5,a) (1,5,b)
    assert event_order(clients, times).tolist() == [3, 1, 4, 0, 2]  # ties keep input order
    assert event_order(_arr([]), _arr([])).size == 0


def test_unsorted_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="sorted"):
        sessionize(_arr([0, 0]), _arr([5, 1]))
    with pytest.raises(ValueError, match="sorted"):
        sessionize(_arr([1, 0]), _arr([0, 1]))
    with pytest.raises(ValueError, match="length"):
        sessionize(_arr([0]), _arr([0, 1]))
    assert sessionize(_arr([]), _arr([])).count == 0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4 * 3600)), min_size=1, max_size=60))
def test_sessions_match_a_plain_python_loop(events: list[tuple[int, int]]) -> None:
    clients = _arr([c for c, _ in events])
    times = _arr([t * S for _, t in events])  # whole seconds: exact-30-minute gaps happen
    order = event_order(clients, times)
    sessions = sessionize(clients[order], times[order])
    expected: list[tuple[int, int, int]] = []  # (client, start, end) per session
    for c, t in sorted(zip(clients.tolist(), times.tolist(), strict=True)):
        if expected and expected[-1][0] == c and t - expected[-1][2] <= SESSION_GAP_US:
            expected[-1] = (c, expected[-1][1], t)
        else:
            expected.append((c, t, t))
    assert sessions.start_us.tolist() == [s for _, s, _ in expected]
    assert sessions.duration_ms.tolist() == [(e - s) // 1000 for _, s, e in expected]
