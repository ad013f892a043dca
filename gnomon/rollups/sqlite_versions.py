"""Embedded VersionRegistry adapter: the `processing_version_flips` table of the rollup SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from gnomon.rollups.errors import RollupUnavailable
from gnomon.rollups.model import require_name, require_utc, utc_now_ms
from gnomon.rollups.sqlite_db import bump_data_versions, from_ms, open_db, to_ms
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

_INSERT = (
    "INSERT INTO processing_version_flips"
    " (merchant_id, flipped_at_ms, flip_id, range_start_ms, range_end_ms, version, who, why)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_HISTORY = (
    "SELECT flipped_at_ms, flip_id, range_start_ms, range_end_ms, version, who, why"
    " FROM processing_version_flips WHERE merchant_id = ? ORDER BY flipped_at_ms, flip_id"
)


_RESERVE = (
    "INSERT OR REPLACE INTO processing_version_builds (merchant_id, job_id, range_start_ms, range_end_ms, version)"
    " VALUES (?, ?, ?, ?, ?)"
)
_BUILDS = "SELECT job_id, range_start_ms, range_end_ms, version FROM processing_version_builds WHERE merchant_id = ?"


class SqliteVersionRegistry:
    """VersionRegistry over the rollup SQLite file; thread-safe, every call blocks."""

    def __init__(self, path: Path, *, clock: Clock = utc_now_ms, synchronous: str = "FULL") -> None:
        self._db = open_db(path, synchronous=synchronous)
        self._stamps = FlipClock(clock)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise RollupUnavailable(f"version registry {self._db.path}: {exc}") from exc

    def history(self, merchant_id: str) -> list[VersionFlip]:
        require_name(merchant_id, "merchant_id")
        with self._errors():
            rows = self._db.reader().execute(_HISTORY, (merchant_id,)).fetchall()
        return [
            VersionFlip(merchant_id, from_ms(r[2]), from_ms(r[3]), r[4], r[5], r[6], from_ms(r[0]), r[1]) for r in rows
        ]

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
        params = (
            flip.merchant_id,
            to_ms(flipped_at),
            flip_id,
            to_ms(flip.start),
            to_ms(flip.end),
            flip.version,
            flip.who,
            flip.why,
        )
        with self._errors(), self._db.transaction() as conn:
            conn.execute(_INSERT, params)
            bump_data_versions(conn, [flip.merchant_id])
        return flip

    def reserve(self, merchant_id: str, start: datetime, end: datetime, version: int, job_id: str) -> VersionBuild:
        build = validate_build(merchant_id, start, end, version, job_id)
        params = (build.merchant_id, build.job_id, to_ms(build.start), to_ms(build.end), build.version)
        with self._errors(), self._db.transaction() as conn:
            conn.execute(_RESERVE, params)
        return build

    def builds(self, merchant_id: str) -> list[VersionBuild]:
        """Every reservation of the merchant."""
        require_name(merchant_id, "merchant_id")
        with self._errors():
            rows = self._db.reader().execute(_BUILDS, (merchant_id,)).fetchall()
        return [VersionBuild(merchant_id, from_ms(r[1]), from_ms(r[2]), r[3], r[0]) for r in rows]

    def versions_in_use(self, merchant_id: str, start: datetime, end: datetime) -> tuple[int, ...]:
        return in_use_between(self.history(merchant_id), self.builds(merchant_id), start, end)

    def close(self) -> None:
        self._db.close()
