"""Dates in the merchant's reporting zone: resolving ranges, and the labels of time dimensions. Pure.

- `resolve_range`: "YYYY-MM-DD", "today", "yesterday", "NdaysAgo" -> inclusive local dates and the UTC instants
  [local midnight of the first day, local midnight after the last day) (`gnomon.rollups.day_window`, so DST days
  are 23 or 25 hours and +05:30 / +05:45 zones start at hh:30 / hh:15 UTC).
- Labels: date "YYYYMMDD", dateHour "YYYYMMDDHH" (local wall clock; both windows of a DST fall-back's repeated
  hour carry the same label and merge), week "YYYYWW" (ISO year and week, Monday first), month "YYYYMM".
- `time_buckets`: every label of a range in order (for gap filling); a week or month cut by the range holds only
  the range's days.

Raises InvalidQuery (with the request field) for malformed or out-of-bounds dates.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from gnomon.rollups import day_window
from query_svc.errors import InvalidQuery
from query_svc.model import DateSpec, Granularity, PreviousPeriod, ResolvedRange

MAX_RANGE_DAYS: Final = 3_700  # about ten years of day rows
_DAYS_AGO = re.compile(r"(\d{1,5})daysAgo")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MIN_DATE: Final = date(2000, 1, 1)
_MAX_DATE: Final = date(2200, 12, 31)

GRANULARITY_DIMENSION: Final = {
    Granularity.HOUR: "dateHour",
    Granularity.DAY: "date",
    Granularity.WEEK: "week",
    Granularity.MONTH: "month",
}


def local_today(now: datetime, zone: ZoneInfo) -> date:
    """The merchant's current local date (`now` aware)."""
    return now.astimezone(zone).date()


def resolve_date(text: str, today: date, field: str = "date_range") -> date:
    """One date: "YYYY-MM-DD", "today", "yesterday" or "NdaysAgo" relative to the local `today`."""
    value = text.strip()
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    ago = _DAYS_AGO.fullmatch(value)
    if ago:
        return today - timedelta(days=int(ago.group(1)))
    if _ISO_DATE.fullmatch(value):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise InvalidQuery(f"{field}: {text!r} is not a valid calendar date", field) from None
        if not _MIN_DATE <= parsed <= _MAX_DATE:
            raise InvalidQuery(f"{field}: {text!r} must be between {_MIN_DATE} and {_MAX_DATE}", field)
        return parsed
    raise InvalidQuery(
        f"{field}: {text!r} is not a date; use YYYY-MM-DD, 'today', 'yesterday' or 'NdaysAgo' (e.g. 7daysAgo)", field
    )


def range_of(start: date, end: date, zone: ZoneInfo, field: str = "date_range") -> ResolvedRange:
    """The resolved range of inclusive local dates [start, end]."""
    if start > end:
        raise InvalidQuery(f"{field}: start date {start} is after end date {end}", field)
    days = (end - start).days + 1
    if days > MAX_RANGE_DAYS:
        raise InvalidQuery(f"{field}: {days} days is longer than the maximum of {MAX_RANGE_DAYS} days", field)
    return ResolvedRange(start, end, day_window(start, zone)[0], day_window(end, zone)[1])


def resolve_range(spec: DateSpec, zone: ZoneInfo, now: datetime, field: str = "date_range") -> ResolvedRange:
    """`spec` resolved in `zone` at instant `now`."""
    if not spec.start.strip() or not spec.end.strip():
        raise InvalidQuery(f"{field}: start_date and end_date are required", field)
    today = local_today(now, zone)
    return range_of(resolve_date(spec.start, today, field), resolve_date(spec.end, today, field), zone, field)


def resolve_comparison(
    comparison: DateSpec | PreviousPeriod, primary: ResolvedRange, zone: ZoneInfo, now: datetime
) -> ResolvedRange:
    """The comparison range: the previous period of equal length, or an explicit second range."""
    if isinstance(comparison, PreviousPeriod):
        end = primary.start_date - timedelta(days=1)
        return range_of(end - timedelta(days=primary.days - 1), end, zone, "comparison")
    return resolve_range(comparison, zone, now, "comparison.date_range")


# ----------------------------------------------------------------------------------------------- labels


def date_label(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def week_label(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso.year:04d}{iso.week:02d}"


def month_label(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}"


@lru_cache(maxsize=65_536)
def hour_label(window_start: datetime, zone: ZoneInfo) -> str:
    local = window_start.astimezone(zone)
    return f"{local.year:04d}{local.month:02d}{local.day:02d}{local.hour:02d}"


def day_label(dimension: str, day: date) -> str:
    """The label of local `day` for the day-based time dimension `dimension` (date, week, month)."""
    if dimension == "date":
        return date_label(day)
    if dimension == "week":
        return week_label(day)
    if dimension == "month":
        return month_label(day)
    raise ValueError(f"{dimension!r} is not a day-based time dimension")


def local_day(window_start: datetime, zone: ZoneInfo) -> date:
    """The local date a window (HOUR or DAY) starting at `window_start` belongs to."""
    return window_start.astimezone(zone).date()


def days_of(r: ResolvedRange) -> list[date]:
    return [r.start_date + timedelta(days=i) for i in range(r.days)]


@lru_cache(maxsize=1024)
def time_buckets(r: ResolvedRange, dimension: str, zone: ZoneInfo) -> tuple[str, ...]:
    """Every label of time dimension `dimension` in range `r`, in time order, each once.

    dateHour: the local hour of every whole UTC hour from the range's start (a local midnight), so a spring-forward
    day has 23 labels and a fall-back day 24 (its repeated hour is one label). Exact for every zone whose offsets
    and DST shifts are whole hours apart from the zone's base offset (all current zones but Lord Howe's 30-minute
    DST, where the hour after the shift starts mid-window and keeps its local label).
    """
    if dimension == "dateHour":
        hours = int((r.end_time - r.start_time).total_seconds()) // 3600
        labels = [hour_label(r.start_time + timedelta(hours=k), zone) for k in range(hours)]
    else:
        labels = [day_label(dimension, day) for day in days_of(r)]
    return tuple(dict.fromkeys(labels))


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
