"""Rollup rows: what one window of one cube holds for one dimension value, as the aggregator writes it.

Windows are those of the merchant's reporting time zone, expressed as UTC instants:
- HOUR: one hour of local time; `window_start` is its first instant in UTC. For Asia/Kolkata (+05:30) hour
  windows start at hh:30 UTC, for Asia/Kathmandu (+05:45) at hh:15 UTC. A window includes its start and
  excludes its end (`window_start + 1 h`).
- DAY: one local calendar day; `window_start` is the UTC instant of local midnight (or the first instant of the
  day when midnight does not exist) and the window ends at the next local day's start, so a DST day lasts 23 or
  25 hours.
`hour_window_start` and `day_window` compute them; the store itself never needs the zone.

Values are immutable and validated on construction (RollupInvalid names the bad field); datetimes are
normalised to `datetime.UTC`, `computed_at` is truncated to milliseconds (the precision of a CQL timestamp)
so every adapter returns rows equal to the ones written.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from gnomon.rollups.errors import RollupInvalid
from gnomon.rollups.sketches import EMPTY_SKETCH

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_VERSION = 2**31 - 1
MAX_MERCHANT_CHARS = 200
MAX_CUBE_CHARS = 100
SKETCH_COLUMNS = ("users", "new_users")  # the serialized-sketch fields of Metrics, in storage order
ALL_SKETCHES = frozenset(SKETCH_COLUMNS)
SKETCH_SELECTIONS = (frozenset[str](), frozenset({"users"}), frozenset({"new_users"}), ALL_SKETCHES)  # every subset

_set = object.__setattr__  # how frozen dataclasses assign their fields


class Grain(StrEnum):
    """The length of a rollup window."""

    HOUR = "hour"
    DAY = "day"


def require_utc(value: datetime, name: str) -> datetime:
    """`value` as a `datetime.UTC` datetime; raises RollupInvalid when it is naive."""
    if not isinstance(value, datetime):
        raise RollupInvalid(f"{name} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise RollupInvalid(f"{name} must be a timezone-aware datetime (UTC), got naive {value!r}")
    return value.astimezone(UTC)


def require_window_start(value: datetime, name: str = "window_start") -> datetime:
    """`value` as UTC; raises RollupInvalid when it is naive or not a whole second."""
    utc = require_utc(value, name)
    if utc.microsecond:
        raise RollupInvalid(f"{name} must be a whole second, got {utc.isoformat()}")
    return utc


def require_version(version: int, name: str = "version") -> int:
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise RollupInvalid(f"{name} must be an int between 1 and {MAX_VERSION}, got {version!r}")
    return version


def require_name(value: str, name: str, max_chars: int = 200) -> str:
    if type(value) is not str or not value or len(value) > max_chars:
        raise RollupInvalid(f"{name} must be a non-empty string of at most {max_chars} characters, got {value!r}")
    return value


def require_sketches(sketches: Collection[str]) -> frozenset[str]:
    """`sketches` as a set of SKETCH_COLUMNS names; raises RollupInvalid for anything else."""
    if isinstance(sketches, str) or not isinstance(sketches, Collection):
        raise RollupInvalid(f"sketches must be a collection of {list(SKETCH_COLUMNS)}, got {sketches!r}")
    chosen = frozenset(sketches)
    unknown = sorted(str(s) for s in chosen - ALL_SKETCHES)
    if unknown:
        raise RollupInvalid(f"sketches: unknown sketch column(s) {unknown}; known: {list(SKETCH_COLUMNS)}")
    return chosen


def require_grain(grain: Grain | str) -> Grain:
    if type(grain) is Grain:
        return grain
    try:
        return Grain(grain)
    except ValueError:
        raise RollupInvalid(f"grain must be one of hour, day, got {grain!r}") from None


def truncate_ms(value: datetime) -> datetime:
    """`value` truncated to whole milliseconds."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def ceil_second(value: datetime) -> datetime:
    """The first whole second >= `value` (aware): for whole-second window starts, `ws >= value` ⟺
    `ws >= ceil_second(value)`, and likewise for `<`."""
    floored = value.replace(microsecond=0)
    if floored == value:
        return floored
    try:
        return floored + timedelta(seconds=1)
    except OverflowError:  # the last second of year 9999: no window can start after it anyway
        return floored


def utc_now_ms() -> datetime:
    """The current UTC time truncated to milliseconds."""
    return truncate_ms(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class RollupKey:
    """The identity of a rollup row; writing a row with the same key overwrites it.

    `dims` holds the dimension values in the cube's dimension order (`()` for the `total` cube). `version` is
    the processing version (>= 1) of the logic that computed the row. `window_start` must be timezone-aware
    and a whole second; it is stored as UTC.
    """

    merchant_id: str
    cube: str
    grain: Grain
    window_start: datetime
    dims: tuple[str, ...] = ()
    version: int = 1

    def __post_init__(self) -> None:
        m, c = self.merchant_id, self.cube
        if type(m) is not str or not 0 < len(m) <= MAX_MERCHANT_CHARS:
            require_name(m, "merchant_id", MAX_MERCHANT_CHARS)
        if type(c) is not str or not 0 < len(c) <= MAX_CUBE_CHARS:
            require_name(c, "cube", MAX_CUBE_CHARS)
        if type(self.grain) is not Grain:
            _set(self, "grain", require_grain(self.grain))
        ws = self.window_start
        if type(ws) is not datetime or ws.tzinfo is not UTC or ws.microsecond:
            _set(self, "window_start", require_window_start(ws))
        dims = self.dims
        if type(dims) is not tuple:
            dims = tuple(dims)
            _set(self, "dims", dims)
        for value in dims:
            if type(value) is not str:
                raise RollupInvalid(f"dims must be strings, got {value!r} in {dims!r}")
        v = self.version
        if type(v) is not int or not 1 <= v <= MAX_VERSION:
            require_version(v)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The measures of one rollup row. Counters are 64-bit signed ints (revenue may be negative for refunds);
    `users` and `new_users` are serialized HLL sketches (see `gnomon.rollups.sketches`), never counts."""

    events: int = 0
    pageviews: int = 0
    sessions: int = 0
    engaged_sessions: int = 0
    bounces: int = 0
    session_duration_ms: int = 0
    revenue_micros: int = 0
    key_events: int = 0
    users: bytes = EMPTY_SKETCH
    new_users: bytes = EMPTY_SKETCH

    def __post_init__(self) -> None:
        counters = (
            self.events,
            self.pageviews,
            self.sessions,
            self.engaged_sessions,
            self.bounces,
            self.session_duration_ms,
            self.revenue_micros,
            self.key_events,
        )
        for name, value in zip(COUNTER_FIELDS, counters, strict=True):
            if type(value) is not int:
                raise RollupInvalid(f"Metrics.{name} must be a 64-bit int, got {value!r}")
        if min(counters) < INT64_MIN or max(counters) > INT64_MAX:
            raise RollupInvalid(f"Metrics counters must be 64-bit ints, got {counters!r}")
        if type(self.users) is not bytes or type(self.new_users) is not bytes:
            raise RollupInvalid("Metrics.users and Metrics.new_users must be bytes (serialized HLL sketches)")


COUNTER_FIELDS: tuple[str, ...] = (
    "events",
    "pageviews",
    "sessions",
    "engaged_sessions",
    "bounces",
    "session_duration_ms",
    "revenue_micros",
    "key_events",
)
METRIC_FIELDS: tuple[str, ...] = (*COUNTER_FIELDS, "users", "new_users")
_new = object.__new__


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One stored rollup: its key, its metrics, whether its window is still open (`provisional`, re-emitted
    every few seconds until the window closes) and when it was computed (UTC, truncated to milliseconds)."""

    key: RollupKey
    metrics: Metrics
    provisional: bool
    computed_at: datetime

    def __post_init__(self) -> None:
        if type(self.key) is not RollupKey or type(self.metrics) is not Metrics:
            raise RollupInvalid("RollupRow needs a RollupKey and a Metrics")
        if type(self.provisional) is not bool:
            raise RollupInvalid(f"provisional must be a bool, got {self.provisional!r}")
        at = self.computed_at
        if type(at) is not datetime or at.tzinfo is not UTC or at.microsecond % 1000:
            _set(self, "computed_at", truncate_ms(require_utc(at, "computed_at")))


class WindowStamp(NamedTuple):
    """A window of one cube and version that has rows, and its change token, without its values: validates
    cached copies of the window (see `RollupStore.window_stamps`)."""

    window_start: datetime
    token: Hashable | None  # None: no cached copy of this window may be trusted


def restore_row(
    merchant_id: str,
    cube: str,
    grain: Grain,
    window_start: datetime,
    dims: tuple[str, ...],
    version: int,
    metrics: Sequence[Any],
    provisional: bool,
    computed_at: datetime,
) -> RollupRow:
    """A RollupRow rebuilt from storage without re-validation (adapters only: the values were validated when
    written and come back as UTC datetimes with `tzinfo=UTC`). `metrics` are the ten Metrics fields in order.
    About twice as fast as the validating constructors, which matters when reads return 100k+ rows."""
    key = _new(RollupKey)
    _set(key, "merchant_id", merchant_id)
    _set(key, "cube", cube)
    _set(key, "grain", grain)
    _set(key, "window_start", window_start)
    _set(key, "dims", dims)
    _set(key, "version", version)
    values = _new(Metrics)
    for name, value in zip(METRIC_FIELDS, metrics, strict=True):
        _set(values, name, value)
    row = _new(RollupRow)
    _set(row, "key", key)
    _set(row, "metrics", values)
    _set(row, "provisional", provisional)
    _set(row, "computed_at", computed_at)
    return row


def _zone(zone: ZoneInfo | str) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


def hour_window_start(instant: datetime, zone: ZoneInfo | str) -> datetime:
    """The UTC start of the local hour of `zone` that contains `instant` (aware).

    The local wall-clock hour is floored using the offset in force at `instant`, so Kolkata hours start at
    hh:30 UTC and the repeated hour of a DST fall-back is two distinct windows.
    """
    utc = require_utc(instant, "instant")
    local = utc.astimezone(_zone(zone))
    into_hour = timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
    return utc - into_hour


def day_window(day: date, zone: ZoneInfo | str) -> tuple[datetime, datetime]:
    """The UTC [start, end) of local calendar `day` in `zone` (23 or 25 hours long on DST change days)."""
    z = _zone(zone)
    start = datetime.combine(day, time(), tzinfo=z).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=z).astimezone(UTC)
    return start, end


def check_window_rows(
    merchant_id: str, cube: str, grain: Grain, window_start: datetime, version: int, rows: Sequence[RollupRow]
) -> tuple[Grain, datetime]:
    """The arguments of a `replace_window` checked: returns (grain, window start) as the adapters store them;
    raises RollupInvalid for an invalid merchant, cube, grain, window start or version, or unless every row is
    a RollupRow of this window."""
    require_name(merchant_id, "merchant_id")
    require_name(cube, "cube")
    grain = require_grain(grain)
    window_start = require_window_start(window_start)
    require_version(version)
    window = (merchant_id, cube, grain, window_start, version)
    for row in rows:
        if type(row) is not RollupRow:
            raise RollupInvalid(f"rows must be RollupRow, got {type(row).__name__}")
        k = row.key
        if (k.merchant_id, k.cube, k.grain, k.window_start, k.version) != window:
            raise RollupInvalid(
                f"replace_window({merchant_id!r}, {cube!r}, {grain.value}, {window_start.isoformat()}, v{version})"
                f" got a row of another window: {k}"
            )
    return grain, window_start
