"""The Apache DataSketches HLL serialized format as Gnomon builds it: register types, lg_k bounds, the format's
constants, the factorized coupons the builders consume, and the argument checks both builders make.

aggregator/hll.py documents the images (modes, byte-identity with the library); aggregator/hll_numpy.py and the
Rust extension write them. Pure, no I/O.
"""

from __future__ import annotations

import enum
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from gnomon.rollups.sketches import SKETCH_LG_K

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]


class HllType(enum.IntEnum):
    """Target HLL register width; the values are the format's codes (and datasketches.tgt_hll_type's order)."""

    HLL_4 = 0
    HLL_6 = 1
    HLL_8 = 2


DEFAULT_LG_K: Final = SKETCH_LG_K  # 12, as gnomon.rollups.sketches stores them
DEFAULT_TYPE: Final = HllType.HLL_4  # gnomon.rollups.sketches stores compact HLL_4
MIN_LG_K: Final = 4
MAX_LG_K: Final = 21
DATASKETCHES_SEED: Final = 9001

# Serialized-format constants (DataSketches HLL family, serial version 1; all integers little-endian).
FAMILY_HLL: Final = 7
SERIAL_VERSION: Final = 1
FLAG_EMPTY: Final = 4
FLAG_COMPACT: Final = 8
MODE_LIST: Final = 0
MODE_SET: Final = 1
MODE_HLL: Final = 2
LIST_PRE_INTS: Final = 2  # 8-byte header, then the coupons
SET_PRE_INTS: Final = 3  # 8-byte header + uint32 coupon count, then the coupons
HLL_PRE_INTS: Final = 10  # 40-byte header, then the registers (then HLL_4's aux pairs)
LG_LIST_ARR: Final = 3  # a LIST holds up to 2**3 - 1 coupons; the 8th promotes it
LG_INIT_SET_ARR: Final = 5
AUX_TOKEN: Final = 15  # HLL_4 nibble meaning "value - cur_min >= 15, see the aux pairs"
KEY_BITS: Final = 26
KEY_MASK: Final = (1 << KEY_BITS) - 1


class Coupons(NamedTuple):
    """Items reduced to DataSketches coupons, factorized: what `build_sketches` consumes.

    codes: one per item, an index into `values`, or -1 for an item the library ignores (missing, or "").
    values: the distinct coupons, ascending, never 0.
    """

    codes: npt.NDArray[np.intp]
    values: U32

    def per_item(self) -> U32:
        """Each item's coupon (0 for an ignored item)."""
        return np.append(self.values, np.uint32(0))[self.codes]

    @classmethod
    def from_per_item(cls, coupons: npt.ArrayLike) -> Coupons:
        """Factorize per-item coupons (0 = ignored item). Raises ValueError unless they are valid coupons."""
        arr = np.asarray(coupons)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError("coupons must be a 1-d integer array")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFFFFFF):
            raise ValueError("coupons must be uint32 values")
        codes, uniques = pd.factorize(arr.astype(np.uint32))
        return from_unique_coupons(codes, np.asarray(uniques, dtype=np.uint32))


def from_unique_coupons(codes: npt.NDArray[np.intp], unique_coupons: U32) -> Coupons:
    """Coupons from per-item codes into `unique_coupons` (-1 = ignored); equal coupons and coupon 0 are merged."""
    values, inverse = np.unique(unique_coupons, return_inverse=True)
    remap = inverse.astype(np.intp)
    if values.size and values[0] == 0:  # the empty string: the library ignores it
        values = values[1:]
        remap = remap - 1
    remap = np.append(remap, np.intp(-1))  # codes == -1 index the last element
    return Coupons(remap[np.asarray(codes, dtype=np.intp)], values.astype(np.uint32))


def promotion_count(lg_k: int) -> int:
    """T: the number of distinct coupons at which the library's sketch becomes a dense HLL."""
    return 8 if lg_k < 8 else 3 * (1 << (lg_k - 5)) + 1


def empty_image(lg_k: int = DEFAULT_LG_K, tgt_type: HllType = DEFAULT_TYPE) -> bytes:
    """The library's compact serialization of an empty sketch."""
    check_lg_k(lg_k)
    mode = MODE_LIST | (int(tgt_type) << 2)
    header = [LIST_PRE_INTS, SERIAL_VERSION, FAMILY_HLL, lg_k, LG_LIST_ARR, FLAG_EMPTY | FLAG_COMPACT, 0, mode]
    return bytes(header)


def check_lg_k(lg_k: int) -> None:
    if not MIN_LG_K <= lg_k <= MAX_LG_K:
        raise ValueError(f"lg_k must be in {MIN_LG_K}..{MAX_LG_K}, got {lg_k}")


def checked_arguments(
    group_codes: npt.ArrayLike, items: Coupons, n_groups: int, lg_k: int, tgt_type: HllType
) -> tuple[npt.NDArray[Any], HllType]:
    """(group codes as an array, target type) after the checks both builders make first, in this order; raises
    ValueError as `build_sketches` documents (the group codes' range is checked by each builder)."""
    check_lg_k(lg_k)
    tgt = HllType(tgt_type)
    groups = np.asarray(group_codes)
    if groups.ndim != 1 or not (np.issubdtype(groups.dtype, np.integer) or groups.size == 0):
        raise ValueError("group_codes must be a 1-d integer array")
    if groups.size != items.codes.size:
        raise ValueError(f"{groups.size} group codes for {items.codes.size} items")
    if n_groups < 0:
        raise ValueError(f"n_groups must be >= 0, got {n_groups}")
    return groups, tgt
