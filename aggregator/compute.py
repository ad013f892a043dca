"""Rollups of one (merchant, local day): every HOUR and DAY row of every cube, computed from that day's events.

Pure window logic (DESIGN.md, code style): no I/O, no clock, no globals read; the same events give the same rows.

The recompute unit is (merchant, local calendar day of the merchant's IANA reporting zone). `compute_day` is given
ALL deduplicated, derived (`aggregator.derive.derive`) events of one merchant whose event time falls in that
local day, and returns every rollup row of the day; replacing the day's rows with them is exact and idempotent.
It checks the precondition (merchant id and local day of every event) and raises ValueError otherwise.

Windows (`aggregator.timezones`): HOUR rows for each local hour window of the day that has events (window_start =
UTC instant of the local hour start: hh:30 UTC in Asia/Kolkata, hh:15 UTC in Asia/Kathmandu; a DST day has 23 or
25 windows, the repeated hour being two windows) and one DAY row per dimension value (window_start = UTC instant
of local midnight). `provisional` is true when the window's end (start + 1 h, or the next local midnight) is
after `closed_before` (the watermark plus allowed lateness), i.e. the window may still receive events.

What is counted (processing version 1):
- Bots (`is_bot`) are excluded from every metric; they stay in the raw log.
- Sessions (`aggregator.sessions`): per client, ordered by (time, event id); a new session after a gap > 30 min
  and at local midnight (Universal Analytics' rule, a deliberate deviation from GA4: it keeps the recompute unit
  one day and exact). A session is counted once, in the hour window where it starts, with its full duration.
  Engaged: duration >= 10 s, or >= 2 page_view events, or >= 1 key event; bounce = not engaged.
- Per (window, cube, dimension value): events; pageviews (name == "page_view"); key_events (name in
  `key_events`); revenue_micros (sum over events whose currency equals the merchant's `currency`; events in other
  currencies are NOT converted or summed: their revenue is dropped from the rollups, the raw log keeps it);
  sessions / engaged_sessions / bounces / session_duration_ms, attributed by the cube's scope (see
  `aggregator.cubes`: session-scoped cubes use the session's first event, event-scoped cubes count distinct
  sessions having the value, in the session's start window); users (HLL sketch of client_id); new_users (HLL
  sketch of the client_id of "first_visit" events).
- High cardinality: per (window, cube) at most `max_values` (default 5,000) values are kept, ranked by events
  descending (ties: dimension values ascending); the others become one value whose every dimension is "(other)"
  (as in GA4). The "(other)" row is what the cube would hold if the capped values had been renamed "(other)"
  before aggregating: its counters are the sums of the capped values' counters and its sketches their union,
  except that an event-scoped cube counts a session that touched several capped values once (not once per
  value). A real value equal to "(other)" in a capped window is folded into that row.
- Missing dimension values (null) are reported as "(not set)"; dimension values are strings.

Performance: events are factorized once (integer codes per column), sorted once by (client, time), and every
cube/grain is a handful of numpy passes (bincount over dense integer keys); unique users go through the
vectorized HLL builder (`aggregator.hll`) when it is importable (`_sketches_for_groups` is the single switch).
`aggregate_day` returns columns (`aggregator.rows.DayRollups`); `compute_day` materializes `RollupRow`s from them
(`DayRollups.rows`), `DayRollups.columns` gives column blocks (`gnomon.rollups.columns.RollupColumns`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, cached_property
from types import ModuleType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator import frame as f
from aggregator.cubes import Cube, CubeSet, Scope
from aggregator.rows import CubeBlock, DayRollups, Encoded
from aggregator.sessions import Sessions, engaged, event_order, sessionize
from aggregator.timezones import US_PER_HOUR, day_bounds_us, from_us, hour_window_index, zone_info
from gnomon.rollups.dims import CodedDims
from gnomon.rollups.model import (
    Grain,
    RollupRow,
    require_name,
)
from gnomon.rollups.sketches import EMPTY_SKETCH, SKETCH_LG_K, new_sketch, serialize_sketch

__all__ = ["CubeBlock", "DayRollups", "aggregate_day", "compute_day"]

I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Obj = npt.NDArray[np.object_]

OTHER: Final = "(other)"
NOT_SET: Final = "(not set)"
DEFAULT_MAX_VALUES: Final = 5_000
PAGE_VIEW: Final = "page_view"
FIRST_VISIT: Final = "first_visit"
REQUIRED_COLUMNS: Final = (
    f.MERCHANT_ID, f.EVENT_ID, f.NAME, f.EVENT_TIME_US, f.CLIENT_ID, f.REVENUE_MICROS, f.CURRENCY, f.IS_BOT,
)  # fmt: skip
_DENSE_EXTRA: Final = 1 << 16


# ----------------------------------------------------------------------------------------------- API


def compute_day(
    events: pd.DataFrame,
    *,
    merchant_id: str,
    zone: str,
    day: date,
    version: int,
    computed_at: datetime,
    key_events: frozenset[str],
    closed_before: datetime,
    cubes: CubeSet,
    currency: str,
    max_values: int = DEFAULT_MAX_VALUES,
) -> list[RollupRow]:
    """Every HOUR and DAY rollup row of `merchant_id`'s local `day` in `zone`, for every cube of `cubes`.

    `events`: all deduplicated, derived events of that merchant-day (columns of `aggregator.frame`:
    `REQUIRED_COLUMNS` plus every cube dimension). Pure. Raises ValueError when a column is missing, an event
    belongs to another merchant or lies outside the local day, or the zone is unknown; RollupInvalid for an
    invalid version, merchant id or naive datetime. Row order is unspecified.
    """
    rollups = aggregate_day(
        events,
        merchant_id=merchant_id,
        zone=zone,
        day=day,
        key_events=key_events,
        cubes=cubes,
        currency=currency,
        max_values=max_values,
    )
    return rollups.rows(version=version, computed_at=computed_at, closed_before=closed_before)


def aggregate_day(
    events: pd.DataFrame,
    *,
    merchant_id: str,
    zone: str,
    day: date,
    key_events: frozenset[str],
    cubes: CubeSet,
    currency: str,
    max_values: int = DEFAULT_MAX_VALUES,
) -> DayRollups:
    """`compute_day` as columns, before stamping version / computed_at / provisional (same contract)."""
    require_name(merchant_id, "merchant_id")
    if type(max_values) is not int or max_values < 1:
        raise ValueError(f"max_values must be an int >= 1, got {max_values!r}")
    tz = zone_info(zone)
    start_us, end_us = day_bounds_us(day, tz)
    day_events = _prepare(events, merchant_id, tz.key, day, start_us, end_us, key_events, currency, cubes)
    blocks: list[CubeBlock] = []
    for cube in cubes:
        encoded = day_events.encode(cube)
        pairs = _session_pairs(day_events, encoded, cube.scope)
        for grain in (Grain.HOUR, Grain.DAY):
            blocks.append(_block(day_events, cube, grain, encoded, pairs, max_values))
    return DayRollups(merchant_id, tz.key, day, start_us, end_us, tuple(blocks))


# ----------------------------------------------------------------------------------------------- columns


def _factorize(series: pd.Series[Any], *, sort: bool = False) -> tuple[I64, Obj]:
    """(code per row, distinct labels as str): nulls become "(not set)", labels are unique strings."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int64)
        labels = np.asarray(series.cat.categories, dtype=object)
        if sort and labels.size > 1:
            rank = np.empty(labels.size, dtype=np.int64)
            order = np.argsort(labels.astype(str), kind="stable")
            rank[order] = np.arange(labels.size)
            codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
            labels = labels[order]
    else:
        raw_codes, uniques = pd.factorize(series, sort=sort)
        codes = np.asarray(raw_codes, dtype=np.int64)
        labels = np.asarray(uniques, dtype=object)
    if pd.api.types.infer_dtype(labels, skipna=False) not in ("string", "empty"):
        labels = np.asarray([x if isinstance(x, str) else str(x) for x in labels.tolist()], dtype=object)
    if codes.size and int(codes.min()) < 0:
        codes = np.where(codes < 0, labels.size, codes)
        labels = np.append(labels, NOT_SET).astype(object)
    if labels.size != len(set(labels.tolist())):  # "(not set)" twice, or values equal once made str
        label_codes, unique_labels = pd.factorize(labels)
        codes = np.asarray(label_codes, dtype=np.int64)[codes]
        labels = np.asarray(unique_labels, dtype=object)
    return codes, labels


@dataclass(frozen=True)
class _Items:
    """Per-row item codes into a table of distinct item values (client ids); hashes computed once, lazily."""

    codes: IntP
    table: _ItemTable

    def take(self, rows: IntP) -> _Items:
        return _Items(self.codes[rows], self.table)

    @cached_property
    def changes(self) -> Bool:
        """changes[i]: row i + 1 holds another item than row i (computed once: every cube's sketches ask)."""
        return np.not_equal(self.codes[1:], self.codes[:-1])

    def coupon_codes(self, hll: ModuleType) -> IntP:
        """Per row, the code of its item's coupon in `self.table.coupons(hll).values` (computed once)."""
        cached: IntP | None = self.__dict__.get("_coupon_codes")
        if cached is None:
            cached = self.__dict__["_coupon_codes"] = self.table.coupons(hll).codes[self.codes]
        return cached


@dataclass
class _ItemTable:
    """Distinct items (client ids) and, once asked for, their DataSketches coupons (`aggregator.hll`)."""

    values: Obj
    _coupons: Any = None

    def coupons(self, hll: ModuleType) -> Any:
        if self._coupons is None:
            self._coupons = hll.hash_items(self.values)
        return self._coupons


@dataclass
class _DayEvents:
    """The human events of the day in session order (client, time, event id), as integer columns."""

    frame: pd.DataFrame
    rows: IntP  # frame row positions, in session order
    day_start_us: int
    day_end_us: int
    window: I64  # hour window index per event
    window_starts_us: I64
    items: _Items  # client per event
    not_pageview: IntP  # positions of events other than page_view
    key_event: IntP  # positions of key events
    first_visit: IntP  # positions of first_visit events
    revenue_at: IntP  # positions of events with revenue in the merchant's currency
    revenue: I64  # their revenue_micros
    sessions: Sessions
    session_window: I64
    engaged: Bool  # per session
    name_column: tuple[I64, Obj]
    _columns: dict[str, tuple[I64, Obj]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.rows.size)

    def column(self, name: str) -> tuple[I64, Obj]:
        """(label code per event in session order, labels) of a dimension column."""
        if name == f.NAME:
            return self.name_column
        cached = self._columns.get(name)
        if cached is None:
            codes, labels = _factorize(self.frame[name])
            cached = self._columns[name] = (codes[self.rows], labels)
        return cached

    def encode(self, cube: Cube) -> Encoded:
        n = self.n
        if not cube.dimensions:
            return Encoded(np.zeros(n, dtype=np.int64), 1, (), (), None)
        columns = [self.column(d) for d in cube.dimensions]
        radices = tuple(max(1, labels.size) for _, labels in columns)
        labels_of_dims = tuple(labels for _, labels in columns)
        if len(columns) == 1:
            return Encoded(columns[0][0], radices[0], labels_of_dims, radices, None)
        size = 1
        for radix in radices:
            size *= radix
        if size >= 1 << 62:
            raise ValueError(f"cube {cube.name!r}: too many dimension combinations to encode ({size})")
        combined = columns[0][0]
        for (codes, _), radix in zip(columns[1:], radices[1:], strict=True):
            combined = combined * radix + codes
        if size <= max(_DENSE_EXTRA, n // 4):
            return Encoded(combined, size, labels_of_dims, radices, None)
        codes_, uniques = pd.factorize(combined)
        return Encoded(
            np.asarray(codes_, dtype=np.int64), len(uniques), labels_of_dims, radices, np.asarray(uniques, np.int64)
        )


def _prepare(
    events: pd.DataFrame,
    merchant_id: str,
    zone: str,
    day: date,
    start_us: int,
    end_us: int,
    key_events: frozenset[str],
    currency: str,
    cubes: CubeSet,
) -> _DayEvents:
    missing = [c for c in (*REQUIRED_COLUMNS, *sorted(cubes.columns())) if c not in events.columns]
    if missing:
        raise ValueError(f"compute_day: missing column(s) {missing}")
    times_all = events[f.EVENT_TIME_US].to_numpy(dtype=np.int64)
    outside = (times_all < start_us) | (times_all >= end_us)
    if outside.any():
        bad = int(times_all[np.argmax(outside)])
        raise ValueError(
            f"compute_day: {int(outside.sum())} event(s) outside local day {day} in {zone} "
            f"[{from_us(start_us).isoformat()}, {from_us(end_us).isoformat()}), e.g. at {from_us(bad).isoformat()}"
        )
    others = (events[f.MERCHANT_ID] != merchant_id).to_numpy(dtype=np.bool_)
    if others.any():
        example = events[f.MERCHANT_ID].iloc[int(np.argmax(others))]
        raise ValueError(
            f"compute_day: {int(others.sum())} event(s) of another merchant than {merchant_id!r}, e.g. {example!r}"
        )
    human = np.flatnonzero(~events[f.IS_BOT].to_numpy(dtype=np.bool_))
    client_codes, client_ids = _factorize(events[f.CLIENT_ID], sort=True)
    event_ids = events[f.EVENT_ID]

    def tie_keys(positions: IntP) -> npt.NDArray[Any]:
        return event_ids.iloc[human[positions]].astype(str).to_numpy(dtype=object)

    order = event_order(client_codes[human], times_all[human], tie_keys)
    rows = human[order]
    times = times_all[rows]
    clients = client_codes[rows].astype(np.intp)
    window, window_starts = hour_window_index(times, zone)
    name_codes, name_labels = _factorize(events[f.NAME])
    names = name_codes[rows]
    is_pageview = (name_labels == PAGE_VIEW)[names]
    is_key_event = np.isin(name_labels, np.asarray(sorted(key_events), dtype=object))[names]
    currency_codes, currency_labels = _factorize(events[f.CURRENCY])
    revenue = np.where(
        (currency_labels == currency)[currency_codes[rows]], events[f.REVENUE_MICROS].to_numpy(dtype=np.int64)[rows], 0
    )
    revenue_at = np.flatnonzero(revenue).astype(np.intp)
    sessions = sessionize(clients, times)
    return _DayEvents(
        frame=events,
        rows=rows,
        day_start_us=start_us,
        day_end_us=end_us,
        window=window.astype(np.int64),
        window_starts_us=window_starts,
        items=_Items(clients, _ItemTable(client_ids)),
        not_pageview=np.flatnonzero(~is_pageview).astype(np.intp),
        key_event=np.flatnonzero(is_key_event).astype(np.intp),
        first_visit=np.flatnonzero((name_labels == FIRST_VISIT)[names]).astype(np.intp),
        revenue_at=revenue_at,
        revenue=revenue[revenue_at],
        sessions=sessions,
        session_window=window[sessions.first].astype(np.int64),
        engaged=engaged(sessions, is_pageview, is_key_event),
        name_column=(names, name_labels),
    )


# ----------------------------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class _Pairs:
    """Session attributions: session `ids[i]` counts under dimension code `codes[i]`."""

    ids: IntP
    codes: I64


def _session_pairs(day: _DayEvents, encoded: Encoded, scope: Scope) -> _Pairs:
    """SESSION scope: each session with its first event's code. EVENT scope: each distinct (session, code),
    sorted by session (so the pairs of a session are contiguous)."""
    sessions = day.sessions
    if scope is Scope.SESSION or encoded.size == 1:
        return _Pairs(np.arange(sessions.count, dtype=np.intp), encoded.codes[sessions.first])
    keys = np.sort(sessions.session_of.astype(np.int64) * encoded.size + encoded.codes)
    if keys.size:
        keep = np.empty(keys.size, dtype=np.bool_)
        keep[0] = True
        np.not_equal(keys[1:], keys[:-1], out=keep[1:])
        keys = keys[keep]
    return _Pairs((keys // encoded.size).astype(np.intp), keys % encoded.size)


def _dedupe_other(pairs: _Pairs, keys: I64, radix: int, other: int) -> _Pairs:
    """Pairs (sorted by session) with `keys` in a capped key space: the codes a session reached stay distinct
    except "(other)" (dimension code `other`), which one session may now reach several times; keep its first."""
    is_other = np.flatnonzero(keys % radix == other)
    if is_other.size > 1:
        ids, other_keys = pairs.ids[is_other], keys[is_other]
        repeat = (ids[1:] == ids[:-1]) & (other_keys[1:] == other_keys[:-1])
        if repeat.any():
            keep = np.ones(keys.size, dtype=np.bool_)
            keep[is_other[1:][repeat]] = False
            return _Pairs(pairs.ids[keep], keys[keep])
    return _Pairs(pairs.ids, keys)


@dataclass(frozen=True)
class _Groups:
    """Events and session attributions mapped to dense group codes [0, size); `values[g]` = window * radix + dim
    code of group g (None: `values[g] == g`)."""

    events: I64
    sessions: I64
    size: int
    values: I64 | None

    def value(self, groups: I64) -> I64:
        return groups if self.values is None else self.values[groups]


def _groups(event_keys: I64, session_keys: I64, n_keys: int) -> _Groups:
    if n_keys <= 2 * (event_keys.size + session_keys.size) + _DENSE_EXTRA:
        return _Groups(event_keys, session_keys, n_keys, None)
    codes, uniques = pd.factorize(np.concatenate([event_keys, session_keys]))
    codes = np.asarray(codes, dtype=np.int64)
    n = event_keys.size
    return _Groups(codes[:n], codes[n:], len(uniques), np.asarray(uniques, dtype=np.int64))


def _present(groups: _Groups, scope: Scope) -> tuple[I64, Bool]:
    counts = np.bincount(groups.events, minlength=groups.size)
    present = counts > 0
    if scope is Scope.EVENT:  # session-only groups: the session started in this window, reached the value later
        present |= np.bincount(groups.sessions, minlength=groups.size) > 0
    return counts, present


def _block(day: _DayEvents, cube: Cube, grain: Grain, encoded: Encoded, pairs: _Pairs, max_values: int) -> CubeBlock:
    radix = encoded.size
    if grain is Grain.HOUR:
        n_windows = int(day.window_starts_us.size)
        event_keys = day.window * radix + encoded.codes
        session_keys = day.session_window[pairs.ids] * radix + pairs.codes
    else:
        n_windows = 1
        event_keys, session_keys = encoded.codes, pairs.codes
    groups = _groups(event_keys, session_keys, n_windows * radix)
    counts, present = _present(groups, cube.scope)
    per_window = np.bincount(groups.value(np.flatnonzero(present)) // radix, minlength=n_windows)
    capped = bool(per_window.size) and int(per_window.max()) > max_values
    if capped:
        mapping = _cap_mapping(encoded, groups, counts, present, per_window, radix, max_values)
        radix += 1  # dimension code `encoded.size` is "(other)"
        event_keys, session_keys = mapping[groups.events], mapping[groups.sessions]
        if cube.scope is Scope.EVENT:  # a session that reached several capped values counts once in "(other)"
            pairs = _dedupe_other(pairs, session_keys, radix, encoded.size)
            session_keys = pairs.codes
        groups = _groups(event_keys, session_keys, n_windows * radix)
        counts, present = _present(groups, cube.scope)
    kept = np.flatnonzero(present)
    values = groups.value(kept)
    windows, dim_codes = values // radix, values % radix
    row_codes, distinct = pd.factorize(dim_codes)  # label tuples are built once per distinct value, not per row
    distinct = np.asarray(distinct, dtype=np.int64)
    if capped:
        is_other = distinct == encoded.size
        labels = encoded.labels(np.where(is_other, 0, distinct))
        other_dims = (OTHER,) * len(cube.dimensions)
        for i in np.flatnonzero(is_other).tolist():
            labels[i] = other_dims
    else:
        labels = encoded.labels(distinct)
    dims = CodedDims(np.asarray(row_codes, dtype=np.intp), labels)
    if grain is Grain.HOUR:
        starts = day.window_starts_us[windows]
        ends = starts + US_PER_HOUR
    else:
        starts = np.full(kept.size, day.day_start_us, dtype=np.int64)
        ends = np.full(kept.size, day.day_end_us, dtype=np.int64)
    return _metrics(day, cube, grain, groups, counts, kept, pairs.ids, starts, ends, dims)


def _metrics(
    day: _DayEvents,
    cube: Cube,
    grain: Grain,
    groups: _Groups,
    counts: I64,
    kept: IntP,
    session_ids: IntP,
    starts: I64,
    ends: I64,
    dims: CodedDims,
) -> CubeBlock:
    size, n_rows = groups.size, int(kept.size)

    def count(positions: IntP) -> I64:
        return np.bincount(groups.events[positions], minlength=size)[kept].astype(np.int64)

    sessions = np.bincount(groups.sessions, minlength=size)[kept].astype(np.int64)
    engaged_sessions = np.bincount(groups.sessions[day.engaged[session_ids]], minlength=size)[kept].astype(np.int64)
    duration = np.zeros(size, dtype=np.int64)
    np.add.at(duration, groups.sessions, day.sessions.duration_ms[session_ids])
    revenue = np.zeros(size, dtype=np.int64)
    np.add.at(revenue, groups.events[day.revenue_at], day.revenue)
    rank = np.full(size, -1, dtype=np.int64)
    rank[kept] = np.arange(n_rows, dtype=np.int64)
    event_groups = rank[groups.events]
    users = _sketches_for_groups(event_groups, day.items, n_rows)
    if day.first_visit.size:
        new_users = _sketches_for_groups(event_groups[day.first_visit], day.items.take(day.first_visit), n_rows)
    else:
        new_users = [EMPTY_SKETCH] * n_rows
    events = counts[kept].astype(np.int64)
    return CubeBlock(
        cube=cube,
        grain=grain,
        window_start_us=starts.astype(np.int64),
        window_end_us=ends.astype(np.int64),
        dims=dims,
        events=events,
        pageviews=events - count(day.not_pageview),
        sessions=sessions,
        engaged_sessions=engaged_sessions,
        bounces=sessions - engaged_sessions,
        session_duration_ms=duration[kept],
        revenue_micros=revenue[kept],
        key_events=count(day.key_event),
        users=users,
        new_users=new_users,
    )


def _cap_mapping(
    encoded: Encoded, groups: _Groups, counts: I64, present: Bool, per_window: I64, radix: int, max_values: int
) -> I64:
    """For every group, its key in the capped key space (radix + 1; dim code `radix` is "(other)"): in each window
    with more than `max_values` values, those with the most events (ties: dims ascending) keep their code, the
    rest map to "(other)"."""
    present_groups = np.flatnonzero(present)
    values = groups.value(present_groups)
    windows = values // radix
    in_capped = (per_window > max_values)[windows]
    candidates, windows = present_groups[in_capped], windows[in_capped]
    dim_codes = values[in_capped] % radix
    events = counts[candidates]
    label_rank = encoded.sort_rank[dim_codes]
    n_counts = int(events.max()) + 1
    if int(per_window.size) * n_counts * max(1, encoded.size) < 1 << 62:  # one int64 key: a fast argsort
        order = np.argsort((windows * n_counts + (n_counts - 1 - events)) * encoded.size + label_rank)
    else:
        order = np.lexsort((label_rank, -events, windows))
    sorted_windows = windows[order]
    position = np.arange(order.size) - np.searchsorted(sorted_windows, sorted_windows, side="left")
    keep = position < max_values
    other_code = encoded.code_of((OTHER,) * len(encoded.radices))
    if other_code is not None:  # a real "(other)" value of a capped window joins the "(other)" row
        keep &= dim_codes[order] != other_code
    keep_group = np.ones(groups.size, dtype=np.bool_)
    keep_group[candidates[order[~keep]]] = False
    all_values = groups.value(np.arange(groups.size, dtype=np.int64))
    mapped: I64 = (all_values // radix) * (radix + 1) + np.where(keep_group, all_values % radix, radix)
    return mapped


# ----------------------------------------------------------------------------------------------- sketches


@cache
def _hll_module() -> ModuleType | None:
    try:
        return importlib.import_module("aggregator.hll")
    except ModuleNotFoundError as exc:
        if exc.name != "aggregator.hll":
            raise
        return None


def _sketches_for_groups(group_codes: IntP, items: _Items, n_groups: int) -> list[bytes]:
    """Serialized HLL sketches (lg_k 12, HLL_4, as `gnomon.rollups.sketches`) of the items of each group:
    `result[g]` holds the items of the rows with `group_codes == g` (`EMPTY_SKETCH` when none).

    The ONE switch between the vectorized builder (`aggregator.hll.build_sketches` over the coupons of the
    distinct items, hashed once per day by `aggregator.hll.hash_items`) and, when that module is absent, the
    `datasketches` library updated per group and distinct item (same estimates; about 2.5x slower)."""
    if n_groups == 0:
        return []
    groups = np.asarray(group_codes, dtype=np.int64)
    rows: IntP | None = None
    if groups.size > 1:  # rows come sorted by client: drop consecutive repeats (same images, far fewer rows)
        keep = np.empty(groups.size, dtype=np.bool_)
        keep[0] = True
        np.not_equal(groups[1:], groups[:-1], out=keep[1:])
        keep[1:] |= items.changes
        if not keep.all():
            rows = np.flatnonzero(keep)
            groups = groups[rows]
    hll = _hll_module()
    if hll is not None:
        # hll.Coupons of the rows: coupon codes into the distinct items' coupon values (items hashed once a day)
        codes = items.coupon_codes(hll)
        coupons = hll.Coupons(codes if rows is None else codes[rows], items.table.coupons(hll).values)
        built: list[bytes] = hll.build_sketches(groups, coupons, n_groups, lg_k=SKETCH_LG_K)
        return built
    if rows is not None:
        items = items.take(rows)
    n_items = max(1, int(items.table.values.size))
    out = [EMPTY_SKETCH] * n_groups
    pairs = np.asarray(pd.unique(groups * n_items + items.codes), dtype=np.int64)  # distinct (group, item)
    if not pairs.size:
        return out
    pair_groups, pair_items = pairs // n_items, pairs % n_items
    order = np.argsort(pair_groups, kind="stable")
    pair_groups, pair_items = pair_groups[order], pair_items[order]
    bounds = np.flatnonzero(np.diff(pair_groups)) + 1
    starts = np.concatenate(([0], bounds)).tolist()
    ends = np.concatenate((bounds, [pair_groups.size])).tolist()
    values = items.table.values[pair_items].tolist()
    for group, start, end in zip(pair_groups[starts].tolist(), starts, ends, strict=True):
        sketch = new_sketch()
        update = sketch.update
        for value in values[start:end]:
            update(value)
        out[group] = serialize_sketch(sketch)
    return out
