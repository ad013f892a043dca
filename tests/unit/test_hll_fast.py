"""The Rust HLL builder (gnomon_fastpath.hll_images) against the NumPy reference: the same bytes on every input.

`aggregator.hll.build_sketches` runs the extension when it is importable and `build_sketches_numpy` otherwise;
both must give byte-identical images (and the same errors). The inputs are built to cross every mode boundary:
groups with exactly 7, 8, T - 1, T and T + 1 distinct coupons (T = promotion_count(lg_k)), large HLL groups with
thousands of coupons, repeated coupons and ignored items in any arrival order, coupons shared between groups,
register values up to 63 (HLL_4 aux pairs, kxq1), many groups, every lg_k 4..21 and every target type. The
library itself is the oracle of tests/unit/test_hll_build.py, which runs through `build_sketches` as well.

More examples: GNOMON_HLL_FAST_EXAMPLES=2000 pytest tests/unit/test_hll_fast.py
"""

from __future__ import annotations

import itertools
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aggregator.hll as hll
from aggregator.hll import Coupons, HllType, build_sketches, build_sketches_numpy, hash_items, promotion_count

pytest.importorskip("gnomon_fastpath")

EXAMPLES = int(os.environ.get("GNOMON_HLL_FAST_EXAMPLES", "150"))


def native() -> Any:
    """The extension's builder; fails (not skips) when an older build without it is installed."""
    builder = hll.native_hll_images()
    assert builder is not None, "gnomon_fastpath has no hll_images: rebuild it (make venv)"
    return builder


def assert_same_images(groups: npt.NDArray[Any], items: Coupons, n_groups: int, lg_k: int, tgt: HllType) -> None:
    """The extension (called directly and through build_sketches) writes exactly the reference's images."""
    expected = build_sketches_numpy(groups, items, n_groups, lg_k, tgt)
    direct = native()(groups.astype(np.int64), items.codes.astype(np.int64), items.values, n_groups, lg_k, int(tgt))
    assert direct is not None
    for got in (direct, build_sketches(groups, items, n_groups, lg_k, tgt)):
        assert len(got) == len(expected) == n_groups
        for g, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
            assert mine == theirs, f"group {g}: mode {theirs[7] & 3}, {len(mine)} vs {len(theirs)} bytes"


def random_coupons(rng: np.random.Generator, n: int, high: bool) -> npt.NDArray[np.uint32]:
    """n distinct coupons (value << 26 | key, never 0). Values as hashes give them (1 + leading zeros:
    mostly 1..3), or with `high` also uniform in 0..63 (HLL_4 aux pairs; kxq1 from 32; 0 never raises)."""
    values = np.minimum(rng.geometric(0.5, n), 63)
    if high:
        spread = rng.random(n) < 0.2
        values[spread] = rng.integers(0, 64, int(spread.sum()))
    keys = rng.integers(0, 1 << 26, n)
    out = np.unique((values.astype(np.uint32) << np.uint32(26)) | keys.astype(np.uint32))
    out = out[out != 0]
    return np.asarray(rng.permutation(out), dtype=np.uint32)


@st.composite
def cases(draw: st.DrawFn) -> tuple[npt.NDArray[np.int64], Coupons, int, int, HllType]:
    """(group codes, items, n_groups, lg_k, tgt) with per-group distinct counts drawn around every threshold."""
    # Every lg_k (Hypothesis favours small draws: spread a wide one), the small ones more often (cheaper).
    lg_k = draw(st.one_of(st.sampled_from(range(4, 14)), st.integers(0, 2**20).map(lambda x: 4 + x % 18)))
    tgt = draw(st.sampled_from(list(HllType)))
    t = promotion_count(lg_k)
    big = 2_000 if lg_k <= 16 else 200  # extra distinct coupons beyond T in a large group
    kinds = st.one_of(
        st.integers(0, 9),
        st.sampled_from([7, 8, t - 1, t, t + 1]),
        st.integers(8, max(8, t - 1)),
        st.integers(t, t + big),
    )
    max_hll_groups = 40 if lg_k <= 12 else 3 if lg_k <= 16 else 1
    distinct = draw(st.lists(kinds, min_size=0, max_size=draw(st.sampled_from([3, 12, 60]))))
    hll_groups = [i for i, d in enumerate(distinct) if d >= t]
    for i in hll_groups[max_hll_groups:]:
        distinct[i] = 5
    seed = draw(st.integers(0, 2**32 - 1))
    repeat = draw(st.sampled_from([0.0, 0.1, 1.0, 4.0]))  # repeats per distinct coupon, on average
    ignored = draw(st.sampled_from([0.0, 0.0, 0.05, 0.5]))  # share of ignored items
    shared = draw(st.booleans())  # groups draw from one pool (the same coupon in several groups)
    order = draw(st.sampled_from(["shuffled", "blocked", "interleaved"]))
    high = draw(st.booleans())
    extra_groups = draw(st.sampled_from([0, 0, 1, 500]))

    rng = np.random.default_rng(seed)
    pool = random_coupons(rng, max(distinct, default=0) * (2 if shared else 0) + 16, high)
    per_group: list[npt.NDArray[np.uint32]] = []
    for i, wanted in enumerate(distinct):
        if shared:
            chosen = rng.choice(pool, size=min(wanted, pool.size), replace=False) if wanted else pool[:0]
        else:
            chosen = random_coupons(np.random.default_rng([seed, i]), wanted + 16, high)[:wanted]
        d = chosen.size
        repeats = rng.poisson(repeat * d) if d else 0
        items = np.concatenate([chosen, chosen[rng.integers(0, d, repeats)] if d else chosen[:0]])
        n_ignored = rng.binomial(items.size + 2, ignored) if ignored else 0
        items = np.concatenate([items, np.zeros(n_ignored, dtype=np.uint32)])  # 0: an ignored item
        per_group.append(rng.permutation(items))
    sizes = np.array([x.size for x in per_group], dtype=np.int64)
    coupons = np.concatenate([*per_group, np.zeros(0, dtype=np.uint32)])
    groups = np.repeat(np.arange(len(per_group), dtype=np.int64), sizes)
    if order == "shuffled":
        perm = rng.permutation(coupons.size)
    elif order == "interleaved":  # round robin over the groups: every group spans the whole input
        within = np.arange(coupons.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        perm = np.lexsort((groups, within))
    else:
        perm = np.arange(coupons.size)
    groups, coupons = groups[perm], coupons[perm]
    n_groups = len(per_group) + extra_groups
    if extra_groups and groups.size:  # spread the groups over a larger range, some empty in between
        remap = np.sort(rng.choice(n_groups, size=len(per_group), replace=False))
        groups = remap[groups]
    return groups, Coupons.from_per_item(coupons), n_groups, lg_k, tgt


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=cases())
def test_rust_images_equal_the_numpy_images(case: tuple[npt.NDArray[np.int64], Coupons, int, int, HllType]) -> None:
    assert_same_images(*case)


@pytest.mark.parametrize("lg_k", range(hll.MIN_LG_K, hll.MAX_LG_K + 1))
def test_every_lg_k_and_type_around_the_thresholds(lg_k: int) -> None:
    rng = np.random.default_rng(lg_k)
    t = promotion_count(lg_k)
    counts = [0, 1, 7, 8, t - 1, t, t + 1, t + 700]
    pool = random_coupons(rng, 2 * sum(counts) + 100, high=True)
    groups_list, coupons_list, at = [], [], 0
    for g, d in enumerate(counts):
        chosen = pool[at : at + d]
        at += d
        group_items = np.concatenate([chosen, chosen[rng.integers(0, max(d, 1), d // 2)] if d else chosen])
        groups_list.append(np.full(group_items.size, g, dtype=np.int64))
        coupons_list.append(group_items)
    groups, per_item = np.concatenate(groups_list), np.concatenate(coupons_list)
    perm = rng.permutation(groups.size)
    items = Coupons.from_per_item(per_item[perm])
    for tgt in HllType:
        assert_same_images(groups[perm], items, len(counts), lg_k, tgt)


def test_many_small_groups_like_the_aggregator() -> None:
    """~50k groups of a few items each, plus some HLL groups: the shape of aggregate_day's larger cubes."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 40_000, 300_000)
    small, large = rng.integers(0, 50_000, ids.size), rng.integers(50_000, 50_020, ids.size)
    groups = np.where(rng.random(ids.size) < 0.7, small, large)
    for lg_k in (11, 12):
        assert_same_images(groups, hash_items(ids), 50_021, lg_k, HllType.HLL_4)


def test_real_hashes_of_strings_with_missing_items() -> None:
    rng = np.random.default_rng(8)
    ids = np.array([f"cid-{x}" for x in rng.integers(0, 5_000, 40_000)], dtype=object)
    ids[rng.random(ids.size) < 0.02] = None
    ids[rng.random(ids.size) < 0.02] = ""
    groups = rng.integers(0, 30, ids.size)
    for tgt in HllType:
        assert_same_images(groups, hash_items(ids), 31, 12, tgt)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    groups=st.lists(st.one_of(st.integers(-3, 6), st.integers(-(2**63), 2**63 - 1)), max_size=30),
    codes=st.lists(st.one_of(st.integers(-3, 6), st.integers(-(2**63), 2**63 - 1)), max_size=30),
    values=st.lists(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)), max_size=8),
    n_groups=st.integers(-2, 8),
    lg_k=st.one_of(st.integers(3, 22), st.integers(-(2**63), 2**63 - 1)),
    tgt=st.integers(-1, 3),
)
def test_any_arguments_give_what_numpy_gives(
    groups: list[int], codes: list[int], values: list[int], n_groups: int, lg_k: int, tgt: int
) -> None:
    """Garbage in: the dispatcher answers as the NumPy reference (the same images, or the same error); the
    extension never panics (no PanicException) and declines (None) values that are not ascending coupons."""
    g = np.array(groups, dtype=np.int64)
    items = Coupons(np.array(codes, dtype=np.int64), np.array(values, dtype=np.uint32))

    def outcome(build: Any) -> Any:
        try:
            return build(g, items, n_groups, lg_k, tgt)
        except Exception as exc:  # any error, as long as both raise it
            return (type(exc).__name__, str(exc))

    assert outcome(build_sketches) == outcome(build_sketches_numpy)
    try:
        direct = native()(g, items.codes, items.values, n_groups, lg_k, tgt)
    except ValueError:
        return
    canonical = all(0 < a < b for a, b in itertools.pairwise(values)) and (not values or values[0] > 0)
    assert (direct is not None) == canonical
    if direct is not None:
        assert direct == build_sketches_numpy(g, items, n_groups, lg_k, HllType(tgt))


@pytest.fixture
def fresh_lookup() -> Iterator[None]:
    """`native_hll_images` looked up again (it is cached) during the test and after it."""
    hll.native_hll_images.cache_clear()
    yield
    hll.native_hll_images.cache_clear()


@pytest.mark.usefixtures("fresh_lookup")
@pytest.mark.parametrize("module", [None, types.ModuleType("gnomon_fastpath")], ids=["missing", "older-build"])
def test_without_the_extension_numpy_builds_the_images(monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
    monkeypatch.setitem(sys.modules, "gnomon_fastpath", module)  # None: the import raises ImportError
    assert hll.native_hll_images() is None
    calls: list[int] = []

    def numpy_builder(*args: Any) -> list[bytes]:
        calls.append(1)
        return build_sketches_numpy(*args)

    monkeypatch.setattr(hll, "build_sketches_numpy", numpy_builder)
    ids = np.arange(2_000)
    images = build_sketches(ids % 3, hash_items(ids), 3)
    assert calls == [1]
    monkeypatch.undo()
    hll.native_hll_images.cache_clear()
    assert images == build_sketches(ids % 3, hash_items(ids), 3)  # the extension's, again


def test_arguments_the_extension_does_not_take_go_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values not ascending, codes as uint64 or floats, values not uint32, a float lg_k: the NumPy path."""
    calls: list[int] = []
    reference = build_sketches_numpy

    def numpy_builder(*args: Any) -> list[bytes]:
        calls.append(1)
        return reference(*args)

    monkeypatch.setattr(hll, "build_sketches_numpy", numpy_builder)
    ids = np.arange(100)
    items = hash_items(ids)
    groups = ids % 4
    expected = reference(groups, items, 4)
    assert build_sketches(groups, items, 4) == expected and calls == []
    unsorted = Coupons(items.codes, items.values[::-1].copy())
    assert native()(groups, unsorted.codes.astype(np.int64), unsorted.values, 4, 12, 0) is None
    variants: list[tuple[Coupons, Any]] = [
        (unsorted, 12),
        (Coupons(items.codes.astype(np.uint64), items.values), 12),
        (Coupons(items.codes.astype(np.float64), items.values), 12),
        (Coupons(items.codes, items.values.astype(np.int64)), 12),
    ]
    for variant, lg_k in variants:
        assert build_sketches(groups, variant, 4, lg_k) == reference(groups, variant, 4, lg_k)
    assert len(calls) == len(variants)


BAD_ARGUMENTS: list[tuple[str, Any, Any, int, int, int]] = [
    # (match, group codes, codes, n_groups, lg_k, tgt)
    ("lg_k must be in 4..21, got 3", [0, 0], [0, 1], 1, 3, 0),
    ("lg_k must be in 4..21, got 22", [0, 0], [0, 1], 1, 22, 0),
    ("3 is not a valid HllType", [0, 0], [0, 1], 1, 12, 3),
    ("group_codes must be a 1-d integer array", [0.0, 1.0], [0, 1], 2, 12, 0),
    ("group_codes must be a 1-d integer array", [[0, 1]], [0, 1], 2, 12, 0),
    ("3 group codes for 2 items", [0, 0, 0], [0, 1], 1, 12, 0),
    ("n_groups must be >= 0, got -1", [], [], -1, 12, 0),
    ("group codes must be in 0..0", [0, 1], [0, 1], 1, 12, 0),
    ("group codes must be in 0..1", [0, -1], [-1, -1], 2, 12, 0),  # also for ignored items
    ("group codes must be in 0..-1", [0], [0], 0, 12, 0),
    ("group codes must be in 0..1", [0, 5], [9, 0], 2, 12, 0),  # the group error first
    ("items.codes must index items.values", [0, 1], [0, 2], 2, 12, 0),
]


@pytest.mark.parametrize("use_extension", [True, False], ids=["extension", "numpy"])
@pytest.mark.parametrize(("match", "groups", "codes", "n_groups", "lg_k", "tgt"), BAD_ARGUMENTS)
def test_bad_arguments_raise_the_same_errors(
    monkeypatch: pytest.MonkeyPatch,
    use_extension: bool,
    match: str,
    groups: Any,
    codes: Any,
    n_groups: int,
    lg_k: int,
    tgt: int,
) -> None:
    if not use_extension:
        monkeypatch.setattr(hll, "native_hll_images", lambda: None)
    items = Coupons(np.array(codes, dtype=np.intp), hash_items(np.array(["a", "b"], dtype=object)).values)
    with pytest.raises(ValueError, match="^" + match.replace(".", r"\.") + "$"):
        build_sketches(np.array(groups), items, n_groups, lg_k, tgt)  # type: ignore[arg-type]


def test_the_extension_checks_its_own_arguments() -> None:
    build = native()
    values = np.array([5 << 26, 7 << 26], dtype=np.uint32)
    one = np.zeros(1, dtype=np.int64)
    with pytest.raises(ValueError, match="group_codes must be a 1-d"):
        build(np.zeros((1, 1), dtype=np.int64), one, values, 1, 12, 0)
    with pytest.raises(ValueError, match=r"items\.codes must be a 1-d"):
        build(one, np.zeros((1, 1), dtype=np.int64), values, 1, 12, 0)
    with pytest.raises(ValueError, match=r"items\.values must be a 1-d"):
        build(one, one, values.reshape(1, 2), 1, 12, 0)
    with pytest.raises(BufferError):
        build(one.astype(np.int32), one, values, 1, 12, 0)
    with pytest.raises(BufferError):
        build(one, one, values.astype(np.int64), 1, 12, 0)
    with pytest.raises(TypeError):
        build([0], one, values, 1, 12, 0)
    with pytest.raises(MemoryError):
        build(one[:0], one[:0], values, 2**62, 12, 0)
    strided = (np.arange(8, dtype=np.int64) % 2)[::4]  # a non-contiguous buffer is read element by element
    images = build(strided, np.array([0, 1]), values, 2, 12, 0)
    assert images == build_sketches_numpy(strided, Coupons(np.array([0, 1]), values), 2)
    assert build(one[:0], one[:0], values, 3, 12, 0) == [hll.empty_image()] * 3
