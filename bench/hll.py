"""HLL sketch-building micro-benchmark: `aggregator.hll` (vectorized) against the datasketches update() loop.

Measures, in one process on one core (best of N; CPU time of this process, and wall time):
- hash_items: 1M client ids (36-character str) with 100k distinct, as object and as pandas' arrow-backed str;
- build_sketches: 5M (group, item) pairs over 100k distinct ids into 50k groups, lg_k 12, HLL_4, with groups drawn
  uniformly (~100 items per group: all SET) and Zipf(1.3) (mostly 1-20 items, ~500 dense HLL groups holding 90%
  of the pairs), plus the serialized-size distribution;
- the naive loop (one hll_sketch per group, update() per item, serialize_compact) on a slice of the same pairs,
  so the speed-up is a ratio measured in one run.

    .venv/bin/python -m bench.hll
    .venv/bin/python -m bench.hll --pairs 1000000 --groups 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

import datasketches
import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.hll import DEFAULT_LG_K, Coupons, build_sketches, hash_items

T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int) -> tuple[T, float, float]:
    """fn's result and its best CPU and best wall time over `repeat` runs (seconds)."""
    best_cpu = best_wall = float("inf")
    result = fn()  # warm-up (allocator, caches)
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return result, best_cpu, best_wall


def client_ids(rng: np.random.Generator, n_unique: int) -> npt.NDArray[np.object_]:
    """n_unique UUID-like client ids (36 characters)."""
    raw = rng.integers(0, 2**63, size=(n_unique, 2), dtype=np.int64)
    return np.array([f"{a:016x}-{b:016x}"[:36].ljust(36, "0") for a, b in raw.tolist()], dtype=object)


def naive(groups: npt.NDArray[np.int64], ids: npt.NDArray[np.object_], n_groups: int) -> list[bytes]:
    """The per-item library loop: what the aggregator would do without aggregator.hll."""
    sketches = [datasketches.hll_sketch(DEFAULT_LG_K, datasketches.tgt_hll_type.HLL_4) for _ in range(n_groups)]
    for g, x in zip(groups.tolist(), ids.tolist(), strict=True):
        sketches[g].update(x)
    return [bytes(s.serialize_compact()) for s in sketches]


def size_summary(images: list[bytes]) -> str:
    lengths = np.array([len(b) for b in images])
    p50, p90, p99, top = np.percentile(lengths, [50, 90, 99, 100]).astype(int)
    modes = np.bincount([b[7] & 3 for b in images], minlength=3)
    return (
        f"image bytes p50 {p50} p90 {p90} p99 {p99} max {top}, mean {lengths.mean():.0f}, "
        f"total {lengths.sum() / 1e6:.1f} MB; groups LIST/empty {modes[0]}, SET {modes[1]}, HLL {modes[2]}"
    )


def bench_hash(pool: npt.NDArray[np.object_], n_items: int, repeat: int, rng: np.random.Generator) -> None:
    ids = pool[rng.integers(0, pool.size, n_items)]
    for name, items in (("object", ids), ("arrow str", pd.Series(ids, dtype="str"))):
        _, cpu, wall = timed(lambda items=items: hash_items(items), repeat)  # type: ignore[misc]
        print(
            f"hash_items ({name:9}) {n_items:,} items, {pool.size:,} distinct: cpu {cpu * 1e3:6.1f} ms "
            f"= {n_items / cpu / 1e6:5.2f} M items/s (wall {wall * 1e3:6.1f} ms)"
        )


def bench_build(
    coupons: Coupons, ids: npt.NDArray[np.object_], groups: npt.NDArray[np.int64], args: argparse.Namespace
) -> None:
    n = groups.size
    images, cpu, wall = timed(lambda: build_sketches(groups, coupons, args.groups), args.repeat)
    rate = n / cpu
    print(f"  build_sketches: cpu {cpu * 1e3:6.1f} ms = {rate / 1e6:5.2f} M pairs/s (wall {wall * 1e3:6.1f} ms)")
    print(f"  {size_summary(images)}")
    k = min(args.naive_pairs, n)
    _, naive_cpu, _ = timed(lambda: naive(groups[:k], ids[:k], args.groups), 1)
    naive_rate = k / naive_cpu
    print(
        f"  naive update() loop on the first {k:,} pairs: {naive_rate / 1e6:5.2f} M pairs/s "
        f"-> vectorized is {rate / naive_rate:4.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--unique", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=5_000_000)
    parser.add_argument("--groups", type=int, default=50_000)
    parser.add_argument("--naive-pairs", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    pool = client_ids(rng, args.unique)
    bench_hash(pool, args.items, args.repeat, rng)

    ids = pool[rng.integers(0, args.unique, args.pairs)]
    coupons = hash_items(ids)
    uniform = rng.integers(0, args.groups, args.pairs)
    zipf = np.minimum(rng.zipf(1.3, args.pairs) - 1, args.groups - 1)
    for name, groups in (("uniform", uniform), ("zipf 1.3", zipf)):
        print(f"build_sketches, {args.pairs:,} pairs into {args.groups:,} groups, {name}:")
        bench_build(coupons, ids, groups, args)


if __name__ == "__main__":
    main()
