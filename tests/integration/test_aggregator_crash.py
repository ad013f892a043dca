"""kill -9 of the aggregator process at chosen points (and at a random moment), restart: the rows equal the ground
truth exactly, and equal byte for byte (sketches included) the rows of a run that never crashed.

Crash points are injected with the GNOMON_AGGREGATOR_CRASH_AT test hook (`aggregator.settings.CrashPoint`): the
process SIGKILLs itself (`mid_write`: its whole process group, Dask workers included) the n-th time it gets there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_aggregator_harness import (
    AggEnv,
    Snapshot,
    _embedded,
    agg_env_fixture,  # noqa: F401 - the agg_env fixture
    assert_matches_truth,
    full_snapshot,
    kill_group,
    standard_dataset,
)

CRASH_POINTS = [
    "after_upsert:2",  # mid-batch: events stored, no rollup written, nothing committed
    "mid_write:2",  # inside a Dask worker, after the first window of a merchant-day was replaced
    "after_write:2",  # every rollup of the cycle written, records not committed
    "during_close:1",  # a cycle closing windows: rows final, marks and watermark not saved
    "after_commit:1",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snapshot]:
    """The rows of a clean (never crashed) embedded run of the standard dataset."""
    env = _embedded(Path(tmp_path_factory.mktemp("reference")))
    try:
        env.add_merchants()
        payloads = standard_dataset()
        env.publish(payloads)
        result = env.run()
        assert result.returncode == 0, result.stderr[-3000:]
        yield full_snapshot(env.store(), payloads)
    finally:
        env.close()


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_kill_9_at_a_point_then_restart(agg_env: AggEnv, reference: Snapshot, crash_at: str) -> None:
    agg_env.add_merchants()
    payloads = standard_dataset()
    agg_env.publish(payloads)
    crashed = agg_env.run("--once", "--max-records", "3", crash_at=crash_at)
    assert crashed.returncode == -9, f"expected SIGKILL at {crash_at}:\n{crashed.stderr[-3000:]}"
    restarted = agg_env.run()
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    store = agg_env.store()
    assert_matches_truth(store, payloads)
    assert full_snapshot(store, payloads) == reference


def test_kill_9_twice_at_random_moments_then_restart(agg_env: AggEnv, reference: Snapshot) -> None:
    agg_env.add_merchants()
    payloads = standard_dataset()
    half = len(payloads) // 2
    agg_env.publish(payloads[:half])
    rng = random.Random(7)
    for part in (payloads[half:], []):
        proc = agg_env.start("--max-records", "2", "--flush-interval", "0.2")
        agg_env.publish(part)
        time.sleep(rng.uniform(3.0, 8.0))
        kill_group(proc)  # SIGKILL the aggregator and its Dask workers wherever they are
    restarted = agg_env.run()
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    store = agg_env.store()
    assert_matches_truth(store, payloads)
    assert full_snapshot(store, payloads) == reference
