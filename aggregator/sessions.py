"""Sessionization: events of one merchant's clients cut into sessions, vectorized with numpy (pure, no I/O).

Rules (processing version 1):
- Events of a client are ordered by (event time, event id): the event id only breaks ties between events of the
  same client at the same microsecond, so the order, and hence each session's first event, does not depend on
  the order of the input rows.
- A new session starts at a client's first event, when the gap to the client's previous event is strictly
  greater than 30 minutes (`SESSION_GAP_US`: a gap of exactly 30:00 continues the session, 30:00.000001 does
  not), and when the local calendar day of the merchant's reporting zone changes (`split_codes`).
- Splitting at local midnight follows Universal Analytics, and is a deliberate deviation from GA4 (where a
  session may run past midnight): it makes one (merchant, local day) the exact, self-contained recompute unit
  of the aggregator. `aggregator.compute.compute_day` receives the events of exactly one local day, so there
  every session already ends by midnight.
- Duration: last event time - first event time, in whole milliseconds (floored).
- Engaged session (GA4): duration >= 10 s, or >= 2 page_view events, or >= 1 key event. Bounce: not engaged.

Everything is O(n) numpy (sort, diff, cumsum, reduceat) except the sort in `event_order`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]
Bool = npt.NDArray[np.bool_]

SESSION_GAP_US: Final = 30 * 60 * 1_000_000
ENGAGED_MIN_DURATION_MS: Final = 10_000
ENGAGED_MIN_PAGEVIEWS: Final = 2
ENGAGED_MIN_KEY_EVENTS: Final = 1

TieKeys = Callable[[IntP], npt.NDArray[Any]]
"""Given input row positions, their tie-break keys (event ids): called only for rows that tie."""


def event_order(client_codes: npt.NDArray[np.integer[Any]], times_us: I64, tie_keys: TieKeys | None = None) -> IntP:
    """The permutation that sorts events by (client code, time, tie key).

    `client_codes` are non-negative ints (factorized client ids). Rows that tie on (client, time) are ordered by
    `tie_keys(rows)` (e.g. event ids), looked up only for those rows; without `tie_keys` ties keep input order.
    Cost: one int64 argsort of n (plus a lexsort of the tied rows only).
    """
    clients = np.asarray(client_codes, dtype=np.int64)
    times = np.asarray(times_us, dtype=np.int64)
    n = times.size
    if clients.size != n:
        raise ValueError(f"client_codes and times_us differ in length: {clients.size} != {n}")
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    t_min = int(times.min())
    span = int(times.max()) - t_min + 1
    n_clients = int(clients.max()) + 1
    if n_clients * span < 1 << 62:  # one int64 key: numpy's (SIMD) sort instead of a lexsort
        order: IntP = np.argsort(clients * span + (times - t_min)).astype(np.intp)
    else:
        order = np.lexsort((times, clients)).astype(np.intp)
    c, t = clients[order], times[order]
    tie = (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    if not tie.any():
        return order
    grouped = np.zeros(n, dtype=np.bool_)
    grouped[1:] |= tie
    grouped[:-1] |= tie
    positions = np.flatnonzero(grouped)  # sorted positions of tied rows, each tie group contiguous
    rows = order[positions]
    if tie_keys is None:
        key_codes = rows.astype(np.int64)  # input order
    else:
        codes, _ = pd.factorize(np.asarray(tie_keys(rows)), sort=True)
        key_codes = np.asarray(codes, dtype=np.int64)
    sub = np.lexsort((key_codes, t[positions], c[positions]))
    order[positions] = rows[sub]
    return order


@dataclass(frozen=True)
class Sessions:
    """Sessions of events sorted by (client, time): event `i` belongs to session `session_of[i]`; session `s`
    spans sorted positions `first[s]..last[s]` (contiguous)."""

    session_of: IntP
    first: IntP
    last: IntP
    start_us: I64
    duration_ms: I64

    @property
    def count(self) -> int:
        return int(self.first.size)


def sessionize(
    client_codes: npt.NDArray[np.integer[Any]],
    times_us: I64,
    *,
    split_codes: npt.NDArray[np.integer[Any]] | None = None,
    gap_us: int = SESSION_GAP_US,
) -> Sessions:
    """Sessions of events already sorted by (client, time) (see `event_order`).

    A session starts at a new client, after a gap > `gap_us`, or where `split_codes` (e.g. the local day number of
    each event) changes. Raises ValueError when the events are not sorted.
    """
    clients = np.asarray(client_codes)
    times = np.asarray(times_us, dtype=np.int64)
    n = times.size
    if clients.size != n or (split_codes is not None and len(split_codes) != n):
        raise ValueError("client_codes, times_us and split_codes must have the same length")
    if n == 0:
        empty = np.zeros(0, dtype=np.intp)
        return Sessions(empty, empty, empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    new_client = clients[1:] != clients[:-1]
    gaps = np.diff(times)
    if bool(np.any(clients[1:] < clients[:-1])) or bool(np.any((gaps < 0) & ~new_client)):
        raise ValueError("events must be sorted by (client, time): use event_order")
    new = np.empty(n, dtype=np.bool_)
    new[0] = True
    np.logical_or(new_client, gaps > gap_us, out=new[1:])
    if split_codes is not None:
        split = np.asarray(split_codes)
        new[1:] |= split[1:] != split[:-1]
    first = np.flatnonzero(new).astype(np.intp)
    session_of = (np.cumsum(new) - 1).astype(np.intp)
    last = np.empty_like(first)
    last[:-1] = first[1:] - 1
    last[-1] = n - 1
    start = times[first]
    duration_ms: I64 = (times[last] - start) // 1000
    return Sessions(session_of, first, last, start, duration_ms)


def per_session_sum(sessions: Sessions, values: npt.NDArray[Any]) -> I64:
    """The sum of per-event `values` (in sorted order) over each session's events."""
    if sessions.count == 0:
        return np.zeros(0, dtype=np.int64)
    result: I64 = np.add.reduceat(np.asarray(values, dtype=np.int64), sessions.first)
    return result


def engaged(sessions: Sessions, is_pageview: Bool, is_key_event: Bool) -> Bool:
    """Per session: engaged (duration >= 10 s, or >= 2 page views, or >= 1 key event). A bounce is `~engaged`."""
    pageviews = per_session_sum(sessions, is_pageview)
    key_events = per_session_sum(sessions, is_key_event)
    result: Bool = (
        (sessions.duration_ms >= ENGAGED_MIN_DURATION_MS)
        | (pageviews >= ENGAGED_MIN_PAGEVIEWS)
        | (key_events >= ENGAGED_MIN_KEY_EVENTS)
    )
    return result
