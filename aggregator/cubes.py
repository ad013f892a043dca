"""Cubes: which dimension combinations the aggregator rolls up, as data (no logic depends on a cube's name).

A cube is a name (the `cube` of `RollupKey`), a tuple of dimensions (event-frame column names, in the order of
`RollupKey.dims`; `()` is the `total` cube) and a scope that says how session metrics are attributed:

SESSION scope (the dimensions are session attributes: geo, device/browser/os, source/medium, channel and pairs of
them; also `total`): a session takes the dimension values of its FIRST event (ordered by time, then event id)
and is counted once, under those values, in the window where it starts: `sessions`, `engaged_sessions`,
`bounces` and `session_duration_ms` of a value sum over the sessions whose first event has that value.
Summing a session-scoped cube's sessions over its values gives the total cube's sessions.

EVENT scope (the dimensions can change within a session: page, event name, page x device): `sessions` of a
value is the number of distinct sessions having at least one event with that value, attributed to the
window where the session starts (so an hour row may have sessions but no events: a session that started in
that hour reached the page only in a later hour); `engaged_sessions` / `bounces` count the engaged / not-engaged
sessions among those, and `session_duration_ms` is the sum of the full durations of those sessions. A session
that visits several pages counts once for each, so these do not sum to the total.

In both scopes the event metrics (events, pageviews, key_events, revenue_micros, users, new_users) are
attributed by each event's own dimension values, in the window of the event.

High cardinality: `compute_day` keeps at most `max_values` (default 5,000) values per (window, cube), ranked by
events (descending, ties by the dimension values ascending); all other values of that window become one value
whose every dimension is "(other)" (GA4 does the same). See `aggregator.compute`.

Naming: cube names must match the storage bucket policy (`gnomon.rollups.buckets.DEFAULT_WIDE_CUBES`: total,
country, device, browser, os, country_device are "wide", i.e. at most ~1k values per window; every other cube is
"narrow"). A query picks the cube whose dimension set equals the dimensions it groups or filters by
(`CubeSet.find`); coarser answers are never derived from a finer cube, because capped values ("(other)") and
event-scoped session counts do not sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from aggregator import frame as f

MAX_CUBE_NAME_CHARS: Final = 100  # gnomon.rollups.model.MAX_CUBE_CHARS


class Scope(StrEnum):
    """How session metrics of a cube are attributed (see the module docstring)."""

    SESSION = "session"
    EVENT = "event"


SESSION_DIMENSIONS: Final = frozenset(
    {
        f.COUNTRY,
        f.COUNTRY_NAME,
        f.REGION,
        f.CITY,
        f.DEVICE_CATEGORY,
        f.BROWSER,
        f.OS,
        f.SOURCE,
        f.MEDIUM,
        f.SOURCE_MEDIUM,
        f.CHANNEL,
        f.LOCALE,
        f.UTM_CAMPAIGN,
    }
)
"""Dimensions that describe the visit (constant or nearly so within a session): session scope by default."""
EVENT_DIMENSIONS: Final = frozenset({f.PAGE_PATH, f.PAGE_TITLE, f.NAME})
"""Dimensions that change within a session: event scope by default."""
DIMENSIONS: Final = SESSION_DIMENSIONS | EVENT_DIMENSIONS


def default_scope(dimensions: Iterable[str]) -> Scope:
    """EVENT when any dimension is an event dimension (page, event name), else SESSION."""
    return Scope.EVENT if any(d in EVENT_DIMENSIONS for d in dimensions) else Scope.SESSION


@dataclass(frozen=True)
class Cube:
    """A named dimension combination. Raises ValueError for an invalid name or dimensions."""

    name: str
    dimensions: tuple[str, ...]
    scope: Scope

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name) <= MAX_CUBE_NAME_CHARS:
            raise ValueError(f"cube name must be 1-{MAX_CUBE_NAME_CHARS} characters, got {self.name!r}")
        if not isinstance(self.dimensions, tuple) or not all(isinstance(d, str) and d for d in self.dimensions):
            raise ValueError(f"cube {self.name!r}: dimensions must be a tuple of column names")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError(f"cube {self.name!r} repeats a dimension: {self.dimensions}")
        unknown = [d for d in self.dimensions if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"cube {self.name!r}: unknown dimension(s) {unknown}; known: {sorted(DIMENSIONS)}")
        if not isinstance(self.scope, Scope):
            object.__setattr__(self, "scope", Scope(self.scope))

    @classmethod
    def of(cls, name: str, *dimensions: str) -> Cube:
        """A cube with the default scope of its dimensions."""
        return cls(name, tuple(dimensions), default_scope(dimensions))


@dataclass(frozen=True)
class CubeSet:
    """An ordered set of cubes with unique names and unique dimension sets. Raises ValueError otherwise."""

    cubes: tuple[Cube, ...]
    _by_name: dict[str, Cube] = field(init=False, repr=False, compare=False)
    _by_dims: dict[frozenset[str], Cube] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Cube] = {}
        by_dims: dict[frozenset[str], Cube] = {}
        for cube in self.cubes:
            if cube.name in by_name:
                raise ValueError(f"cube name {cube.name!r} is used twice")
            key = frozenset(cube.dimensions)
            if key in by_dims:
                raise ValueError(f"cubes {by_dims[key].name!r} and {cube.name!r} have the same dimensions")
            by_name[cube.name] = cube
            by_dims[key] = cube
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_dims", by_dims)

    def __iter__(self) -> Iterator[Cube]:
        return iter(self.cubes)

    def __len__(self) -> int:
        return len(self.cubes)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(cube.name for cube in self.cubes)

    def get(self, name: str) -> Cube:
        """The cube called `name`; raises KeyError naming the known cubes."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown cube {name!r}; known: {list(self._by_name)}") from None

    def find(self, dimensions: Iterable[str]) -> Cube | None:
        """The cube that answers a query grouping and/or filtering by exactly these dimensions (any order), or
        None. `find(())` is the total cube. The cube's `dimensions` give the order of `RollupKey.dims`."""
        return self._by_dims.get(frozenset(dimensions))

    def columns(self) -> frozenset[str]:
        """Every event-frame column some cube groups by."""
        return frozenset(d for cube in self.cubes for d in cube.dimensions)

    def select(self, names: Iterable[str]) -> CubeSet:
        """The subset of cubes called `names` (in this set's order); raises KeyError for an unknown name."""
        wanted = set(names)
        for name in wanted:
            self.get(name)
        return CubeSet(tuple(cube for cube in self.cubes if cube.name in wanted))

    def describe(self) -> list[dict[str, str | list[str]]]:
        """JSON-ready listing for metadata/compatibility endpoints: name, dimensions (in dims order), scope."""
        return [{"name": c.name, "dimensions": list(c.dimensions), "scope": c.scope.value} for c in self.cubes]


DEFAULT_CUBES: Final = CubeSet(
    (
        Cube.of("total"),
        Cube.of("page", f.PAGE_PATH),
        Cube.of("country", f.COUNTRY_NAME),
        Cube.of("region", f.COUNTRY_NAME, f.REGION),
        Cube.of("city", f.COUNTRY_NAME, f.REGION, f.CITY),
        Cube.of("device", f.DEVICE_CATEGORY),
        Cube.of("browser", f.BROWSER),
        Cube.of("os", f.OS),
        Cube.of("source_medium", f.SOURCE, f.MEDIUM),
        Cube.of("channel", f.CHANNEL),
        Cube.of("event_name", f.NAME),
        Cube.of("country_device", f.COUNTRY_NAME, f.DEVICE_CATEGORY),
        Cube.of("channel_device", f.CHANNEL, f.DEVICE_CATEGORY),
        Cube.of("page_device", f.PAGE_PATH, f.DEVICE_CATEGORY),
    )
)
"""The cubes of processing version 1 (page, event_name and page_device are event-scoped, the rest session)."""
