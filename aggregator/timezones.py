"""Local time of a merchant's reporting zone, vectorized over int64 microsecond UTC instants (pure, no I/O).

A merchant reports in one IANA zone (GA4's "reporting time zone"). Its windows, as `gnomon.rollups.model` defines
them, are expressed as UTC instants:
- an HOUR window is one local wall-clock hour: `start = t - ((t + offset(t)) mod 1 h)`, with the zone's UTC offset
  in force at `t`. Asia/Kolkata (+05:30) windows start at hh:30 UTC, Asia/Kathmandu (+05:45) at hh:15 UTC; the
  repeated hour of a DST fall-back is two distinct windows (01:00 EDT and 01:00 EST), the skipped hour of a spring
  forward does not exist, so a local day has 23, 24 or 25 hour windows. Same rule as `model.hour_window_start`.
- a DAY window is one local calendar day, [UTC instant of local midnight, next local midnight) (`model.day_window`).

Vectorization: offsets are looked up with `zoneinfo` once per distinct UTC hour of the input (at most ~27 for one
local day), never per event. A UTC hour that contains an offset transition (there is at most one per hour in the
tz database) is split at the transition, found by bisection to the microsecond, so results are exact for every
zone, including historical offsets that are not whole minutes.

Raises ValueError for an unknown zone name.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from gnomon.rollups.model import day_window

I64 = npt.NDArray[np.int64]
IntP = npt.NDArray[np.intp]

US_PER_SECOND: Final = 1_000_000
US_PER_HOUR: Final = 3_600 * US_PER_SECOND
US_PER_DAY: Final = 24 * US_PER_HOUR
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_DENSE_HOURS: Final = 1 << 16  # up to this many UTC hours in the input span, look every hour up (no sort)


def zone_info(zone: str | ZoneInfo) -> ZoneInfo:
    """The `ZoneInfo` of an IANA zone name; raises ValueError naming the zone when it is unknown."""
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {zone!r}") from exc


def to_us(instant: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact integer arithmetic)."""
    if instant.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {instant!r}")
    return (instant - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """The UTC datetime of `us` microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=us)


def offset_us(us: int, zone: str | ZoneInfo) -> int:
    """The UTC offset of `zone` (µs, east positive) in force at instant `us`."""
    offset = from_us(us).astimezone(zone_info(zone)).utcoffset()
    assert offset is not None
    return offset // _ONE_US


def _hour_offsets(hour: int, zone: ZoneInfo) -> tuple[int, int, int]:
    """(offset before, offset after, first µs of "after") of UTC hour number `hour`."""
    start = hour * US_PER_HOUR
    last = start + US_PER_HOUR - 1
    before, after = offset_us(start, zone), offset_us(last, zone)
    if before == after:
        return before, after, last + 1
    lo, hi = start, last  # offset(lo) == before, offset(hi) != before
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset_us(mid, zone) == before:
            lo = mid
        else:
            hi = mid
    return before, after, hi


def utc_offsets_us(times_us: I64, zone: str | ZoneInfo) -> I64:
    """The UTC offset (µs) of `zone` at each instant of `times_us` (int64 µs UTC); one lookup per UTC hour."""
    z = zone_info(zone)
    times = np.asarray(times_us, dtype=np.int64)
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    hours = times // US_PER_HOUR
    first, last = int(hours.min()), int(hours.max())
    if last - first < max(_DENSE_HOURS, times.size):
        unique = np.arange(first, last + 1, dtype=np.int64)
        inverse = hours - first
    else:
        unique, inverse = np.unique(hours, return_inverse=True)
    table = np.array([_hour_offsets(h, z) for h in unique.tolist()], dtype=np.int64).reshape(-1, 3)
    before, after, switch = table[:, 0], table[:, 1], table[:, 2]
    result: I64 = np.where(times < switch[inverse], before[inverse], after[inverse])
    return result


def local_hour_starts_us(times_us: I64, zone: str | ZoneInfo) -> I64:
    """The UTC start (µs) of the local hour window of `zone` containing each instant."""
    times = np.asarray(times_us, dtype=np.int64)
    local = times + utc_offsets_us(times, zone)
    result: I64 = times - np.mod(local, US_PER_HOUR)
    return result


def hour_window_index(times_us: I64, zone: str | ZoneInfo) -> tuple[IntP, I64]:
    """(window index per instant, distinct window starts in µs ascending): `starts[index] ==
    local_hour_starts_us(times_us, zone)`. Vectorized without a sort when the span is small (one day)."""
    starts = local_hour_starts_us(times_us, zone)
    if starts.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
    low = int(starts.min())
    rel = (starts - low) // US_PER_SECOND  # window starts are whole seconds (tz offsets are whole seconds)
    span = int(rel.max()) + 1
    if span <= max(1 << 20, 4 * starts.size):
        present = np.bincount(rel, minlength=span) > 0
        seconds = np.flatnonzero(present)
        position = np.cumsum(present) - 1
        index: IntP = position[rel].astype(np.intp)
        return index, low + seconds.astype(np.int64) * US_PER_SECOND
    unique, inverse = np.unique(starts, return_inverse=True)
    return inverse.astype(np.intp), unique.astype(np.int64)


def local_day_numbers(times_us: I64, zone: str | ZoneInfo) -> I64:
    """The local calendar day of each instant, as days since 1970-01-01 (`date.fromordinal(n + 719163)`)."""
    times = np.asarray(times_us, dtype=np.int64)
    result: I64 = (times + utc_offsets_us(times, zone)) // US_PER_DAY
    return result


_ORDINAL_1970: Final = date(1970, 1, 1).toordinal()


def day_of_number(number: int) -> date:
    """The date of a `local_day_numbers` value."""
    return date.fromordinal(number + _ORDINAL_1970)


def number_of_day(day: date) -> int:
    """The `local_day_numbers` value of a date."""
    return day.toordinal() - _ORDINAL_1970


def day_bounds_us(day: date, zone: str | ZoneInfo) -> tuple[int, int]:
    """The UTC [start, end) of local calendar `day` in µs (`model.day_window`; 23 or 25 h on DST days)."""
    start, end = day_window(day, zone_info(zone))
    return to_us(start), to_us(end)


def hour_window_starts(day: date, zone: str | ZoneInfo) -> list[datetime]:
    """Every local hour window of `day` (UTC starts, ascending): 24 on most days, 23/25 on DST change days.

    Walks from the day's start to its end, one local hour (or one offset transition) at a time.
    """
    z = zone_info(zone)
    start, end = day_bounds_us(day, z)
    out: list[datetime] = []
    instant = start
    while instant < end:
        window = int(local_hour_starts_us(np.array([instant], dtype=np.int64), z)[0])
        if not out or out[-1] != from_us(window):
            out.append(from_us(window))
        following = window + US_PER_HOUR
        offset_now = offset_us(instant, z)
        if offset_us(following - 1, z) != offset_now:  # a transition before the hour ends: continue from it
            lo, hi = instant, following - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_us(mid, z) == offset_now:
                    lo = mid
                else:
                    hi = mid
            following = hi
        instant = following
    return out
