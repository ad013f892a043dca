"""Latency samples of repeated calls, shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank `p`-th percentile of `samples` (not empty)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def interpolated_percentile(samples: list[float], p: float) -> float:
    """The `p`-th percentile (integer 1..99) of `samples`, interpolated between neighbours (statistics'
    inclusive method); one sample is its own percentile, none is NaN."""
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


def timed_calls(call: Callable[[], Any], n: int) -> tuple[list[float], list[float]]:
    """Call `call` `n` times back to back: (wall ms, process CPU ms) of each call. Process CPU counts every
    thread of this process (an in-process server's too) and does not grow when other processes compete."""
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu
