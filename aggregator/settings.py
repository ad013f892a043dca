"""The aggregator's settings: one frozen object built at start-up from `GNOMON_*` variables and CLI flags.

| variable | default | meaning |
|---|---|---|
| GNOMON_AGGREGATOR_GROUP | aggregator | consumer group on the events stream (also names the saved watermark) |
| GNOMON_AGGREGATOR_MAX_RECORDS | 2000 | log records (collector batches) per cycle at most |
| GNOMON_AGGREGATOR_FLUSH_MS | 2000 | a cycle collects records for at most this long before processing them |
| GNOMON_AGGREGATOR_LATENESS_S | 300 | allowed lateness: a window closes once its end + this <= the watermark |
| GNOMON_AGGREGATOR_IDLE_WATERMARK | 1 | drained log: watermark := wall clock (0: only events move it) |
| GNOMON_AGGREGATOR_KEY_EVENTS | purchase | comma-separated event names counted as key events |
| GNOMON_AGGREGATOR_TASK_EVENTS | 200000 | Dask task sizing: recomputed events per task, at least |
| GNOMON_AGGREGATOR_TOPIC_SUFFIX | (none) | suffix of the Pulsar topics (isolated test runs) |
| GNOMON_AGGREGATOR_CRASH_AT | (none) | TEST HOOK `point:n`: SIGKILL at the n-th arrival at `point` |

Crash points (`CrashPoint`), for the crash-recovery tests only: `after_upsert` (events stored, no rollup written),
`mid_write` (inside a Dask worker, after the first rollup window of a merchant-day is written; kills the
aggregator's whole process group), `after_write` (every rollup written, records not committed), `during_close`
(in a cycle that closes windows: rows written, day marks and watermark not yet saved), `after_commit`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gnomon.settings import CommonSettings, EnvReader, SettingsError
from gnomon.telemetry import TelemetrySettings

SERVICE_NAME = "gnomon-aggregator"
DEFAULT_GROUP = "aggregator"


class CrashPoint(StrEnum):
    """Where the GNOMON_AGGREGATOR_CRASH_AT test hook may kill the aggregator."""

    AFTER_UPSERT = "after_upsert"
    MID_WRITE = "mid_write"
    AFTER_WRITE = "after_write"
    DURING_CLOSE = "during_close"
    AFTER_COMMIT = "after_commit"


@dataclass(frozen=True)
class CrashAt:
    """Test hook: SIGKILL at the `count`-th time (per process) `point` is reached."""

    point: CrashPoint
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> CrashAt:
        """`point` or `point:n`; raises SettingsError naming the accepted points."""
        name, _, count = text.strip().partition(":")
        try:
            point = CrashPoint(name)
        except ValueError:
            allowed = ", ".join(p.value for p in CrashPoint)
            raise SettingsError(f"GNOMON_AGGREGATOR_CRASH_AT={text!r}: the point must be one of {allowed}") from None
        if count and (not count.isdigit() or int(count) < 1):
            raise SettingsError(f"GNOMON_AGGREGATOR_CRASH_AT={text!r}: the count must be a positive integer")
        return cls(point, int(count) if count else 1)


class CrashHook:
    """Counts arrivals at crash points and SIGKILLs at the configured one (no-op without configuration)."""

    def __init__(self, crash_at: CrashAt | None, *, whole_group: bool = False) -> None:
        self._crash_at = crash_at
        self._whole_group = whole_group
        self._seen = 0

    def reached(self, point: CrashPoint) -> None:
        if self._crash_at is None or self._crash_at.point is not point:
            return
        self._seen += 1
        if self._seen < self._crash_at.count:
            return
        if self._whole_group:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class AggregatorSettings:
    """Everything the aggregator process needs; built by `from_env` (and CLI flags through `dataclasses.replace`)."""

    common: CommonSettings
    group: str = DEFAULT_GROUP
    max_records: int = 2000
    flush_interval_s: float = 2.0
    allowed_lateness_s: float = 300.0
    idle_watermark: bool = True
    key_events: frozenset[str] = frozenset({"purchase"})
    task_events: int = 200_000
    topic_suffix: str = ""
    merchant_retry_s: float = 60.0  # how long an unknown merchant id is remembered as unknown
    fingerprint_days: int = 20_000  # merchant-days whose written windows are remembered (~6 KB each)
    crash_at: CrashAt | None = None
    telemetry: TelemetrySettings = field(default_factory=lambda: TelemetrySettings(service_name=SERVICE_NAME))

    def __post_init__(self) -> None:
        if self.max_records < 1:
            raise SettingsError("the aggregator needs max_records >= 1 (GNOMON_AGGREGATOR_MAX_RECORDS)")
        if not 0.01 <= self.flush_interval_s <= 3600:
            raise SettingsError("the flush interval must be between 10 ms and 1 h (GNOMON_AGGREGATOR_FLUSH_MS)")
        if not 0 <= self.allowed_lateness_s <= 7 * 86_400:
            raise SettingsError("the allowed lateness must be between 0 and 7 days (GNOMON_AGGREGATOR_LATENESS_S)")
        if self.task_events < 1:
            raise SettingsError("GNOMON_AGGREGATOR_TASK_EVENTS must be >= 1")

    @property
    def lateness_us(self) -> int:
        return int(self.allowed_lateness_s * 1_000_000)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, common: CommonSettings | None = None) -> AggregatorSettings:
        """Build from `GNOMON_*` variables; raises SettingsError naming the variable on a bad value."""
        environ = os.environ if env is None else env
        r = EnvReader(environ)
        idle = r.text("AGGREGATOR_IDLE_WATERMARK", "1").lower()
        if idle not in {"0", "1", "true", "false", "yes", "no"}:
            raise SettingsError(f"GNOMON_AGGREGATOR_IDLE_WATERMARK={idle!r} must be 1 or 0")
        crash = r.optional("AGGREGATOR_CRASH_AT")
        keys = frozenset(k.strip() for k in r.text("AGGREGATOR_KEY_EVENTS", "purchase").split(",") if k.strip())
        return cls(
            common=common or CommonSettings.from_env(environ),
            group=r.text("AGGREGATOR_GROUP", DEFAULT_GROUP),
            max_records=r.integer("AGGREGATOR_MAX_RECORDS", 2000, minimum=1, maximum=1_000_000),
            flush_interval_s=r.integer("AGGREGATOR_FLUSH_MS", 2000, minimum=10, maximum=3_600_000) / 1000,
            allowed_lateness_s=float(r.integer("AGGREGATOR_LATENESS_S", 300, minimum=0, maximum=7 * 86_400)),
            idle_watermark=idle in {"1", "true", "yes"},
            key_events=keys,
            task_events=r.integer("AGGREGATOR_TASK_EVENTS", 200_000, minimum=1, maximum=10**9),
            topic_suffix=r.text("AGGREGATOR_TOPIC_SUFFIX", ""),
            crash_at=CrashAt.parse(crash) if crash else None,
            telemetry=TelemetrySettings.from_env(SERVICE_NAME, environ),
        )
