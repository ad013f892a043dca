"""Rollups: windowed aggregates per merchant, cube, window, dimension value and processing version.

- `model`: Grain, RollupKey, Metrics, RollupRow and the window helpers; `sketches`: HLL user sketches.
- `port`: the RollupStore protocol; `versions`: the VersionRegistry protocol (active processing versions).
- Adapters: `sqlite_store`/`sqlite_versions` (embedded, one SQLite file) and `cql_store`/`cql_versions`
  (Scylla/Cassandra; schema in `migrations/`, applied by `migrate`). `open_rollup_store(settings)` and
  `open_version_registry(settings)` pick them by engine mode; the CQL driver is imported only when used.
"""

from __future__ import annotations

from gnomon.rollups.errors import MigrationError, RollupError, RollupInvalid, RollupUnavailable
from gnomon.rollups.factory import open_rollup_store, open_version_registry
from gnomon.rollups.model import Grain, Metrics, RollupKey, RollupRow, WindowStamp, day_window, hour_window_start
from gnomon.rollups.port import RollupStore
from gnomon.rollups.sketches import EMPTY_SKETCH, MergedSketch, merge_sketches, sketch_estimate, sketch_of
from gnomon.rollups.versions import DEFAULT_VERSION, VersionBuild, VersionFlip, VersionRegistry, VersionSpan

__all__ = [
    "DEFAULT_VERSION",
    "EMPTY_SKETCH",
    "Grain",
    "MergedSketch",
    "Metrics",
    "MigrationError",
    "RollupError",
    "RollupInvalid",
    "RollupKey",
    "RollupRow",
    "RollupStore",
    "RollupUnavailable",
    "VersionBuild",
    "VersionFlip",
    "VersionRegistry",
    "VersionSpan",
    "WindowStamp",
    "day_window",
    "hour_window_start",
    "merge_sketches",
    "open_rollup_store",
    "open_version_registry",
    "sketch_estimate",
    "sketch_of",
]
