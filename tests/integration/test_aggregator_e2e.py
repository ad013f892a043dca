"""End to end: LoggedBatch records in the event log -> the aggregator process -> rollup rows equal to the ground truth.

Run on the embedded engines and on real Pulsar + Cassandra (`agg_env` is parametrized; see the harness).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta

from gnomon.rollups import Grain
from tests.integration.test_aggregator_harness import (
    START,
    AggEnv,
    agg_env_fixture,  # noqa: F401 - the agg_env fixture
    assert_matches_truth,
    full_snapshot,
    kill_group,
    standard_dataset,
)


def test_rollups_equal_the_ground_truth(agg_env: AggEnv) -> None:
    agg_env.add_merchants()
    payloads = standard_dataset()
    agg_env.publish(payloads)
    result = agg_env.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unknown merchant 'shop-unknown'" in result.stderr
    compared = assert_matches_truth(agg_env.store(), payloads)
    assert compared > 500


def test_duplicates_across_restarts_are_counted_once(agg_env: AggEnv) -> None:
    agg_env.add_merchants()
    payloads = standard_dataset()
    agg_env.publish(payloads[: len(payloads) // 2])
    assert agg_env.run().returncode == 0
    agg_env.publish(payloads[len(payloads) // 2 :])
    assert agg_env.run().returncode == 0
    store = agg_env.store()
    before = full_snapshot(store, payloads)
    agg_env.publish(payloads)  # every event again, after a restart
    result = agg_env.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert full_snapshot(store, payloads) == before
    assert_matches_truth(store, payloads)


def test_sigterm_finishes_the_cycle_commits_and_exits(agg_env: AggEnv) -> None:
    agg_env.add_merchants()
    payloads = standard_dataset()
    proc = agg_env.start("--flush-interval", "0.3")
    try:
        agg_env.publish(payloads)
        store = agg_env.store()
        deadline = time.monotonic() + 120
        while not store.read("shop-utc", "total", Grain.DAY, START - timedelta(days=1), START + timedelta(days=3), 1):
            assert time.monotonic() < deadline, "no rows after 120 s"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        kill_group(proc)
    again = agg_env.run()  # whatever was committed is not redone; whatever was not is done now
    assert again.returncode == 0, again.stderr[-3000:]
    assert_matches_truth(agg_env.store(), payloads)


def test_help_explains_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gnomon.cli.aggregator_cmd", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for words in ("--once", "--flush-interval", "--lateness", "double-counts", "SIGTERM", "GNOMON_ENGINES"):
        assert words in out
