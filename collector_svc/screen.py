"""The hot path of validation: column-wise checks over a whole batch, then `STEPS` for flagged events only.

Why columns: reading protobuf fields one by one from Python costs ~100 ns each, and an event has ~20 fields
to check. Here fields are pulled out with `operator.attrgetter` / `methodcaller` mapped over the events (the
loop runs in C), and each rule becomes a C-level reduction over a column (`max(map(len, col))`,
`set.issuperset`, `all`). Only when a column breaks a rule are its offending indexes looked up, and each flagged
event is then judged by `validation.first_rejection`, which names the first failing step. Flagging is
conservative: an unflagged event is valid; a flagged one may still turn out valid.

Contract of `EventScreen.screen(events, window, fallback_ip)`:
- returns every event id (batch order) and a map index -> Rejection;
- mutates each event's `ip` in place: kept addresses become their /24 or /48 network, an empty ip becomes
  `fallback_ip` (already truncated, or ""), an unparseable ip becomes "" (and the event is rejected),
  so that no event serialized afterwards carries a full address;
- two valid events with the same id: the later one is rejected DUPLICATE_IN_BATCH.

`FastScreen` is the same contract over the raw request bytes, when the Rust extension `gnomon_fastpath`
(collector_svc/fastpath) is installed: it reads the wire format, checks and truncates every event without
making Python objects for them, and flags the events it does not find valid; only those are parsed here and
judged by `first_rejection`. The pure-Python `EventScreen` stays the reference and the fallback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from itertools import chain, compress, repeat
from operator import attrgetter, getitem, methodcaller
from typing import Any, NamedTuple, Protocol

from collector_svc.iptrunc import truncate_ip, truncate_ipv4_column
from collector_svc.validation import (
    CURRENCY_RE,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_ID,
    MAX_NAME,
    MAX_OTHER,
    MAX_PARAM_VALUE,
    MAX_PARAMS,
    MAX_TITLE,
    MAX_URL,
    MAX_USER_AGENT,
    NAME_RE,
    NANOS_PER_S,
    Rejection,
    Window,
    check_ip,
    duplicate_in_batch,
    first_rejection,
)
from gnomon.v1 import event_pb2

_TOP = attrgetter("event_id", "client_id", "name", "user_agent", "user_id", "session_id", "locale", "ip")
_TOP_LIMITS = (MAX_EVENT_ID, MAX_OTHER, MAX_NAME, MAX_USER_AGENT, MAX_OTHER, MAX_OTHER, MAX_OTHER, 0)
_TIME = attrgetter("event_time")
_TIME_FIELDS = attrgetter("seconds", "nanos")
_PAGE = attrgetter("page")
_PAGE_FIELDS = attrgetter("url", "path", "title", "referrer")
_PAGE_LIMITS = (MAX_URL, MAX_URL, MAX_TITLE, MAX_URL)
_HAS_UTM = methodcaller("HasField", "utm")
_UTM = attrgetter("utm")
_UTM_FIELDS = attrgetter("source", "medium", "campaign", "term", "content")
_HAS_REVENUE = methodcaller("HasField", "revenue")
_PARAMS = attrgetter("params")


class Screened(NamedTuple):
    event_ids: list[str]  # one per event, in batch order
    rejected: dict[int, Rejection]  # batch index -> why


def _flag_long(column: Sequence[str], limit: int, flagged: set[int], index: Sequence[int] | None) -> None:
    """Flag the events whose string in `column` is longer than `limit` (`index` maps rows to events)."""
    if column and max(map(len, column)) > limit:
        rows = [i for i, value in enumerate(column) if len(value) > limit]
        flagged.update(rows if index is None else [index[r] for r in rows])


def _flag_sub(
    events: list[event_pb2.Event],
    has: Callable[[Any], bool],
    get: Callable[[Any], Any],
    fields: Callable[[Any], tuple[str, ...]],
    limits: tuple[int, ...],
    flagged: set[int],
) -> None:
    """Length checks on the fields of one optional sub-message, only over the events that set it."""
    present = list(map(has, events))
    if not any(present):
        return
    index = list(compress(range(len(events)), present))
    columns = list(zip(*map(fields, map(get, compress(events, present))), strict=True))
    for column, limit in zip(columns, limits, strict=True):
        _flag_long(column, limit, flagged, index)


class EventScreen:
    """Reusable and thread-safe; its cache of valid names only grows, up to `name_cache_size`."""

    def __init__(self, name_cache_size: int = 4096) -> None:
        self._names: set[str] = set()
        self._name_cache_size = name_cache_size

    def _valid_name(self, name: str) -> bool:
        if name in self._names:
            return True
        if len(name) <= MAX_NAME and NAME_RE.fullmatch(name):
            if len(self._names) < self._name_cache_size:
                self._names.add(name)
            return True
        return False

    def _flag_params(self, events: list[event_pb2.Event], flagged: set[int]) -> None:
        maps = list(map(_PARAMS, events))
        counts = list(map(len, maps))
        if not any(counts):
            return
        if max(counts) > MAX_PARAMS:
            flagged.update(i for i, c in enumerate(counts) if c > MAX_PARAMS)
        # every value, in C: maps[i] repeated counts[i] times, zipped with the flattened keys
        values = map(getitem, chain.from_iterable(map(repeat, maps, counts)), chain.from_iterable(maps))
        names_ok = self._names.issuperset(chain.from_iterable(maps))
        if names_ok and max(map(len, values)) <= MAX_PARAM_VALUE:
            return
        for i in compress(range(len(maps)), counts):
            m = maps[i]
            if max(map(len, map(m.__getitem__, m))) > MAX_PARAM_VALUE or not all(map(self._valid_name, m)):
                flagged.add(i)

    def _flag(self, events: list[event_pb2.Event], window: Window, top: list[tuple[str, ...]]) -> set[int]:
        flagged: set[int] = set()
        for column, limit in zip(top[:7], _TOP_LIMITS[:7], strict=True):
            _flag_long(column, limit, flagged, None)
        for column in (top[0], top[1], top[2]):  # event_id, client_id, name are required
            if not all(column):
                flagged.update(i for i, value in enumerate(column) if not value)
        names = top[2]
        if not self._names.issuperset(names):
            flagged.update(i for i, name in enumerate(names) if not self._valid_name(name))
        seconds, nanos = zip(*map(_TIME_FIELDS, map(_TIME, events)), strict=True)
        lo, hi = window
        if min(seconds) < lo or max(seconds) > hi:
            flagged.update(i for i, s in enumerate(seconds) if not lo <= s <= hi)
        if min(nanos) < 0 or max(nanos) >= NANOS_PER_S:
            flagged.update(i for i, ns in enumerate(nanos) if not 0 <= ns < NANOS_PER_S)
        # page is set on most events: read it everywhere (an unset one reads as empty strings)
        for column, limit in zip(zip(*map(_PAGE_FIELDS, map(_PAGE, events)), strict=True), _PAGE_LIMITS, strict=True):
            _flag_long(column, limit, flagged, None)
        _flag_sub(events, _HAS_UTM, _UTM, _UTM_FIELDS, (MAX_OTHER,) * 5, flagged)
        with_revenue = list(map(_HAS_REVENUE, events))
        if any(with_revenue):
            for i in compress(range(len(events)), with_revenue):
                if not CURRENCY_RE.fullmatch(events[i].revenue.currency):
                    flagged.add(i)
        self._flag_params(events, flagged)
        return flagged

    @staticmethod
    def _truncate_each(
        evs: list[event_pb2.Event], ips: Sequence[str], window: Window, rejected: dict[int, Rejection]
    ) -> list[str]:
        """Truncate address by address (IPv6, mixed or invalid input); rejects events with invalid ones."""
        short = {ip: truncate_ip(ip) for ip in set(ips)}
        short[""] = ""
        if None in short.values():
            for i, ip in enumerate(ips):
                if short[ip] is None and i not in rejected:
                    rejection = check_ip(evs[i], window)
                    assert rejection is not None
                    rejected[i] = rejection
        return [value or "" for value in map(short.__getitem__, ips)]

    def screen(self, events: Sequence[event_pb2.Event], window: Window, fallback_ip: str | None) -> Screened:
        evs = list(events)
        if not evs:
            return Screened([], {})
        top = list(zip(*map(_TOP, evs), strict=True))
        ids = list(top[0])
        rejected: dict[int, Rejection] = {}
        for i in sorted(self._flag(evs, window, top)):
            rejection = first_rejection(evs[i], window)
            if rejection is not None:
                rejected[i] = rejection
        ips = top[7]
        new_ips = truncate_ipv4_column(ips)
        if new_ips is None:
            new_ips = self._truncate_each(evs, ips, window, rejected)
        if fallback_ip and "" in ips:
            new_ips = [short if ip else fallback_ip for ip, short in zip(ips, new_ips, strict=True)]
        list(map(setattr, evs, repeat("ip"), new_ips))
        if len(set(ids)) != len(ids):
            reject_duplicates(ids, rejected)
        return Screened(ids, rejected)


def _scrubbed_ip(ip: str, fallback_ip: str | None) -> str:
    """What `EventScreen.screen` writes for `ip`: its network, "" when invalid, the fallback when empty."""
    return (truncate_ip(ip) or "") if ip else (fallback_ip or "")


def reject_duplicates(ids: Sequence[str], rejected: dict[int, Rejection]) -> None:
    """Reject DUPLICATE_IN_BATCH every not yet rejected event whose id a kept earlier event has."""
    seen: set[str] = set()
    for i, eid in enumerate(ids):
        if i in rejected:
            continue
        if eid in seen:
            rejected[i] = duplicate_in_batch(eid)
        else:
            seen.add(eid)


class ScannedBatch(Protocol):
    """What `gnomon_fastpath.Scanned` offers (see collector_svc/fastpath/gnomon_fastpath.pyi)."""

    @property
    def batch_id(self) -> str: ...
    @property
    def event_ids(self) -> list[str]: ...
    @property
    def flagged(self) -> list[int]: ...
    @property
    def empty_ip(self) -> bool: ...
    @property
    def dup_ids(self) -> bool: ...
    def __len__(self) -> int: ...
    def event_bytes(self, index: int) -> bytes: ...
    def logged_batch(self, header: bytes, drop: Sequence[int], ips: dict[int, str], fallback_ip: str) -> bytes: ...


class FastScreened(NamedTuple):
    event_ids: list[str]  # one per event, in batch order
    rejected: dict[int, Rejection]  # batch index -> why
    checked: dict[int, event_pb2.Event]  # every flagged event, unknown fields dropped, ip truncated or cleared
    ips: dict[int, str]  # the ip to write for each flagged event that turned out valid


class FastScreen:
    """The Rust screen plus the Python judgement of the events it flags. Thread-safe."""

    MODULE = "gnomon_fastpath"

    def __init__(self, native: Any) -> None:
        self._native = native

    @classmethod
    def load(cls) -> FastScreen | None:
        """The fast screen, or None when the extension is not importable (then use `EventScreen`)."""
        try:
            module = importlib.import_module(cls.MODULE)
        except ImportError:
            return None
        return cls(
            module.Screen(
                max_events=MAX_BATCH_EVENTS,
                max_bytes=MAX_BATCH_BYTES,
                max_event_id=MAX_EVENT_ID,
                max_name=MAX_NAME,
                max_other=MAX_OTHER,
                max_user_agent=MAX_USER_AGENT,
                max_url=MAX_URL,
                max_title=MAX_TITLE,
                max_params=MAX_PARAMS,
                max_param_value=MAX_PARAM_VALUE,
            )
        )

    def scan(self, raw: bytes, window: Window) -> ScannedBatch | None:
        """Screen the request bytes; None when the batch is not decided here (unparseable by the strict reader,
        empty, over 500 events or 1 MiB): the caller then runs the pure-Python path on it."""
        scanned: ScannedBatch | None = self._native.scan(raw, window.oldest_s, window.newest_s)
        return scanned

    @staticmethod
    def judge(scanned: ScannedBatch, window: Window, fallback_ip: str | None) -> FastScreened:
        """Rejections as `EventScreen.screen` gives them; only flagged (and duplicate) events are parsed."""
        ids = scanned.event_ids
        rejected: dict[int, Rejection] = {}
        checked: dict[int, event_pb2.Event] = {}
        ips: dict[int, str] = {}
        for i in scanned.flagged:
            ev = checked[i] = event_pb2.Event.FromString(scanned.event_bytes(i))
            ev.DiscardUnknownFields()
            rejection = first_rejection(ev, window)
            ev.ip = _scrubbed_ip(ev.ip, fallback_ip)
            if rejection is None:
                ips[i] = ev.ip
            else:
                rejected[i] = rejection
        if scanned.dup_ids:
            reject_duplicates(ids, rejected)
            for i in rejected.keys() - checked.keys():  # valid but DUPLICATE_IN_BATCH: parsed for its BadEvent
                ev = checked[i] = event_pb2.Event.FromString(scanned.event_bytes(i))
                ev.DiscardUnknownFields()
                ev.ip = _scrubbed_ip(ev.ip, fallback_ip)
        return FastScreened(ids, rejected, checked, ips)
