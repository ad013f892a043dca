"""Vectorized building of Apache DataSketches HLL sketches: one sketch of users per group.

    coupons = hash_items(frame[CLIENT_ID])               # once per batch: hash each distinct id once
    images = build_sketches(group_codes, coupons, n_groups)   # once per cube: list[bytes], one image per group

Hashing is NumPy. The images are built by the Rust extension `gnomon_fastpath` (`hll_images`,
collector_svc/fastpath/src/hll.rs) when it is importable, else by `build_sketches_numpy`
(aggregator/hll_numpy.py), the NumPy reference, which the extension reproduces byte for byte
(tests/unit/test_hll_fast.py); `build_sketches` picks one. aggregator/hll_format.py holds the format's constants,
`HllType` and `Coupons`; this module re-exports what callers need.

The images are genuine DataSketches compact serializations (what `hll_sketch.serialize_compact()` gives), in
the mode the library itself would be in after `update()`-ing the group's items one by one, in input order:
- empty: the library's 8-byte empty image;
- LIST (fewer than 8 distinct coupons): byte-identical to the library's image (coupons in arrival order);
- SET (8 .. T-1 distinct coupons, T = 3/4 * k/8 + 1, e.g. 385 at lg_k 12): the library's header and coupon set,
  the coupons in ascending order where the library writes its hash-table order (which depends on the update
  order and on the table's resize history; deserializing rebuilds a table either way);
- HLL (T or more distinct coupons; HLL_4, HLL_6 or HLL_8): the library's registers, cur_min, counts, KxQ sums and
  HIP estimate (bit for bit: replayed in arrival order as the library accumulates it), so byte-identical except
  that HLL_4's exception (aux) pairs are in slot order where the library writes its hash-table order.
So `hll_sketch.deserialize(image).get_estimate()` is exactly the library-built sketch's estimate, and so is any
union in which no SET image meets an HLL-mode sketch. When one does, the union replays the SET's coupons through
its HIP accumulator in table order, which makes the library's own union estimates depend on a SET's table layout:
an in-memory library sketch and its own serialize/deserialize copy already differ there (up to ~7e-4 relative
at lg_k 11-14, measured); our SET images differ from the library's within the same bounds.

The hash (verified against `datasketches` 5.2 in tests/unit/test_hll_*.py): `hll_sketch.update(str)` hashes the
string's UTF-8 bytes, `update(int)` the int64's 8 little-endian bytes, with MurmurHash3 x64 128 and seed 9001,
and ignores the empty string. A *coupon* is the 32-bit value the sketch keeps per item:
(min(clz64(h2), 62) + 1) << 26 | (h1 & (2**26 - 1)); the HLL register is slot = coupon & (k - 1), value =
coupon >> 26.

Contracts: pure CPU, no I/O, never blocks; no Python work per item (only per group, per chunk of dense groups,
and per 16-byte block of the longest string). Raises ValueError / TypeError on invalid arguments as documented.
Thread-safe; the extension releases the GIL while it builds images.
"""

from __future__ import annotations

import functools
import importlib
import operator
from collections.abc import Sequence
from typing import Any, Final

import datasketches
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]

from aggregator._murmur3 import murmur3_x64_128, murmur3_x64_128_int64
from aggregator.hll_format import (
    DATASKETCHES_SEED,
    DEFAULT_LG_K,
    DEFAULT_TYPE,
    I64,
    KEY_BITS,
    KEY_MASK,
    MAX_LG_K,
    MIN_LG_K,
    U32,
    Coupons,
    HllType,
    check_lg_k,
    checked_arguments,
    empty_image,
    from_unique_coupons,
    promotion_count,
)
from aggregator.hll_numpy import build_sketches_numpy

__all__ = [
    "DEFAULT_LG_K",
    "DEFAULT_TYPE",
    "MAX_LG_K",
    "MIN_LG_K",
    "Coupons",
    "HllType",
    "build_sketches",
    "build_sketches_numpy",
    "coupons_of_hashes",
    "empty_image",
    "estimate",
    "hash_factorized",
    "hash_items",
    "merge",
    "native_hll_images",
    "promotion_count",
]

NATIVE_MODULE: Final = "gnomon_fastpath"


def coupons_of_hashes(h1: npt.NDArray[np.uint64], h2: npt.NDArray[np.uint64]) -> U32:
    """The coupons of 128-bit hashes (h1, h2): (min(clz64(h2), 62) + 1) << 26 | (h1 & (2**26 - 1))."""
    high = h2 >> np.uint64(11)  # the top 53 bits: exactly representable as float64, as is h2 when high == 0
    use_high = high != 0
    _, exponent = np.frexp(np.where(use_high, high, h2).astype(np.float64))
    bit_length = exponent.astype(np.int64) + np.where(use_high, 11, 0)
    value = np.minimum(64 - bit_length, 62) + 1
    return (value.astype(np.uint32) << np.uint32(KEY_BITS)) | (h1 & np.uint64(KEY_MASK)).astype(np.uint32)


def hash_items(items: pd.Series[Any] | pd.Index[Any] | npt.ArrayLike) -> Coupons:
    """The DataSketches coupons of `items` (e.g. a batch's client ids): factorize, then hash each distinct item once.

    str items: what `hll_sketch.update(str)` does (UTF-8 bytes); bytes items: those bytes; integer dtypes:
    what `update(int)` does (the int64's bytes). Missing values (None, NaN, pd.NA) and "" are ignored items
    (code -1), as the library ignores "". Raises TypeError for other item types (floats, bools, objects that are
    not all str or all bytes) and ValueError for integers outside int64.
    """
    values = items if isinstance(items, pd.Series | pd.Index) else np.asarray(items)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return hash_factorized(codes, uniques)


def hash_factorized(codes: npt.ArrayLike, uniques: Any) -> Coupons:
    """`hash_items` for items already factorized (e.g. by `pd.factorize`): item i is `uniques[codes[i]]`, or an
    ignored item when codes[i] is -1. `uniques` must be distinct and non-missing. Raises as `hash_items`."""
    index = pd.Index(uniques)
    if isinstance(index, pd.CategoricalIndex):
        index = pd.Index(np.asarray(index))
    if pd.api.types.is_bool_dtype(index.dtype) or pd.api.types.is_float_dtype(index.dtype):
        raise TypeError(f"cannot hash items of dtype {index.dtype}: use str, bytes or integer ids")
    if pd.api.types.is_integer_dtype(index.dtype):
        ints = index.to_numpy()
        if ints.size and ints.dtype == np.uint64 and int(ints.max()) > np.iinfo(np.int64).max:
            raise ValueError("integer items must fit in int64 (as hll_sketch.update(int) requires)")
        coupons = coupons_of_hashes(*murmur3_x64_128_int64(ints.astype(np.int64), DATASKETCHES_SEED))
    else:
        offsets, data = _utf8_buffers(index)
        coupons = coupons_of_hashes(*murmur3_x64_128(offsets, data, DATASKETCHES_SEED))
        coupons[offsets[1:] == offsets[:-1]] = 0  # "": the library ignores it
    return from_unique_coupons(np.asarray(codes, dtype=np.intp), coupons)


def _utf8_buffers(uniques: Any) -> tuple[I64, npt.NDArray[np.uint8]]:
    """Arrow's (offsets, data) layout of distinct, non-missing str (UTF-8) or bytes values."""
    if len(uniques) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    try:
        arr = pa.array(uniques)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TypeError(f"items must be all str, all bytes, or integers: {exc}") from None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    kind = arr.type
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        offset_type: Any = np.int32
    elif pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        offset_type = np.int64
    else:
        raise TypeError(f"items must be all str, all bytes, or integers, not {kind}")
    _, offsets_buf, data_buf = arr.buffers()
    skip = arr.offset * np.dtype(offset_type).itemsize
    offsets = np.frombuffer(offsets_buf, dtype=offset_type, count=len(arr) + 1, offset=skip)
    data = np.zeros(0, dtype=np.uint8) if data_buf is None else np.frombuffer(data_buf, dtype=np.uint8)
    return offsets.astype(np.int64), data


def build_sketches(
    group_codes: npt.ArrayLike,
    items: Coupons,
    n_groups: int,
    lg_k: int = DEFAULT_LG_K,
    tgt_type: HllType = DEFAULT_TYPE,
) -> list[bytes]:
    """One compact sketch image per group 0..n_groups-1: the sketch of the items whose group code it is.

    `group_codes[i]` (integers in 0..n_groups-1) is the group of item i of `items`; items are taken in their
    order (which decides the LIST order and the HIP estimate, exactly as the library's update order would).
    A group without (non-ignored) items gets `empty_image(lg_k, tgt_type)`.
    Raises ValueError for lg_k outside 4..21, mismatched lengths, group codes outside 0..n_groups-1 or codes
    outside `items.values`.

    Built by the extension's `hll_images` when it is importable and the arguments are plain arrays (integer
    codes, uint32 values strictly ascending and nonzero as `Coupons` promises), else by `build_sketches_numpy`:
    the same images and errors either way. The extension counting-sorts the items by group and reads each group
    once, with the GIL released: ~12 ns per item in aggregate_day (~7x NumPy); it keeps ~25 bytes per item of
    its largest call (up to 64 MiB) per thread for the next call.
    """
    native = native_hll_images()
    if native is not None:
        images = _build_native(native, group_codes, items, n_groups, lg_k, tgt_type)
        if images is not None:
            return images
    return build_sketches_numpy(group_codes, items, n_groups, lg_k, tgt_type)


@functools.cache
def native_hll_images() -> Any | None:
    """`gnomon_fastpath.hll_images`, or None when the extension is not importable (or an older build lacks it)."""
    try:
        return importlib.import_module(NATIVE_MODULE).hll_images
    except (ImportError, AttributeError):
        return None


def _build_native(
    native: Any, group_codes: npt.ArrayLike, items: Coupons, n_groups: int, lg_k: int, tgt_type: HllType
) -> list[bytes] | None:
    """`build_sketches` by the extension, or None when the arguments are not plain arrays (or `items.values` is
    not strictly ascending and nonzero): `build_sketches_numpy` then handles them exactly as before. Checks the
    arguments as `build_sketches_numpy` does, in the same order; the extension checks the group and item codes."""
    groups, tgt = checked_arguments(group_codes, items, n_groups, lg_k, tgt_type)
    codes, values = np.asarray(items.codes), np.asarray(items.values)
    plain = (
        isinstance(lg_k, int | np.integer)
        and isinstance(n_groups, int | np.integer)
        and codes.ndim == 1
        and (codes.dtype.kind == "i" or (codes.dtype.kind == "u" and codes.dtype.itemsize < 8))
        and values.ndim == 1
        and values.dtype == np.uint32
    )
    if not plain:
        return None
    built: list[bytes] | None = native(  # any strides; copied only to convert or align
        np.require(groups, dtype=np.int64, requirements=["A"]),
        np.require(codes, dtype=np.int64, requirements=["A"]),
        np.require(values, dtype=np.uint32, requirements=["A"]),
        operator.index(n_groups),
        operator.index(lg_k),
        int(tgt),
    )
    return built


def estimate(image: bytes) -> float:
    """The estimate of one serialized sketch (`b""` is the empty sketch). Raises ValueError for bad bytes."""
    return float(_load(image).get_estimate()) if image else 0.0


def merge(images: Sequence[bytes], lg_k: int = DEFAULT_LG_K, tgt_type: HllType = DEFAULT_TYPE) -> bytes:
    """The compact image of the union (library `hll_union`) of serialized sketches (`b""` = empty)."""
    check_lg_k(lg_k)
    union = datasketches.hll_union(lg_k)
    for image in images:
        if image:
            union.update(_load(image))
    return bytes(union.get_result(_library_type(HllType(tgt_type))).serialize_compact())


def _load(image: bytes) -> Any:
    try:
        return datasketches.hll_sketch.deserialize(image)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise ValueError(f"{len(image)} bytes are not a serialized HLL sketch: {exc}") from None


def _library_type(tgt: HllType) -> Any:
    return {
        HllType.HLL_4: datasketches.tgt_hll_type.HLL_4,
        HllType.HLL_6: datasketches.tgt_hll_type.HLL_6,
        HllType.HLL_8: datasketches.tgt_hll_type.HLL_8,
    }[tgt]
