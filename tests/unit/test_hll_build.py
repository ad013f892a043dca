"""aggregator.hll.build_sketches: every image is a genuine DataSketches sketch equal to the library-built one.

`build_sketches` runs the Rust extension when it is installed (gnomon_fastpath.hll_images), else the NumPy
reference `build_sketches_numpy`; the tests taking the `builder` fixture check both against the library, the others
whichever `build_sketches` runs (tests/unit/test_hll_fast.py checks the two give the same bytes).

The oracle is `datasketches` itself: for each group, a `hll_sketch` updated item by item in the same order. We
check, per mode: LIST images byte-identical; SET images with identical header and coupon set; HLL images with
identical header (HIP estimate bit for bit), registers and aux set; identical estimates; unions with library
sketches giving the library's union estimate (exactly, except where the library's own union estimate depends on
a SET's hash-table layout: see test_library_union_estimates_depend_on_a_set_layout).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from typing import Any

import datasketches
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aggregator.hll as hll
import aggregator.hll_numpy as hll_numpy
from aggregator._murmur3 import murmur3_x64_128_int64
from aggregator.hll import (
    DEFAULT_LG_K,
    DEFAULT_TYPE,
    Coupons,
    HllType,
    build_sketches,
    build_sketches_numpy,
    coupons_of_hashes,
    empty_image,
    estimate,
    hash_items,
    merge,
    promotion_count,
)
from gnomon.rollups import sketches as rollup_sketches

LIB_TYPES = {
    HllType.HLL_4: datasketches.tgt_hll_type.HLL_4,
    HllType.HLL_6: datasketches.tgt_hll_type.HLL_6,
    HllType.HLL_8: datasketches.tgt_hll_type.HLL_8,
}


Builder = Callable[..., list[bytes]]


@pytest.fixture(params=["build_sketches", "numpy"])
def builder(request: pytest.FixtureRequest) -> Builder:
    """`build_sketches` (the extension when installed) and the NumPy reference; the extension must be there."""
    if request.param == "numpy":
        return build_sketches_numpy
    if hll.native_hll_images() is None:
        pytest.skip("gnomon_fastpath (with hll_images) is not installed")
    return build_sketches


def library_sketch(items: Sequence[Any], lg_k: int, tgt: HllType) -> Any:
    sketch = datasketches.hll_sketch(lg_k, LIB_TYPES[tgt])
    for item in items:
        if item is not None:
            sketch.update(item)
    return sketch


def parse(image: bytes) -> dict[str, Any]:
    """The fields of a compact DataSketches HLL image (the serialized format, read independently of hll.py)."""
    mode = image[7] & 3
    fields: dict[str, Any] = {"mode": mode, "lg_k": image[3], "header": image[:8]}
    if mode == 0:
        fields["coupons"] = sorted(struct.unpack_from(f"<{image[6]}I", image, 8))
    elif mode == 1:
        (count,) = struct.unpack_from("<I", image, 8)
        fields["header"] = image[:12]
        fields["coupons"] = sorted(struct.unpack_from(f"<{count}I", image, 12))
    else:
        k = 1 << image[3]
        tgt = image[7] >> 2
        body_len = {0: k // 2, 1: 3 * k // 4 + 1, 2: k}[tgt]
        (aux_count,) = struct.unpack_from("<I", image, 36)
        fields["header"] = image[:40]
        fields["body"] = image[40 : 40 + body_len]
        fields["aux"] = sorted(struct.unpack_from(f"<{aux_count}I", image, 40 + body_len))
        assert len(image) == 40 + body_len + 4 * aux_count
    return fields


def assert_same_sketch(mine: bytes, lib: Any) -> None:
    """`mine` decodes to the library's sketch `lib` (see the module docstring for what 'same' means)."""
    theirs = bytes(lib.serialize_compact())
    loaded = datasketches.hll_sketch.deserialize(mine)  # the library accepts it
    assert loaded.get_estimate() == lib.get_estimate()
    assert loaded.lg_config_k == lib.lg_config_k and loaded.tgt_type == lib.tgt_type
    assert parse(mine) == parse(theirs)
    if theirs[7] & 3 == 0:
        assert mine == theirs  # LIST: byte-identical, coupons in arrival order
    # Re-serializing what the library loaded from our image gives the library's own image (aux/SET order aside).
    assert parse(bytes(loaded.serialize_compact())) == parse(theirs)


def random_ids(rng: np.random.Generator, n: int, pool: int) -> np.ndarray:
    ids = np.array([f"cid-{x}" for x in rng.integers(0, max(pool, 1), n)], dtype=object)
    if n:
        ids[rng.random(n) < 0.01] = ""
        ids[rng.random(n) < 0.01] = None
    return ids


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.one_of(st.integers(0, 40), st.integers(40, 2_000), st.integers(2_000, 20_000)),
    pool_fraction=st.floats(0.01, 2.0),
    n_groups=st.integers(1, 4),
    lg_k=st.sampled_from([11, 12, 14]),
    tgt=st.sampled_from(list(HllType)),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_group_equals_the_library_sketch(
    size: int, pool_fraction: float, n_groups: int, lg_k: int, tgt: HllType, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    ids = random_ids(rng, size, int(size * pool_fraction))
    groups = rng.integers(0, n_groups, size)
    images = build_sketches(groups, hash_items(ids), n_groups, lg_k, tgt)
    assert len(images) == n_groups
    other = library_sketch(random_ids(rng, 3000, 6000).tolist(), lg_k, tgt)  # a sketch made elsewhere
    for g, image in enumerate(images):
        lib = library_sketch(ids[groups == g].tolist(), lg_k, tgt)
        assert_same_sketch(image, lib)
        ours_union = datasketches.hll_union(lg_k)
        ours_union.update(datasketches.hll_sketch.deserialize(image))
        ours_union.update(other)
        lib_union = datasketches.hll_union(lg_k)
        lib_union.update(lib)
        lib_union.update(other)
        if image[7] & 3 == 1:  # SET: the union replays the coupons in table order (see the docstring)
            assert ours_union.get_estimate() == pytest.approx(lib_union.get_estimate(), rel=2e-3)
        else:
            assert ours_union.get_estimate() == lib_union.get_estimate()


@pytest.mark.parametrize("lg_k", [4, 7, 8, 11, 12, 14])
@pytest.mark.parametrize("tgt", list(HllType))
def test_modes_switch_exactly_where_the_library_switches(builder: Builder, lg_k: int, tgt: HllType) -> None:
    threshold = promotion_count(lg_k)
    candidates = np.array([f"item{i}" for i in range(3 * threshold + 50)], dtype=object)
    distinct = candidates[np.unique(hash_items(candidates).per_item(), return_index=True)[1]]
    for n in sorted({1, 7, 8, 9, threshold - 1, threshold, threshold + 1, 2 * threshold}):
        items = distinct[:n]
        [image] = builder(np.zeros(n, dtype=np.int64), hash_items(items), 1, lg_k, tgt)
        lib = library_sketch(items.tolist(), lg_k, tgt)
        assert image[7] & 3 == bytes(lib.serialize_compact())[7] & 3, n
        assert_same_sketch(image, lib)


def test_promotion_hip_table_matches_the_library_for_every_lg_k() -> None:
    items = np.arange(250_000, dtype=np.int64)
    first_of_each_coupon = np.unique(hash_items(items).per_item(), return_index=True)[1]
    distinct = items[np.sort(first_of_each_coupon)]
    for lg_k in range(hll.MIN_LG_K, hll.MAX_LG_K + 1):
        threshold = promotion_count(lg_k)
        lib = library_sketch(distinct[: threshold - 1].tolist(), lg_k, HllType.HLL_8)
        assert bytes(lib.serialize_compact())[7] & 3 != 2, "not promoted one coupon before T"
        lib.update(int(distinct[threshold - 1]))
        image = bytes(lib.serialize_compact())
        assert image[7] & 3 == 2, "promoted at T"
        assert struct.unpack_from("<d", image, 8)[0] == hll_numpy._HIP_AT_PROMOTION[lg_k]


@functools.cache
def _high_value_ints(min_value: int, count: int) -> np.ndarray:
    """Ints whose coupon value (leading zeros + 1) is at least min_value: they land in HLL_4's aux table."""
    found: list[np.ndarray] = []
    start = 0
    while sum(x.size for x in found) < count:
        block = np.arange(start, start + 2_000_000, dtype=np.int64)
        values = coupons_of_hashes(*murmur3_x64_128_int64(block, 9001)) >> 26
        found.append(block[values >= min_value])
        start += block.size
    return np.concatenate(found)[:count]


@pytest.mark.parametrize(("lg_k", "n_items"), [(4, 300), (5, 3000), (6, 200), (8, 20_000), (11, 100_000), (12, 500)])
def test_hll4_aux_table_and_cur_min_match_the_library(builder: Builder, lg_k: int, n_items: int) -> None:
    rng = np.random.default_rng(lg_k)
    high = _high_value_ints(16, 120)
    items = np.concatenate([rng.integers(10**12, 2 * 10**12, n_items), high[: 4 * lg_k]])
    rng.shuffle(items)
    for tgt in HllType:
        [image] = builder(np.zeros(items.size, dtype=np.int64), hash_items(items), 1, lg_k, tgt)
        lib = library_sketch(items.tolist(), lg_k, tgt)
        assert_same_sketch(image, lib)
        if tgt == HllType.HLL_4:
            assert parse(image)["aux"], "the test must exercise the aux table"


@pytest.mark.parametrize("lg_k", [16, 21])
def test_large_lg_k_dense_groups(builder: Builder, lg_k: int) -> None:
    n = promotion_count(lg_k) + 3000
    ids = np.array([f"big-{i}" for i in range(n)], dtype=object)
    groups = (np.arange(n) < 100).astype(np.int64)  # group 0: dense HLL; group 1: a 100-coupon SET
    images = builder(groups, hash_items(ids), 2, lg_k, HllType.HLL_4)
    for g, image in enumerate(images):
        assert_same_sketch(image, library_sketch(ids[groups == g].tolist(), lg_k, HllType.HLL_4))


def test_groups_spanning_several_register_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hll_numpy, "_REGISTER_BUDGET", 1 << 13)  # 2 groups per chunk at lg_k 12 (NumPy's chunks)
    rng = np.random.default_rng(7)
    ids = random_ids(rng, 30_000, 40_000)
    groups = rng.integers(0, 9, ids.size)
    groups[groups == 4] = 0  # one empty group in the middle
    images = build_sketches_numpy(groups, hash_items(ids), 9)
    for g, image in enumerate(images):
        assert_same_sketch(image, library_sketch(ids[groups == g].tolist(), DEFAULT_LG_K, DEFAULT_TYPE))


def test_mixed_modes_in_one_call_and_arrival_order_matters_like_in_the_library(builder: Builder) -> None:
    rng = np.random.default_rng(11)
    sizes = [0, 1, 5, 7, 8, 40, 384, 385, 386, 5000, 0, 2]
    groups = np.concatenate([np.full(n, g) for g, n in enumerate(sizes)])
    ids = np.array([f"u{i}" for i in range(groups.size)], dtype=object)
    for order in (np.arange(groups.size), rng.permutation(groups.size)):
        g, items = groups[order], ids[order]
        images = builder(g, hash_items(items), len(sizes))
        for gi, image in enumerate(images):
            assert_same_sketch(image, library_sketch(items[g == gi].tolist(), DEFAULT_LG_K, DEFAULT_TYPE))
    lib_empty = bytes(datasketches.hll_sketch(12, datasketches.tgt_hll_type.HLL_4).serialize_compact())
    assert images[0] == images[10] == empty_image() == lib_empty


def test_duplicates_and_ignored_items_do_not_count(builder: Builder) -> None:
    ids = np.array(["a", "b", "a", "", None, "b", "a"], dtype=object)
    [image] = builder(np.zeros(7, dtype=np.int64), hash_items(ids), 1)
    assert image == bytes(library_sketch(["a", "b"], DEFAULT_LG_K, DEFAULT_TYPE).serialize_compact())
    [nothing] = builder(np.zeros(2, dtype=np.int64), hash_items(np.array(["", None], dtype=object)), 1)
    assert nothing == empty_image()


def test_empty_images_for_every_type_and_lg_k() -> None:
    for lg_k in range(hll.MIN_LG_K, hll.MAX_LG_K + 1):
        for tgt in HllType:
            assert empty_image(lg_k, tgt) == bytes(datasketches.hll_sketch(lg_k, LIB_TYPES[tgt]).serialize_compact())
    assert build_sketches(np.zeros(0, dtype=np.int64), hash_items(np.array([], dtype=object)), 3) == [empty_image()] * 3


def test_fallback_without_packed_keys_gives_the_same_pairs() -> None:
    rng = np.random.default_rng(5)
    g = rng.integers(0, 50, 20_000).astype(np.int64)
    c = rng.integers(0, 3000, 20_000).astype(np.int64)
    for threshold in (25, 385):
        counts, codes = hll_numpy._distinct_pairs(g, c, 50, 3000, threshold)
        counts2, codes2 = hll_numpy._distinct_pairs_lexsort(g, c, 50, threshold)
        assert counts.tolist() == counts2.tolist() and codes.tolist() == codes2.tolist()


def test_sequential_sums_add_left_to_right_like_a_loop() -> None:
    rng = np.random.default_rng(9)
    lengths = rng.integers(0, 300, 200)
    lengths[:3] = [0, 1, 5000]
    values = rng.random(int(lengths.sum())) * 10.0 ** rng.integers(-3, 6, int(lengths.sum()))
    got = hll_numpy._sequential_sums(0.1, values, lengths)
    i = 0
    for n, total in zip(lengths.tolist(), got.tolist(), strict=True):
        expected = 0.1
        for x in values[i : i + n].tolist():
            expected += x
        assert total == expected
        i += n


def test_bad_arguments_raise(builder: Builder) -> None:
    coupons = hash_items(np.array(["a", "b"], dtype=object))
    with pytest.raises(ValueError, match="lg_k"):
        builder(np.zeros(2, dtype=np.int64), coupons, 1, lg_k=3)
    with pytest.raises(ValueError, match="lg_k"):
        builder(np.zeros(2, dtype=np.int64), coupons, 1, lg_k=22)
    with pytest.raises(ValueError, match="group codes for"):
        builder(np.zeros(3, dtype=np.int64), coupons, 1)
    with pytest.raises(ValueError, match="group codes must be"):
        builder(np.array([0, 1]), coupons, 1)
    with pytest.raises(ValueError, match="group codes must be"):
        builder(np.array([0, -1]), coupons, 1)
    with pytest.raises(ValueError, match="integer"):
        builder(np.array([0.0, 1.0]), coupons, 2)
    with pytest.raises(ValueError, match="index"):
        builder(np.array([0, 1]), Coupons(np.array([0, 5]), coupons.values), 2)


def test_merge_and_estimate_use_the_library_union() -> None:
    rng = np.random.default_rng(2)
    ids = random_ids(rng, 6000, 5000)
    groups = rng.integers(0, 3, ids.size)
    images = build_sketches(groups, hash_items(ids), 3)
    union = datasketches.hll_union(DEFAULT_LG_K)
    for g in range(3):
        union.update(library_sketch(ids[groups == g].tolist(), DEFAULT_LG_K, DEFAULT_TYPE))
    expected = bytes(union.get_result(datasketches.tgt_hll_type.HLL_4).serialize_compact())
    assert merge([*images, b""]) == expected
    assert estimate(merge(images)) == datasketches.hll_sketch.deserialize(expected).get_estimate()
    assert estimate(b"") == 0.0 and estimate(empty_image()) == 0.0
    assert estimate(images[0]) == library_sketch(ids[groups == 0].tolist(), 12, DEFAULT_TYPE).get_estimate()
    with pytest.raises(ValueError, match="not a serialized HLL sketch"):
        estimate(b"\x01\x02\x03")


def test_images_are_what_gnomon_rollups_sketches_stores() -> None:
    assert (DEFAULT_LG_K, DEFAULT_TYPE) == (rollup_sketches.SKETCH_LG_K, HllType.HLL_4)
    assert empty_image() == rollup_sketches.EMPTY_SKETCH
    rng = np.random.default_rng(4)
    ids = random_ids(rng, 3000, 900)
    groups = rng.integers(0, 20, ids.size)
    images = build_sketches(groups, hash_items(ids), 20)
    library_images = []
    for g, image in enumerate(images):
        library_images.append(rollup_sketches.sketch_of(x for x in ids[groups == g].tolist() if x is not None))
        assert rollup_sketches.sketch_estimate(image) == rollup_sketches.sketch_estimate(library_images[-1])
    ours, theirs = rollup_sketches.merge_sketches(images), rollup_sketches.merge_sketches(library_images)
    assert ours.estimate == pytest.approx(theirs.estimate, rel=2e-3)  # SETs unioned: see the module docstring
    assert parse(ours.sketch)["body"] == parse(theirs.sketch)["body"]  # the same registers


def test_coupons_input_may_be_rebuilt_from_per_item_coupons() -> None:
    ids = np.array(["p", "q", "p", "r"], dtype=object)
    direct = build_sketches(np.array([0, 0, 1, 1]), hash_items(ids), 2)
    rebuilt = build_sketches(np.array([0, 0, 1, 1]), Coupons.from_per_item(hash_items(ids).per_item()), 2)
    assert direct == rebuilt


def test_library_union_estimates_depend_on_a_set_layout() -> None:
    """Why SET images are only held to the library's own tolerance in unions: folding the same library SET into an
    HLL-mode union gives a different estimate in memory and after the library's own serialize/deserialize."""
    rng = np.random.default_rng(0)
    other = library_sketch([f"o{i}" for i in range(20_000)], 12, HllType.HLL_4)
    differences = 0
    for _ in range(20):
        lib = library_sketch([f"cid-{x}" for x in rng.integers(0, 10**9, 300)], 12, HllType.HLL_4)
        copy = datasketches.hll_sketch.deserialize(bytes(lib.serialize_compact()))
        assert copy.get_estimate() == lib.get_estimate()
        estimates = []
        for sketch in (lib, copy):
            union = datasketches.hll_union(12)
            union.update(other)
            union.update(sketch)
            estimates.append(union.get_estimate())
        differences += estimates[0] != estimates[1]
        assert estimates[0] == pytest.approx(estimates[1], rel=2e-3)
    assert differences > 10
