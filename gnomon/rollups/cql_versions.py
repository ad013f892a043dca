"""VersionRegistry adapter over Scylla/Cassandra: tables `processing_version_flips` (migration 0002) and
`processing_version_builds` (migration 0003).

One partition per merchant, clustered by (flipped_at, flip_id): `history` and every resolution are one
single-partition read; `set_active` is one insert (no LWT: flips from two operators at once are both kept and
ordered by (flipped_at, flip_id)), followed by a data-version bump of the merchant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gnomon.rollups.cql_engine import CqlEngine, utc
from gnomon.rollups.model import require_name, require_utc, utc_now_ms
from gnomon.rollups.versions import (
    Clock,
    FlipClock,
    VersionBuild,
    VersionFlip,
    VersionSpan,
    in_use_between,
    spans_between,
    validate_build,
    validate_flip,
    version_at,
)
from gnomon.settings import CqlSettings


class CqlVersionRegistry:
    """VersionRegistry over a `CqlEngine`; thread-safe, every call blocks. Raises RollupUnavailable for
    driver failures. `close()` shuts the engine down only when the registry owns it (`connect`)."""

    def __init__(self, engine: CqlEngine, *, owns_engine: bool = False, clock: Clock = utc_now_ms) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._stamps = FlipClock(clock)
        self._insert = engine.prepare(
            "INSERT INTO processing_version_flips"
            " (merchant_id, flipped_at, flip_id, range_start, range_end, version, who, why)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._history = engine.prepare(
            "SELECT flipped_at, flip_id, range_start, range_end, version, who, why"
            " FROM processing_version_flips WHERE merchant_id = ?"
        )
        self._reserve = engine.prepare(
            "INSERT INTO processing_version_builds (merchant_id, job_id, range_start, range_end, version)"
            " VALUES (?, ?, ?, ?, ?)"
        )
        self._builds = engine.prepare(
            "SELECT job_id, range_start, range_end, version FROM processing_version_builds WHERE merchant_id = ?"
        )

    @classmethod
    def connect(cls, cql: CqlSettings, *, keyspace: str | None = None, **options: Any) -> CqlVersionRegistry:
        """Open an engine (migrating the schema) and a registry owning it."""
        return cls(CqlEngine(cql, keyspace=keyspace), owns_engine=True, **options)

    def history(self, merchant_id: str) -> list[VersionFlip]:
        require_name(merchant_id, "merchant_id")
        with self._engine.errors("version history"):
            rows = self._engine.execute(self._history, (merchant_id,))
        return [VersionFlip(merchant_id, utc(r[2]), utc(r[3]), r[4], r[5], r[6], utc(r[0]), r[1]) for r in rows]

    def active_version(self, merchant_id: str, at: datetime) -> int:
        instant = require_utc(at, "at")
        return version_at(self.history(merchant_id), instant)

    def active_spans(self, merchant_id: str, start: datetime, end: datetime) -> list[VersionSpan]:
        s, e = require_utc(start, "start"), require_utc(end, "end")
        return spans_between(self.history(merchant_id), s, e)

    def set_active(
        self, merchant_id: str, start: datetime, end: datetime, version: int, who: str, why: str
    ) -> VersionFlip:
        req = validate_flip(merchant_id, start, end, version, who, why)
        flipped_at, flip_id = self._stamps.stamp()
        flip = VersionFlip(req.merchant_id, req.start, req.end, req.version, req.who, req.why, flipped_at, flip_id)
        with self._engine.errors("version set_active"):
            self._engine.execute(
                self._insert,
                (flip.merchant_id, flipped_at, flip_id, flip.start, flip.end, flip.version, flip.who, flip.why),
            )
            self._engine.bump_data_versions([flip.merchant_id])
        return flip

    def reserve(self, merchant_id: str, start: datetime, end: datetime, version: int, job_id: str) -> VersionBuild:
        build = validate_build(merchant_id, start, end, version, job_id)
        with self._engine.errors("version reserve"):
            self._engine.execute(
                self._reserve, (build.merchant_id, build.job_id, build.start, build.end, build.version)
            )
        return build

    def builds(self, merchant_id: str) -> list[VersionBuild]:
        """Every reservation of the merchant."""
        require_name(merchant_id, "merchant_id")
        with self._engine.errors("version builds"):
            rows = self._engine.execute(self._builds, (merchant_id,))
        return [VersionBuild(merchant_id, utc(r[1]), utc(r[2]), r[3], r[0]) for r in rows]

    def versions_in_use(self, merchant_id: str, start: datetime, end: datetime) -> tuple[int, ...]:
        return in_use_between(self.history(merchant_id), self.builds(merchant_id), start, end)

    def close(self) -> None:
        if self._owns_engine:
            self._engine.close()
