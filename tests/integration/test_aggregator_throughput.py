"""Loop throughput: events/s through decode -> event store -> Dask (load_day, derive, compute_day, write) -> commit,
with the real engines of each mode and a Dask LocalCluster. Prints the rate and where the time went; asserts only
that every event was counted (speed on a shared 2-core machine is reported, not gated)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from aggregator.runtime import open_aggregator
from aggregator.settings import AggregatorSettings
from gnomon.rollups import Grain
from gnomon.telemetry import Exporter, TelemetrySettings, setup_telemetry
from tests.integration.test_aggregator_harness import (
    START,
    AggEnv,
    agg_env_fixture,  # noqa: F401 - the agg_env fixture
    batches,
    traffic,
)

MERCHANTS = 8


def test_loop_events_per_second(agg_env: AggEnv) -> None:
    n_per_merchant = 25_000 if agg_env.mode == "embedded" else 6_000
    merchants = {f"tp-{i}": ("Europe/Berlin" if i % 2 else "Asia/Kolkata", "EUR") for i in range(MERCHANTS)}
    agg_env.add_merchants(merchants)
    warm: list[bytes] = []
    payloads: list[bytes] = []
    for seed, merchant_id in enumerate(merchants):
        events = traffic(merchant_id, "EUR", n=n_per_merchant, start=START, span=timedelta(hours=6), seed=seed)
        warm.extend(batches(merchant_id, events[:100], 100))
        payloads.extend(batches(merchant_id, events[100:], 500))
    agg_env.publish(warm)
    settings = AggregatorSettings(
        common=agg_env.common, flush_interval_s=0.5, max_records=2000, topic_suffix=agg_env.topic_suffix
    )
    telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY))
    stages: dict[str, float] = {}
    inside: dict[str, float] = {}
    counted_events = tasks = 0
    overheads: list[float] = []
    with open_aggregator(settings, telemetry=telemetry) as aggregator:
        stop = threading.Event()
        while aggregator.cycle(stop).stats.records:  # warm-up: workers import, open stores, build derivers
            pass
        agg_env.publish(payloads)
        started = time.perf_counter()
        consumed = 0
        while consumed < len(payloads):  # every published batch, however long the log takes to hand them over
            assert time.perf_counter() - started < 600, f"only {consumed} of {len(payloads)} batches in 10 min"
            stats = aggregator.cycle(stop).stats
            consumed += stats.records
            counted_events += stats.events
            tasks += stats.tasks
            for k, v in stats.stage_s.items():
                stages[k] = stages.get(k, 0.0) + v
            for k, v in stats.task_stage_s.items():
                inside[k] = inside.get(k, 0.0) + v
            if stats.dask_overhead is not None and stats.records:
                overheads.append(stats.dask_overhead)
        elapsed = time.perf_counter() - started
    total = MERCHANTS * n_per_merchant
    store = agg_env.store()
    counted = 0
    for merchant_id in merchants:
        rows = store.read(merchant_id, "event_name", Grain.DAY, START - timedelta(days=1), START + timedelta(days=2), 1)
        counted += sum(r.metrics.events for r in rows)
    assert counted > 0.9 * total  # bots are not counted
    spent = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
    spent += "; inside tasks: " + ", ".join(f"{k} {v:.1f} s" for k, v in inside.items())
    print(
        f"\n[{agg_env.mode}] loop: {counted_events:,} events in {elapsed:.1f} s"
        f" = {counted_events / elapsed:,.0f} events/s"
        f" ({spent}); {tasks} Dask tasks, median overhead {sorted(overheads)[len(overheads) // 2]:.1%}"
    )
