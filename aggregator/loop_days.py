"""Merchant-local calendar days of events, vectorized (pure functions, no I/O).

An event's local day depends on its merchant's IANA zone. Python (zoneinfo) runs once per distinct
(merchant, UTC hour) of a batch, never per event: a UTC hour contains at most one local midnight in any zone (local
days last 23 to 25 hours), so for each distinct hour we compute the local day at the hour's start and the UTC
instant that day ends; an event's day is that day, plus one if its time is at or after that end. Exact for
every zone, including +05:30, +05:45 and DST changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.eventstore.port import day_number

US_PER_HOUR: Final = 3_600_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=200_000)
def hour_day(zone: str, hour: int) -> tuple[int, int]:
    """(local day number at the start of UTC hour `hour` (hours since the epoch), UTC µs when that day ends)."""
    tz = _zone(zone)
    local = (_EPOCH + timedelta(hours=hour)).astimezone(tz)
    day = local.date()
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return day_number(day), (end - _EPOCH) // timedelta(microseconds=1)


def local_days(
    merchant_ids: pd.Series | npt.NDArray[np.object_],
    event_time_us: npt.NDArray[np.int64],
    zones: Mapping[str, str],
) -> npt.NDArray[np.int32]:
    """Local day number (days since 1970-01-01) of each event in its merchant's zone.

    Raises KeyError for a merchant missing from `zones` (the caller drops unknown merchants first).
    """
    n = len(event_time_us)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    codes, uniques = pd.factorize(pd.Series(merchant_ids), sort=False)
    hours = np.floor_divide(event_time_us, US_PER_HOUR)
    h0 = int(hours.min())
    span = int(hours.max()) - h0 + 1
    keys = codes.astype(np.int64) * span + (hours - h0)
    distinct, inverse = np.unique(keys, return_inverse=True)
    day0 = np.empty(len(distinct), dtype=np.int64)
    ends = np.empty(len(distinct), dtype=np.int64)
    for i, key in enumerate(distinct.tolist()):
        merchant = str(uniques[key // span])
        day0[i], ends[i] = hour_day(zones[merchant], h0 + key % span)
    days = day0[inverse] + (event_time_us >= ends[inverse])
    return days.astype(np.int32)


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """UTC [start, end) of local `day` in `zone` (23 to 25 hours long on DST days)."""
    tz = _zone(zone)
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return start, end


def to_us(instant: datetime) -> int:
    """µs since the epoch of an aware datetime."""
    return (instant - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """The UTC datetime `us` µs after the epoch."""
    return _EPOCH + timedelta(microseconds=int(us))
