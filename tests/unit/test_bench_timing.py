"""The benchmarks' percentiles: nearest rank for latency tables, interpolated for ingest and freshness."""

from __future__ import annotations

import math

from bench.timing import interpolated_percentile, percentile


def test_nearest_rank_percentile_is_a_sample() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert percentile(samples, 50) == 51.0  # rank round(0.5 * 99) = 50 (0-based)
    assert percentile(samples, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0


def test_interpolated_percentile_between_neighbours() -> None:
    assert interpolated_percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert interpolated_percentile([10.0, 0.0], 95) == 9.5
    assert interpolated_percentile([7.0], 99) == 7.0
    assert math.isnan(interpolated_percentile([], 50))
