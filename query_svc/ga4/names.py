"""The GA4 Data API names this server answers, and how each maps onto the query engine. Pure.

GA4 names mean what GA4 documents; where the engine's own name differs, the GA4 name is mapped:

| GA4 dimension | answered by |
|---|---|
| date, dateHour | the engine's `date` / `dateHour` (same labels: YYYYMMDD, YYYYMMDDHH) |
| yearMonth, isoYearIsoWeek | the engine's `month` (YYYYMM) / `week` (ISO year + ISO week, YYYYWW) |
| year, month, week, yearWeek, isoWeek, isoYear | calendar runs (`query_svc.ga4.calendar`): one engine report per run |
| every other one (country, region, city, deviceCategory, browser, operatingSystem, pagePath, ...) | the engine's |
| minutesAgo (realtime only) | the engine's realtime `minutesAgo` |

GA4's `month` is the month number ("01".."12") and `week` the Sunday-first week of the year ("01".."53"), not
the engine's YYYYMM / ISO-week labels — hence the mapping. Metrics keep their names (the engine's are GA4's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from query_svc.catalog import DIMENSIONS, METRICS, REALTIME_DIMENSIONS, REALTIME_METRICS, DimKind
from query_svc.errors import InvalidQuery, UnknownName
from query_svc.ga4.calendar import LABELS

DATE_RANGE: Final = "dateRange"  # the dimension GA4 adds when a report has several date ranges

_GA4_NAME_OF: Final = {"week": "isoYearIsoWeek", "month": "yearMonth"}
ENGINE_NAME: Final[Mapping[str, str]] = {
    _GA4_NAME_OF.get(name, name): name for name, d in DIMENSIONS.items() if d.kind is not DimKind.REALTIME_ONLY
}
"""GA4 dimension -> engine dimension, for every GA4 dimension the engine groups by itself (the engine's `week` and
`month` are reached only as isoYearIsoWeek / yearMonth: GA4's `week` and `month` are calendar dimensions)."""

CALENDAR: Final = tuple(LABELS)
"""GA4 calendar dimensions answered by splitting the range (see `query_svc.ga4.calendar`)."""

REPORT_DIMENSIONS: Final = (*ENGINE_NAME, *CALENDAR)
TIME_DIMENSIONS: Final = frozenset(
    [g for g, e in ENGINE_NAME.items() if DIMENSIONS[e].kind is DimKind.TIME] + list(CALENDAR)
)
"""Dimensions whose values are fixed-width digit strings (numeric order = alphanumeric order)."""
REPORT_METRICS: Final = tuple(METRICS)
REALTIME_DIMENSION_NAMES: Final = tuple(REALTIME_DIMENSIONS)
REALTIME_METRIC_NAMES: Final = tuple(REALTIME_METRICS)


@dataclass(frozen=True)
class Describe:
    ui_name: str
    description: str
    category: str


_OWN: Final[Mapping[str, Describe]] = {
    "yearMonth": Describe("Month", "The combined values of year and month, YYYYMM (e.g. 202601).", "Time"),
    "isoYearIsoWeek": Describe(
        "ISO week of ISO year", "The combined ISO year and ISO week (weeks start on Monday), YYYYWW (e.g. 202605).",
        "Time",
    ),
    "year": Describe("Year", "The four-digit year of the local date (e.g. 2026).", "Time"),
    "month": Describe("Month", "The month of the local date, two digits 01 to 12.", "Time"),
    "week": Describe(
        "Week", "The week of the year, two digits 01 to 53; weeks start on Sunday and January 1st is in week 01.",
        "Time",
    ),
    "yearWeek": Describe("Year week", "The combined values of year and week (Sunday first), YYYYWW.", "Time"),
    "isoWeek": Describe("ISO week of the year", "The ISO week number (weeks start on Monday), 01 to 53.", "Time"),
    "isoYear": Describe("ISO year", "The ISO week-numbering year of the local date.", "Time"),
}  # fmt: skip


def describe_dimension(name: str) -> Describe:
    """UI name, description and category of a GA4 report dimension."""
    own = _OWN.get(name)
    if own is not None:
        return own
    d = DIMENSIONS[ENGINE_NAME.get(name, name)]
    return Describe(d.ui_name, d.description, d.category)


def describe_metric(name: str) -> Describe:
    m = METRICS[name]
    return Describe(m.ui_name, m.description, m.category)


def check_names(names: Iterable[str], valid: Iterable[str], kind: str, field: str) -> tuple[str, ...]:
    """`names` if every one is known and none repeats; raises UnknownName / InvalidQuery naming the field."""
    names = tuple(names)
    valid = tuple(valid)
    unknown = [n for n in names if n not in valid]
    if unknown:
        hint = ""
        if kind == "dimension" and DATE_RANGE in unknown:
            hint = f" ({DATE_RANGE} is added to the response by itself when the request has several date_ranges)"
        error = UnknownName(kind, unknown, valid, field)
        error.args = (f"{field}: {error}{hint}",)
        raise error
    seen: set[str] = set()
    repeated = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if repeated:
        raise InvalidQuery(f"{field}: {kind} {repeated[0]!r} is requested twice", field)
    return names
