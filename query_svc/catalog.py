"""The dimensions and metrics the query service knows, by GA4 Data API name, and how each maps to rollups.

Dimensions are either TIME dimensions (computed from a rollup's window in the merchant's zone: date
"YYYYMMDD", dateHour "YYYYMMDDHH", week "YYYYWW" = ISO year + ISO week (weeks start on Monday; GA4's
isoYearIsoWeek), month "YYYYMM" (GA4's yearMonth)) or ROLLUP dimensions, computed from the event-frame
columns a cube groups by (`aggregator.frame`): `country` is the English country name (`country_name`),
`sessionSourceMedium` is "<source> / <medium>" (the aggregator's own format) from the source_medium cube.

Metrics are COUNTER metrics (a sum of one rollup counter), SKETCH metrics (users: the estimate of the union
of HLL sketches — never a sum) or RATIO metrics (derived after aggregation from two sums).

`activeUsers` equals `totalUsers` here: the rollups carry one user sketch (every client id with a non-bot
event) and no engagement signal per user. `userEngagementDuration` is not available (no foreground time is
collected); it is deliberately absent rather than approximated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aggregator import frame as f
from query_svc.errors import UnknownName
from query_svc.model import DimensionInfo, MetricInfo, MetricType


class DimKind(StrEnum):
    TIME = "time"
    ROLLUP = "rollup"
    REALTIME_ONLY = "realtime_only"


@dataclass(frozen=True)
class DimensionDef:
    api_name: str
    ui_name: str
    description: str
    category: str
    kind: DimKind
    columns: tuple[str, ...] = ()  # event-frame columns (cube dimensions) the value is made of
    separator: str = ""  # several columns: joined with it
    realtime_column: str | None = None  # the raw/derived event column Realtime groups by

    @property
    def realtime(self) -> bool:
        return self.realtime_column is not None

    def info(self) -> DimensionInfo:
        return DimensionInfo(self.api_name, self.ui_name, self.description, self.category, self.realtime)


class MetricKind(StrEnum):
    COUNTER = "counter"
    SKETCH = "sketch"
    RATIO = "ratio"


@dataclass(frozen=True)
class MetricDef:
    api_name: str
    ui_name: str
    description: str
    category: str
    type: MetricType
    kind: MetricKind
    field: str = ""  # COUNTER/SKETCH: the `Metrics` field; RATIO: the numerator field
    denominator: str = ""  # RATIO only
    scale: float = 1.0  # RATIO only: multiplies numerator / denominator
    expression: str = ""
    realtime: bool = False

    def info(self) -> MetricInfo:
        return MetricInfo(
            self.api_name, self.ui_name, self.description, self.category, self.type, self.expression, self.realtime
        )


MINUTES_AGO: Final = "minutesAgo"
TIME_DIMENSIONS: Final = ("date", "dateHour", "week", "month")

_DIMENSIONS: Final = (
    DimensionDef("date", "Date", "The local date of the merchant's zone, YYYYMMDD.", "Time", DimKind.TIME),
    DimensionDef("dateHour", "Date + hour", "The local date and hour, YYYYMMDDHH.", "Time", DimKind.TIME),
    DimensionDef(
        "week", "ISO week", "ISO year and week (weeks start on Monday), YYYYWW (GA4 isoYearIsoWeek).", "Time",
        DimKind.TIME,
    ),
    DimensionDef("month", "Month", "The local year and month, YYYYMM (GA4 yearMonth).", "Time", DimKind.TIME),
    DimensionDef(
        "country", "Country", "Country (English name) of the session, from the IP.", "Geography", DimKind.ROLLUP,
        (f.COUNTRY_NAME,),
    ),
    DimensionDef(
        "region", "Region", "Region (state, province) of the session, from the IP.", "Geography", DimKind.ROLLUP,
        (f.REGION,),
    ),
    DimensionDef("city", "City", "City of the session, from the IP.", "Geography", DimKind.ROLLUP, (f.CITY,)),
    DimensionDef(
        "deviceCategory", "Device category", "desktop, mobile or tablet, from the user agent.", "Platform / device",
        DimKind.ROLLUP, (f.DEVICE_CATEGORY,), realtime_column=f.DEVICE_CATEGORY,
    ),
    DimensionDef(
        "browser", "Browser", "Browser family, from the user agent.", "Platform / device", DimKind.ROLLUP,
        (f.BROWSER,), realtime_column=f.BROWSER,
    ),
    DimensionDef(
        "operatingSystem", "Operating system", "Operating system family, from the user agent.", "Platform / device",
        DimKind.ROLLUP, (f.OS,), realtime_column=f.OS,
    ),
    DimensionDef(
        "pagePath", "Page path", "The path of the page (no host, no query string).", "Page / screen",
        DimKind.ROLLUP, (f.PAGE_PATH,), realtime_column=f.PAGE_PATH,
    ),
    DimensionDef(
        "sessionSource", "Session source", "Source of the session (utm_source or referrer host).",
        "Traffic source", DimKind.ROLLUP, (f.SOURCE,),
    ),
    DimensionDef(
        "sessionMedium", "Session medium", "Medium of the session (utm_medium, organic, referral, (none)).",
        "Traffic source", DimKind.ROLLUP, (f.MEDIUM,),
    ),
    DimensionDef(
        "sessionSourceMedium", "Session source / medium", "Source and medium of the session: '<source> / <medium>'.",
        "Traffic source", DimKind.ROLLUP, (f.SOURCE, f.MEDIUM), separator=" / ",
    ),
    DimensionDef(
        "sessionDefaultChannelGroup", "Session default channel group", "GA4 default channel group of the session.",
        "Traffic source", DimKind.ROLLUP, (f.CHANNEL,),
    ),
    DimensionDef(
        "eventName", "Event name", "The name of the event.", "Event", DimKind.ROLLUP, (f.NAME,),
        realtime_column=f.NAME,
    ),
    DimensionDef(
        MINUTES_AGO, "Realtime minutes ago", "Minutes since the event, 00 = the current minute (Realtime only).",
        "Time", DimKind.REALTIME_ONLY, realtime_column=MINUTES_AGO,
    ),
)  # fmt: skip

_METRICS: Final = (
    MetricDef(
        "activeUsers", "Active users", "Distinct users (client ids) with an event; HLL estimate (equals totalUsers).",
        "User", MetricType.INTEGER, MetricKind.SKETCH, "users", realtime=True,
    ),
    MetricDef(
        "totalUsers", "Total users", "Distinct users (client ids) with an event; HyperLogLog estimate.", "User",
        MetricType.INTEGER, MetricKind.SKETCH, "users",
    ),
    MetricDef(
        "newUsers", "New users", "Distinct users with a first_visit event; HyperLogLog estimate.", "User",
        MetricType.INTEGER, MetricKind.SKETCH, "new_users",
    ),
    MetricDef("sessions", "Sessions", "Sessions started in the range.", "Session", MetricType.INTEGER,
              MetricKind.COUNTER, "sessions"),
    MetricDef(
        "engagedSessions", "Engaged sessions", "Sessions lasting >= 10 s, or with >= 2 page views or a key event.",
        "Session", MetricType.INTEGER, MetricKind.COUNTER, "engaged_sessions",
    ),
    MetricDef(
        "engagementRate", "Engagement rate", "Engaged sessions / sessions (0..1).", "Session", MetricType.FLOAT,
        MetricKind.RATIO, "engaged_sessions", "sessions", expression="engagedSessions / sessions",
    ),
    MetricDef(
        "bounceRate", "Bounce rate", "Sessions that were not engaged / sessions (0..1).", "Session",
        MetricType.FLOAT, MetricKind.RATIO, "bounces", "sessions", expression="bounces / sessions",
    ),
    MetricDef("bounces", "Bounces", "Sessions that were not engaged.", "Session", MetricType.INTEGER,
              MetricKind.COUNTER, "bounces"),
    MetricDef(
        "averageSessionDuration", "Average session duration", "Mean session duration in seconds.", "Session",
        MetricType.SECONDS, MetricKind.RATIO, "session_duration_ms", "sessions", 0.001,
        "sessionDuration / sessions",
    ),
    MetricDef(
        "screenPageViews", "Views", "page_view events.", "Page / screen", MetricType.INTEGER, MetricKind.COUNTER,
        "pageviews", realtime=True,
    ),
    MetricDef("eventCount", "Event count", "Events (bots excluded).", "Event", MetricType.INTEGER,
              MetricKind.COUNTER, "events", realtime=True),
    MetricDef(
        "keyEvents", "Key events", "Events whose name is a configured key event (e.g. purchase).", "Event",
        MetricType.INTEGER, MetricKind.COUNTER, "key_events", realtime=True,
    ),
    MetricDef(
        "totalRevenue", "Total revenue", "Revenue of events in the merchant's currency (other currencies are not"
        " converted).", "Revenue", MetricType.CURRENCY, MetricKind.COUNTER, "revenue_micros",
    ),
)  # fmt: skip

DIMENSIONS: Final[Mapping[str, DimensionDef]] = {d.api_name: d for d in _DIMENSIONS}
METRICS: Final[Mapping[str, MetricDef]] = {m.api_name: m for m in _METRICS}
REPORT_DIMENSIONS: Final = tuple(d.api_name for d in _DIMENSIONS if d.kind is not DimKind.REALTIME_ONLY)
REALTIME_DIMENSIONS: Final = tuple(d.api_name for d in _DIMENSIONS if d.realtime)
REALTIME_METRICS: Final = tuple(m.api_name for m in _METRICS if m.realtime)
COLUMN_TO_DIMENSION: Final[Mapping[str, str]] = {
    d.columns[0]: d.api_name for d in _DIMENSIONS if d.kind is DimKind.ROLLUP and len(d.columns) == 1
}


def dimension_defs(names: Iterable[str], *, realtime: bool = False, field: str = "dimensions") -> list[DimensionDef]:
    """The definitions of `names`; raises UnknownName naming every unknown one and listing the valid ones."""
    valid = REALTIME_DIMENSIONS if realtime else REPORT_DIMENSIONS
    names = list(names)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UnknownName("dimension", unknown, valid, field)
    return [DIMENSIONS[n] for n in names]


def metric_defs(names: Iterable[str], *, realtime: bool = False, field: str = "metrics") -> list[MetricDef]:
    """The definitions of `names`; raises UnknownName naming every unknown one and listing the valid ones."""
    valid = REALTIME_METRICS if realtime else tuple(METRICS)
    names = list(names)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UnknownName("metric", unknown, valid, field)
    return [METRICS[n] for n in names]
