"""The aggregator's OpenTelemetry instruments (meter `gnomon.aggregator`). Recorded once per cycle, never per event.

| instrument | kind | meaning |
|---|---|---|
| gnomon.aggregator.events | counter | events decoded and stored (after dropping unknown merchants) |
| gnomon.aggregator.events_per_second | gauge | events of the last cycle / its duration |
| gnomon.aggregator.consumer.lag | gauge | uncommitted records (`LogConsumer.lag`, sampled per cycle) |
| gnomon.aggregator.freshness | histogram + gauge | now - received time of the newest event just written |
| gnomon.aggregator.window.closes | counter | windows written final for the first time since they were provisional |
| gnomon.aggregator.duplicates.dropped | counter | repeated (merchant, day, event_id) dropped within a cycle |
| gnomon.aggregator.unknown_merchant.events | counter | events skipped because their merchant is unknown |
| gnomon.aggregator.undecodable.records | counter | log records that are not a LoggedBatch (skipped, committed) |
| gnomon.aggregator.merchant_days | counter | merchant-days recomputed, by reason (events / close) |
| gnomon.aggregator.windows.written | counter | rollup windows replaced (unchanged windows are skipped) |
| gnomon.aggregator.cycle.duration | histogram | seconds per cycle, from the first poll to the commit |
| gnomon.aggregator.dask.overhead | gauge | share of the last task round trip not spent in the longest task |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.metrics import CallbackOptions, Observation

from gnomon.telemetry import Telemetry

METER_NAME = "gnomon.aggregator"


@dataclass
class CycleStats:
    """What one cycle did; `AggregatorMetrics.cycle_done` records it."""

    records: int = 0
    events: int = 0
    duplicates: int = 0
    unknown_events: int = 0
    undecodable: int = 0
    days_for_events: int = 0
    days_for_close: int = 0
    windows_written: int = 0
    window_closes: int = 0
    seconds: float = 0.0
    freshness_s: float | None = None
    dask_overhead: float | None = None  # share of the task round trip outside the longest task
    tasks: int = 0
    cache_hits: int = 0  # merchant-days the workers took from their DayCache instead of the event store
    stage_s: dict[str, float] = field(default_factory=dict)  # ingest, upsert, tasks, finish (loop process)
    task_stage_s: dict[str, float] = field(default_factory=dict)  # load, derive, compute, write (summed over tasks)


class AggregatorMetrics:
    """Instruments of one aggregator process; gauges report the last cycle's values."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter(METER_NAME)
        self._lag = 0
        self._rate = 0.0
        self._freshness: float | None = None
        self._overhead: float | None = None
        self._events = meter.create_counter(
            "gnomon.aggregator.events", unit="{event}", description="events decoded and stored"
        )
        self._duplicates = meter.create_counter(
            "gnomon.aggregator.duplicates.dropped",
            unit="{event}",
            description="repeated (merchant, day, event_id) dropped within a cycle",
        )
        self._unknown = meter.create_counter(
            "gnomon.aggregator.unknown_merchant.events",
            unit="{event}",
            description="events skipped because their merchant is unknown",
        )
        self._undecodable = meter.create_counter(
            "gnomon.aggregator.undecodable.records",
            unit="{record}",
            description="log records that are not a gnomon.v1.LoggedBatch (skipped)",
        )
        self._closes = meter.create_counter(
            "gnomon.aggregator.window.closes", unit="{window}", description="windows written final after being open"
        )
        self._days = meter.create_counter(
            "gnomon.aggregator.merchant_days", unit="{day}", description="merchant-days recomputed, by reason"
        )
        self._windows = meter.create_counter(
            "gnomon.aggregator.windows.written", unit="{window}", description="rollup windows replaced"
        )
        self._cycle = meter.create_histogram(
            "gnomon.aggregator.cycle.duration", unit="s", description="one poll-store-compute-write-commit cycle"
        )
        self._freshness_hist = meter.create_histogram(
            "gnomon.aggregator.freshness",
            unit="s",
            description="now - received time of the newest event whose rollups were written",
        )
        meter.create_observable_gauge(
            "gnomon.aggregator.consumer.lag",
            callbacks=[self._observe_lag],
            unit="{record}",
            description="records of the events stream the aggregator group has not committed",
        )
        meter.create_observable_gauge(
            "gnomon.aggregator.events_per_second",
            callbacks=[self._observe_rate],
            unit="{event}/s",
            description="events of the last cycle divided by its duration",
        )
        meter.create_observable_gauge(
            "gnomon.aggregator.freshness.last",
            callbacks=[self._observe_freshness],
            unit="s",
            description="freshness of the last cycle that wrote rows",
        )
        meter.create_observable_gauge(
            "gnomon.aggregator.dask.overhead",
            callbacks=[self._observe_overhead],
            unit="1",
            description="share of task wall time spent outside the tasks (scheduling, transfer)",
        )

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._lag)]

    def _observe_rate(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._rate)]

    def _observe_freshness(self, options: CallbackOptions) -> Iterable[Observation]:
        return [] if self._freshness is None else [Observation(self._freshness)]

    def _observe_overhead(self, options: CallbackOptions) -> Iterable[Observation]:
        return [] if self._overhead is None else [Observation(self._overhead)]

    def lag(self, records: int) -> None:
        """The consumer lag sampled by the loop thread (consumers are not thread-safe: never sampled here)."""
        self._lag = records

    def cycle_done(self, stats: CycleStats) -> None:
        if stats.events:
            self._events.add(stats.events)
        if stats.duplicates:
            self._duplicates.add(stats.duplicates)
        if stats.unknown_events:
            self._unknown.add(stats.unknown_events)
        if stats.undecodable:
            self._undecodable.add(stats.undecodable)
        if stats.window_closes:
            self._closes.add(stats.window_closes)
        if stats.days_for_events:
            self._days.add(stats.days_for_events, {"reason": "events"})
        if stats.days_for_close:
            self._days.add(stats.days_for_close, {"reason": "close"})
        if stats.windows_written:
            self._windows.add(stats.windows_written)
        self._cycle.record(stats.seconds)
        self._rate = stats.events / stats.seconds if stats.seconds > 0 else 0.0
        if stats.freshness_s is not None:
            self._freshness = stats.freshness_s
            self._freshness_hist.record(stats.freshness_s)
        if stats.dask_overhead is not None:
            self._overhead = stats.dask_overhead
