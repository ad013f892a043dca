"""Active processing versions: which version of the rollups queries read, per merchant and time range.

A reprocess writes rollups under a new processing version beside the old one, verifies them, then flips the
range to the new version with `set_active`; rolling back is another flip to the old version. Every flip is
kept (the history is the audit log); the version active at an instant is that of the *latest* flip whose
range [start, end) covers it, or `DEFAULT_VERSION` (1) when no flip covers it.

Flips are ordered by `(flipped_at, flip_id)`: flipped_at is the registry's clock (UTC, milliseconds), made
strictly increasing within one registry object; flip_id (random) breaks ties between processes. Operators flip
rarely (a few times a year per merchant), so a merchant's whole history is one small read; every resolution
reads it, so the query path should cache resolutions keyed by `RollupStore.data_version` (a flip advances it).

Both adapters live beside the rollups in the same engine (`SqliteVersionRegistry`, `CqlVersionRegistry`) and
a flip also advances the merchant's `RollupStore.data_version`, so query caches keyed by it invalidate.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gnomon.rollups.errors import RollupInvalid
from gnomon.rollups.model import require_name, require_utc, require_version, truncate_ms, utc_now_ms

DEFAULT_VERSION = 1
MAX_WHO_CHARS = 200
MAX_WHY_CHARS = 2000

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class VersionFlip:
    """One recorded flip: from `flipped_at` on, [start, end) of the merchant reads `version`."""

    merchant_id: str
    start: datetime
    end: datetime
    version: int
    who: str
    why: str
    flipped_at: datetime
    flip_id: str

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.flipped_at, self.flip_id)


@dataclass(frozen=True)
class VersionBuild:
    """A reservation: job `job_id` is building `version` for [start, end) of the merchant (not yet active)."""

    merchant_id: str
    start: datetime
    end: datetime
    version: int
    job_id: str


@dataclass(frozen=True)
class VersionSpan:
    """A maximal part [start, end) of a queried range that reads one version."""

    start: datetime
    end: datetime
    version: int


class VersionRegistry(Protocol):
    """Active processing versions per merchant. Every method blocks on the engine and may raise
    RollupUnavailable; malformed arguments raise RollupInvalid. Safe to call from many threads."""

    def active_version(self, merchant_id: str, at: datetime) -> int:
        """The version queries read at instant `at` (DEFAULT_VERSION when no flip covers it)."""
        ...

    def active_spans(self, merchant_id: str, start: datetime, end: datetime) -> list[VersionSpan]:
        """[start, end) cut into maximal spans of one active version, in time order (empty when start >= end)."""
        ...

    def set_active(
        self, merchant_id: str, start: datetime, end: datetime, version: int, who: str, why: str
    ) -> VersionFlip:
        """Record a flip making `version` active on [start, end) (start < end, both aware) and return it.

        `who` (operator or job) and `why` are required for the audit history. Durable when it returns.
        """
        ...

    def history(self, merchant_id: str) -> list[VersionFlip]:
        """Every flip of the merchant, oldest first."""
        ...

    def reserve(self, merchant_id: str, start: datetime, end: datetime, version: int, job_id: str) -> VersionBuild:
        """Record that job `job_id` builds `version` for [start, end), before it becomes active. Idempotent per
        (merchant, job_id): a second call replaces the first. Durable when it returns."""
        ...

    def versions_in_use(self, merchant_id: str, start: datetime, end: datetime) -> tuple[int, ...]:
        """Every version whose rollups of [start, end) must be kept current, ascending: the active ones, every
        version a flip ever made active there (so a rollback finds it complete) and every reserved one. Writers
        of live rollups compute each of them; never empty (DEFAULT_VERSION when nothing is recorded)."""
        ...

    def close(self) -> None:
        """Release connections; unusable afterwards. Idempotent."""
        ...


@dataclass(frozen=True)
class FlipRequest:
    """Validated arguments of `set_active`."""

    merchant_id: str
    start: datetime
    end: datetime
    version: int
    who: str
    why: str


def validate_flip(merchant_id: str, start: datetime, end: datetime, version: int, who: str, why: str) -> FlipRequest:
    """The checked arguments of a flip; raises RollupInvalid naming the first bad one.

    start and end are stored with millisecond precision (a CQL timestamp) and must be whole milliseconds.
    """
    require_name(merchant_id, "merchant_id")
    s = require_utc(start, "start")
    e = require_utc(end, "end")
    if s.microsecond % 1000 or e.microsecond % 1000:
        raise RollupInvalid("start and end must be whole milliseconds")
    if s >= e:
        raise RollupInvalid(f"start {s.isoformat()} must be before end {e.isoformat()}")
    require_version(version)
    require_name(who, "who", MAX_WHO_CHARS)
    if type(why) is not str or not why.strip() or len(why) > MAX_WHY_CHARS:
        raise RollupInvalid(f"why must be a non-empty reason of at most {MAX_WHY_CHARS} characters")
    return FlipRequest(merchant_id, s, e, version, who, why)


class FlipClock:
    """Stamps flips: the clock truncated to milliseconds, strictly increasing within this object."""

    def __init__(self, clock: Clock = utc_now_ms) -> None:
        self._clock = clock
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def stamp(self) -> tuple[datetime, str]:
        """(flipped_at, a fresh random flip_id)."""
        with self._lock:
            now = truncate_ms(require_utc(self._clock(), "clock()"))
            if self._last is not None and now <= self._last:
                now = self._last + timedelta(milliseconds=1)
            self._last = now
        return now, uuid.uuid4().hex


def validate_build(merchant_id: str, start: datetime, end: datetime, version: int, job_id: str) -> VersionBuild:
    """The checked arguments of `reserve`; raises RollupInvalid naming the first bad one."""
    req = validate_flip(merchant_id, start, end, version, "reserve", "reserve")
    require_name(job_id, "job_id")
    return VersionBuild(req.merchant_id, req.start, req.end, req.version, job_id)


def in_use_between(
    flips: Sequence[VersionFlip], builds: Sequence[VersionBuild], start: datetime, end: datetime
) -> tuple[int, ...]:
    """`VersionRegistry.versions_in_use` from the merchant's flips and reservations."""
    s, e = require_utc(start, "start"), require_utc(end, "end")
    found = {span.version for span in spans_between(flips, s, e)}
    found.update(f.version for f in flips if f.start < e and f.end > s)
    found.update(b.version for b in builds if b.start < e and b.end > s)
    return tuple(sorted(found)) or (DEFAULT_VERSION,)


def newest_first(flips: Iterable[VersionFlip]) -> list[VersionFlip]:
    return sorted(flips, key=lambda f: f.order, reverse=True)


def version_at(flips: Sequence[VersionFlip], at: datetime) -> int:
    """The version of the latest flip in `flips` covering `at`, or DEFAULT_VERSION."""
    instant = require_utc(at, "at")
    for flip in newest_first(flips):
        if flip.start <= instant < flip.end:
            return flip.version
    return DEFAULT_VERSION


def spans_between(flips: Sequence[VersionFlip], start: datetime, end: datetime) -> list[VersionSpan]:
    """[start, end) cut into maximal spans of one active version according to `flips`."""
    s = require_utc(start, "start")
    e = require_utc(end, "end")
    if s >= e:
        return []
    relevant = [f for f in newest_first(flips) if f.start < e and f.end > s]
    cuts = sorted({s, e, *(f.start for f in relevant if s < f.start < e), *(f.end for f in relevant if s < f.end < e)})
    spans: list[VersionSpan] = []
    for lo, hi in itertools.pairwise(cuts):
        version = next((f.version for f in relevant if f.start <= lo < f.end), DEFAULT_VERSION)
        if spans and spans[-1].version == version:
            spans[-1] = VersionSpan(spans[-1].start, hi, version)
        else:
            spans.append(VersionSpan(lo, hi, version))
    return spans
