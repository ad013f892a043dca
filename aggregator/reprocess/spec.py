"""What a reprocessing job does: which merchant-local days, which merchants, which version, which part of the log.

The unit of recomputation is the merchant-local day (sessions are cut at local midnight, so a day is closed and
can be rebuilt exactly); a job covers the days first_day..last_day (inclusive) of each merchant, in the
merchant's own zone, and flips exactly that range: [first_day 00:00, last_day + 1 00:00) local.

The log is read by publish time over [log_start, log_end): by default from 24 h (clock skew: a client's event time
may run ahead of the collector's clock; the collector refuses more) before the earliest instant of first_day in
any zone (UTC+14) up to `late_margin` after the latest instant of last_day (UTC-12), capped at now. Events
published later are in the live event store, which the rebuild also reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aggregator.loop_days import day_bounds

EARLY_MARGIN = timedelta(hours=24)
DEFAULT_LATE_MARGIN = timedelta(days=3)
MAX_DAYS = 3660


class SpecInvalid(ValueError):
    """A reprocess request that cannot be run; the message says what to change."""


@dataclass(frozen=True)
class ReprocessSpec:
    """One job's parameters (stored as the job's "spec" item; a resumed job reuses them unchanged)."""

    first_day: date
    last_day: date
    merchants: tuple[str, ...]
    version: int
    log_start: datetime
    log_end: datetime
    who: str
    why: str
    dry_run: bool = False

    @property
    def job_id(self) -> str:
        """Stable for the same days, merchants, version and dry-run flag: re-running the command resumes it."""
        key = "|".join(
            [self.first_day.isoformat(), self.last_day.isoformat(), ",".join(self.merchants), str(self.version)]
            + (["dry-run"] if self.dry_run else [])
        )
        return (
            f"rp-{self.first_day:%Y%m%d}-{self.last_day:%Y%m%d}-v{self.version}-"
            + hashlib.sha256(key.encode()).hexdigest()[:10]
        )

    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]

    def range_of(self, zone: str) -> tuple[datetime, datetime]:
        """The UTC instants the job flips for a merchant in `zone`: [first_day 00:00, last_day + 1 00:00) local."""
        return day_bounds(self.first_day, zone)[0], day_bounds(self.last_day, zone)[1]

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.update(
            first_day=self.first_day.isoformat(),
            last_day=self.last_day.isoformat(),
            merchants=list(self.merchants),
            log_start=self.log_start.isoformat(),
            log_end=self.log_end.isoformat(),
        )
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ReprocessSpec:
        return cls(
            first_day=date.fromisoformat(doc["first_day"]),
            last_day=date.fromisoformat(doc["last_day"]),
            merchants=tuple(doc["merchants"]),
            version=int(doc["version"]),
            log_start=datetime.fromisoformat(doc["log_start"]),
            log_end=datetime.fromisoformat(doc["log_end"]),
            who=str(doc["who"]),
            why=str(doc["why"]),
            dry_run=bool(doc["dry_run"]),
        )


def build_spec(
    *,
    first_day: date,
    last_day: date,
    merchants: Sequence[str],
    version: int,
    who: str,
    why: str,
    now: datetime,
    dry_run: bool = False,
    late_margin: timedelta = DEFAULT_LATE_MARGIN,
    log_start: datetime | None = None,
    log_end: datetime | None = None,
) -> ReprocessSpec:
    """A checked spec with the default log window filled in; raises SpecInvalid naming what is wrong."""
    if last_day < first_day:
        raise SpecInvalid(f"--to {last_day} is before --from {first_day}")
    if (last_day - first_day).days >= MAX_DAYS:
        raise SpecInvalid(f"at most {MAX_DAYS} days per job; split the range")
    if version < 1:
        raise SpecInvalid(f"--version must be >= 1, got {version}")
    if not who.strip() or not why.strip():
        raise SpecInvalid("--who and --why must not be empty (they go into the flip history)")
    if not merchants:
        raise SpecInvalid("no merchant to reprocess: pass --merchant, or create merchants first")
    earliest = datetime.combine(first_day, time(), UTC) - timedelta(hours=14)
    latest = datetime.combine(last_day + timedelta(days=1), time(), UTC) + timedelta(hours=12)
    start = log_start or earliest - EARLY_MARGIN
    end = log_end or min(now, latest + late_margin)
    for name, value in (("--log-from", start), ("--log-to", end)):
        if value.tzinfo is None:
            raise SpecInvalid(f"{name} must carry a time zone (e.g. 2026-03-07T00:00:00+00:00)")
    if start >= end:
        raise SpecInvalid(f"the log window [{start.isoformat()}, {end.isoformat()}) is empty")
    return ReprocessSpec(
        first_day, last_day, tuple(sorted(set(merchants))), version, start.astimezone(UTC), end.astimezone(UTC),
        who.strip(), why.strip(), dry_run,
    )  # fmt: skip
