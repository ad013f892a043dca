"""Realtime: the last N (<= 30) minutes of a merchant, by minute, straight from the raw event store.

Rollups lag by the aggregator's micro-batch; realtime reads what the aggregator has stored so far:
`EventStore.load_day` of the merchant's local today (and yesterday when the window crosses local midnight),
keeps events with event time in the window and counts them with pandas:

- Window: minute buckets aligned to the wall clock: bucket `minutesAgo = 0` is the current (partial) minute
  [floor(now), now], bucket k is the minute k minutes before; the window is the `minutes` buckets
  [floor(now) - (minutes - 1) min, now]. Events stamped after `now` (client clock ahead) count in minute 0.
- Bots: excluded with the aggregator's user-agent step (`aggregator.derive.UserAgentStep`, the rules of the
  current derivation version; rollups use the merchant's active processing version instead). When the step
  cannot run (a frame without user agents), nothing is excluded and the result says `bots_excluded=False`.
- activeUsers: EXACT distinct client ids (no sketch: the window is small); eventCount: events;
  screenPageViews: page_view events; keyEvents: events whose name is a configured key event.

Blocking (event store reads); raises EventStoreUnavailable from the store.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from aggregator import frame as f
from aggregator.derive import UserAgentStep
from aggregator.eventstore import EventStore
from aggregator.timezones import to_us
from query_svc import filters
from query_svc.catalog import (
    DIMENSIONS,
    MINUTES_AGO,
    REALTIME_DIMENSIONS,
    REALTIME_METRICS,
    dimension_defs,
    metric_defs,
)
from query_svc.errors import InvalidQuery
from query_svc.model import MetricHeader, OrderBy, RealtimeMinute, RealtimeRequest, RealtimeResult, ResultRow
from query_svc.order import order_rows, resolve_limit
from query_svc.reader import Deadline

MAX_MINUTES: Final = 30
PAGE_VIEW: Final = "page_view"
_US_PER_MINUTE: Final = 60_000_000
_LABELS: Final = np.array([f"{k:02d}" for k in range(MAX_MINUTES)], dtype=object)


class BotFilter:
    """The aggregator's user-agent step, shared by the service's threads (the step is not thread-safe)."""

    def __init__(self) -> None:
        self._step: UserAgentStep | None = None
        self._lock = threading.Lock()

    def ua_columns(self, user_agents: pd.Series[str]) -> pd.DataFrame:
        with self._lock:
            if self._step is None:
                self._step = UserAgentStep()
            columns = self._step.apply(user_agents)
        return pd.DataFrame(columns, index=user_agents.index)


def _validate(request: RealtimeRequest) -> None:
    if not 1 <= request.minutes <= MAX_MINUTES:
        raise InvalidQuery(f"minutes must be between 1 and {MAX_MINUTES}, got {request.minutes}", "minutes")
    dimension_defs(request.dimensions, realtime=True)
    if not request.metrics:
        raise InvalidQuery("at least one metric is required", "metrics")
    metric_defs(request.metrics, realtime=True)
    filters.validate(
        request.dimension_filter,
        dimensions=frozenset(REALTIME_DIMENSIONS),
        metrics=frozenset(),
        field="dimension_filter",
    )


def _load(store: EventStore, merchant_id: str, days: Sequence[date]) -> pd.DataFrame:
    frames = [store.load_day(merchant_id, day) for day in days]
    frames = [fr for fr in frames if len(fr)]
    if not frames:
        return pd.DataFrame({f.EVENT_TIME_US: pd.Series([], dtype=np.int64)})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def run_realtime(
    request: RealtimeRequest,
    *,
    zone: ZoneInfo,
    now: datetime,
    store: EventStore,
    bots: BotFilter,
    key_events: frozenset[str],
    max_limit: int,
    deadline: Deadline,
) -> RealtimeResult:
    """The realtime report of `request` at instant `now` (aware). Raises InvalidQuery for a bad request."""
    _validate(request)
    limit = resolve_limit(request.limit, max_limit)
    minute0 = now.replace(second=0, microsecond=0)
    window_start = minute0 - timedelta(minutes=request.minutes - 1)
    days = sorted({window_start.astimezone(zone).date(), now.astimezone(zone).date()})
    deadline.check("loading raw events")
    events = _load(store, request.merchant_id, days)
    deadline.check("counting raw events")
    times = events[f.EVENT_TIME_US].to_numpy(dtype=np.int64)
    start_us, minute0_us = to_us(window_start), to_us(minute0)
    events = events.loc[times >= start_us].reset_index(drop=True)
    bots_excluded = f.USER_AGENT in events.columns or not len(events)
    if len(events) and f.USER_AGENT in events.columns:
        ua = bots.ua_columns(events[f.USER_AGENT].astype(str))
        keep = ~ua["is_bot"].to_numpy(dtype=bool)
        events = pd.concat([events, ua.drop(columns="is_bot")], axis=1).loc[keep].reset_index(drop=True)
    if len(events):
        # minutes ago = ceil((minute0 - t) / 1 min): [minute0 - 1 min, minute0) is minute 1; at or after minute0: 0
        since = events[f.EVENT_TIME_US].to_numpy(dtype=np.int64) - minute0_us
        ago = np.clip(-(since // _US_PER_MINUTE), 0, None)
        events[MINUTES_AGO] = _LABELS[ago]
    if request.dimension_filter is not None and len(events):
        columns = {name: _column(events, name) for name in filters.fields(request.dimension_filter)}
        events = events.loc[filters.evaluate_dimensions(request.dimension_filter, columns, len(events))]
    if len(events):
        clients = events[f.CLIENT_ID]
        per_minute = pd.DataFrame({"m": events[MINUTES_AGO], "c": clients}).groupby("m")["c"].agg(["nunique", "size"])
        users_by_minute = per_minute["nunique"].to_dict()
        events_by_minute = per_minute["size"].to_dict()
        active_users = int(clients.nunique())
    else:
        users_by_minute, events_by_minute, active_users = {}, {}, 0
    minutes = tuple(
        RealtimeMinute(
            minutes_ago=k,
            minute_start=minute0 - timedelta(minutes=k),
            active_users=int(users_by_minute.get(_LABELS[k], 0)),
            event_count=int(events_by_minute.get(_LABELS[k], 0)),
        )
        for k in reversed(range(request.minutes))
    )
    rows, row_count = _breakdown(request, events, key_events, limit) if request.dimensions else ((), 0)
    return RealtimeResult(
        minutes=minutes,
        active_users=active_users,
        event_count=len(events),
        dimension_headers=request.dimensions,
        metric_headers=tuple(MetricHeader(m.api_name, m.type) for m in metric_defs(request.metrics, realtime=True)),
        rows=rows,
        row_count=row_count,
        window_start=window_start,
        window_end=now,
        bots_excluded=bots_excluded,
    )


def _column(events: pd.DataFrame, name: str) -> pd.Series[str]:
    column = DIMENSIONS[name].realtime_column
    assert column is not None
    if column not in events.columns:
        return pd.Series(["(not set)"] * len(events), index=events.index, dtype=object)
    return events[column].astype(str).replace("", "(not set)")


def _breakdown(
    request: RealtimeRequest, events: pd.DataFrame, key_events: frozenset[str], limit: int
) -> tuple[tuple[ResultRow, ...], int]:
    if not len(events):
        return (), 0
    dims = list(request.dimensions)
    frame = pd.DataFrame({name: _column(events, name) for name in dims})
    frame["_client"] = events[f.CLIENT_ID].to_numpy()
    names = events[f.NAME].astype(str)
    frame["_pv"] = (names == PAGE_VIEW).to_numpy(dtype=np.int64)
    frame["_key"] = names.isin(sorted(key_events)).to_numpy(dtype=np.int64)
    grouped = frame.groupby(dims, sort=False, observed=True).agg(
        activeUsers=("_client", "nunique"),
        eventCount=("_client", "size"),
        screenPageViews=("_pv", "sum"),
        keyEvents=("_key", "sum"),
    )
    keys = [k if isinstance(k, tuple) else (k,) for k in grouped.index.tolist()]
    keys = [tuple(str(v) for v in k) for k in keys]
    metrics = list(request.metrics)
    assert set(metrics) <= set(REALTIME_METRICS)
    values = {m: grouped[m].to_numpy(dtype=np.int64) for m in metrics}
    columns = [np.array([k[i] for k in keys], dtype=object) for i in range(len(dims))]
    permutation = order_rows(
        columns, len(keys), dims, (OrderBy(metrics[0], desc=True),), lambda name: values[name].astype(np.float64)
    )
    rows = tuple(ResultRow(keys[i], tuple(int(values[m][i]) for m in metrics)) for i in permutation[:limit].tolist())
    return rows, len(keys)
