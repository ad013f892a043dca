"""`build_sketches_numpy`: the DataSketches HLL images of aggregator/hll.py's `build_sketches`, in NumPy.

The reference that the Rust extension (`gnomon_fastpath.hll_images`) reproduces byte for byte, and the fallback
when the extension is not importable; aggregator/hll.py documents the images and picks the builder.
Contracts: pure CPU, no I/O; no Python work per item (only per group and per chunk of dense groups).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from aggregator.hll_format import (
    AUX_TOKEN,
    DEFAULT_LG_K,
    DEFAULT_TYPE,
    F64,
    FAMILY_HLL,
    FLAG_COMPACT,
    HLL_PRE_INTS,
    I64,
    KEY_BITS,
    LG_INIT_SET_ARR,
    LG_LIST_ARR,
    LIST_PRE_INTS,
    MODE_HLL,
    MODE_LIST,
    MODE_SET,
    SERIAL_VERSION,
    SET_PRE_INTS,
    U32,
    Coupons,
    HllType,
    checked_arguments,
    empty_image,
    promotion_count,
)

# The HIP estimate a sketch starts from when its SET (LIST below lg_k 8) becomes an HLL: the library's coupon
# estimate at the promotion count T. Measured from datasketches 5.2 (tests re-measure each one).
_HIP_AT_PROMOTION: Final = {
    **dict.fromkeys(range(4, 8), float.fromhex("0x1.0000004aaaaadp+3")),
    8: float.fromhex("0x1.900001900001ep+4"),
    9: float.fromhex("0x1.8800031000073p+5"),
    10: float.fromhex("0x1.84000610001c2p+6"),
    11: float.fromhex("0x1.82000c10006f3p+7"),
    12: float.fromhex("0x1.8100181001b9dp+8"),
    13: float.fromhex("0x1.8080301006ddep+9"),
    14: float.fromhex("0x1.804060101b6ffp+10"),
    15: float.fromhex("0x1.8020c0106dbdap+11"),
    16: float.fromhex("0x1.80118011b6ffap+12"),
    17: float.fromhex("0x1.800b0016d600ap+13"),
    18: float.fromhex("0x1.800a002b5abbfp+14"),
    19: float.fromhex("0x1.800e007d968fdp+15"),
    20: float.fromhex("0x1.801901c6d8c37p+16"),
    21: float.fromhex("0x1.803086ec3f653p+17"),
}

# kxq0 = sum of 2**-v over registers with v < 32, kept as an exact integer in units of 2**-31; kxq1 likewise for
# v >= 32 in units of 2**-63. Both stay below 2**53 for lg_k <= 21, so the float conversions are exact.
_V = np.arange(64, dtype=np.int64)
_KXQ0_UNITS: Final = np.where(_V < 32, np.left_shift(1, np.clip(31 - _V, 0, 62)), 0).astype(np.int64)
_KXQ1_UNITS: Final = np.where(_V >= 32, np.left_shift(1, np.clip(63 - _V, 0, 62)), 0).astype(np.int64)
_REGISTER_BUDGET: Final = 1 << 22  # registers per chunk of HLL groups (bounds temporaries to ~40 MB)

_HLL_HEADER = np.dtype(
    [
        ("pre_ints", "u1"),
        ("ser_ver", "u1"),
        ("family", "u1"),
        ("lg_k", "u1"),
        ("lg_arr", "u1"),
        ("flags", "u1"),
        ("cur_min", "u1"),
        ("mode", "u1"),
        ("hip", "<f8"),
        ("kxq0", "<f8"),
        ("kxq1", "<f8"),
        ("num_at_cur_min", "<u4"),
        ("aux_count", "<u4"),
    ]
)
assert _HLL_HEADER.itemsize == 40


def build_sketches_numpy(
    group_codes: npt.ArrayLike,
    items: Coupons,
    n_groups: int,
    lg_k: int = DEFAULT_LG_K,
    tgt_type: HllType = DEFAULT_TYPE,
) -> list[bytes]:
    """aggregator.hll's `build_sketches` in NumPy, with its arguments, images and errors: the reference the
    extension reproduces, and the fallback without it.

    Cost: two uint64 sorts (items, then distinct pairs) and a fixed number of NumPy passes per item; Python work
    only per group (slicing out its image) and per chunk of dense groups. Memory: ~40 bytes per item plus at
    most ~40 MB for dense registers (dense groups are processed in chunks). Feeding fewer rows (e.g. the distinct
    (group, item) rows in arrival order when the caller has them) gives identical images, faster.
    """
    groups, tgt = checked_arguments(group_codes, items, n_groups, lg_k, tgt_type)
    if groups.size and (int(groups.min()) < 0 or int(groups.max()) >= n_groups):
        raise ValueError(f"group codes must be in 0..{n_groups - 1}")
    out = [empty_image(lg_k, tgt)] * n_groups
    codes = np.asarray(items.codes)
    keep = codes >= 0
    if keep.all():
        g, c = groups.astype(np.int64, copy=False), codes.astype(np.int64, copy=False)
    else:
        g, c = groups[keep].astype(np.int64, copy=False), codes[keep].astype(np.int64, copy=False)
    if g.size == 0:
        return out
    if int(c.max()) >= items.values.size:
        raise ValueError("items.codes must index items.values")
    threshold = promotion_count(lg_k)
    counts, dc = _distinct_pairs(g, c, n_groups, items.values.size, threshold)
    coupons = items.values[dc]
    small = (counts > 0) & (counts < threshold)
    large = counts >= threshold
    for selected, emit in ((small, _coupon_images), (large, _hll_images)):
        gids = np.flatnonzero(selected)
        if gids.size:
            rows = coupons if gids.size == np.count_nonzero(counts) else coupons[np.repeat(selected, counts)]
            emit(out, gids, counts[gids], rows, lg_k, tgt)
    return out


def _bits(n: int) -> int:
    """Bits needed for the values 0..n-1."""
    return max(int(n) - 1, 0).bit_length()


def _distinct_pairs(g: I64, c: I64, n_groups: int, n_values: int, threshold: int) -> tuple[I64, I64]:
    """The distinct (group, coupon code) pairs of the items (g, c): (counts per group, codes group after group).

    Within a group the codes are in first-seen order when the group will be a LIST or an HLL (which need the
    library's arrival order), else (a SET) ascending, which is ascending coupon order. Sorts one uint64 per item
    packing (group, code, position) with NumPy's SIMD sort; np.lexsort if that needs more than 64 bits.
    """
    bits_c, bits_p = _bits(n_values), _bits(g.size)
    shift_g = bits_c + bits_p
    mask_c, mask_p = np.uint64((1 << bits_c) - 1), np.uint64((1 << bits_p) - 1)
    if _bits(n_groups) + shift_g > 64:
        return _distinct_pairs_lexsort(g, c, n_groups, threshold)
    key = np.empty(g.size, dtype=np.uint64)
    np.left_shift(g, shift_g, out=key, casting="unsafe")
    tmp = np.empty(g.size, dtype=np.uint64)
    np.left_shift(c, bits_p, out=tmp, casting="unsafe")
    key |= tmp
    key |= np.arange(g.size, dtype=np.uint64)
    key.sort()
    np.right_shift(key, np.uint64(bits_p), out=tmp)
    first = np.empty(key.size, dtype=bool)
    first[0] = True
    np.not_equal(tmp[1:], tmp[:-1], out=first[1:])
    del tmp
    firsts = key[first]  # (group, code, first position), sorted
    bounds = np.searchsorted(firsts, np.arange(n_groups + 1, dtype=np.uint64) << np.uint64(shift_g))
    counts = np.diff(bounds)
    ordered_groups = (counts > 0) & ((counts < 1 << LG_LIST_ARR) | (counts >= threshold))
    if ordered_groups.any():
        rows = np.flatnonzero(np.repeat(ordered_groups, counts))
        sub = firsts[rows]
        # Re-sort those groups' pairs by (group, position): the group bits stay, position and code swap.
        key = (sub >> np.uint64(shift_g)) << np.uint64(shift_g)
        key |= (sub & mask_p) << np.uint64(bits_c)
        key |= (sub >> np.uint64(bits_p)) & mask_c
        key.sort()
        firsts[rows] = (key & mask_c) << np.uint64(bits_p)  # only the code bits are read below
    codes = ((firsts >> np.uint64(bits_p)) & mask_c).view(np.int64)
    return counts, codes


def _distinct_pairs_lexsort(g: I64, c: I64, n_groups: int, threshold: int) -> tuple[I64, I64]:
    """`_distinct_pairs` for inputs too large to pack into 64 bits (same result, slower)."""
    order = np.lexsort((c, g))  # stable: equal pairs stay in position order
    sg, sc = g[order], c[order]
    first = np.ones(sg.size, dtype=bool)
    first[1:] = (sg[1:] != sg[:-1]) | (sc[1:] != sc[:-1])
    dg, dc, dp = sg[first], sc[first], order[first]
    counts = np.bincount(dg, minlength=n_groups)
    ordered = ((counts < 1 << LG_LIST_ARR) | (counts >= threshold))[dg]
    if ordered.any():
        rows = np.flatnonzero(ordered)
        dc = dc.copy()
        dc[rows] = dc[rows][np.lexsort((dp[rows], dg[rows]))]
    return counts, dc


def _lg_table_size(count: I64, lg_min: int) -> I64:
    """The library's hash-table size (lg) after inserting `count` entries into a table of initial size 2**lg_min:
    it doubles whenever it is more than 3/4 full, so the least lg >= lg_min with 4 * count <= 3 * 2**lg."""
    doublings = (4 * count[:, None]) > (3 << np.arange(lg_min, 40, dtype=np.int64))[None, :]
    return np.asarray(lg_min + doublings.sum(axis=1), dtype=np.int64)


def _coupon_images(out: list[bytes], gids: I64, cnt: I64, coupons: U32, lg_k: int, tgt: HllType) -> None:
    """LIST / SET images of the groups `gids` (ascending, `cnt` distinct coupons each, fewer than promote) into
    `out`; `coupons` holds their coupons group after group. All images are built in one uint32 buffer."""
    is_list = cnt < (1 << LG_LIST_ARR)
    pre_ints = np.where(is_list, LIST_PRE_INTS, SET_PRE_INTS)
    n_words = pre_ints + cnt
    start = np.cumsum(n_words) - n_words
    buf = np.zeros(int(n_words.sum()), dtype="<u4")
    raw = buf.view(np.uint8)
    at = start * 4
    raw[at] = pre_ints
    raw[at + 1] = SERIAL_VERSION
    raw[at + 2] = FAMILY_HLL
    raw[at + 3] = lg_k
    raw[at + 4] = np.where(is_list, LG_LIST_ARR, _lg_table_size(cnt, LG_INIT_SET_ARR))
    raw[at + 5] = FLAG_COMPACT
    raw[at + 6] = np.where(is_list, cnt, 0)
    raw[at + 7] = np.where(is_list, MODE_LIST, MODE_SET) | (int(tgt) << 2)
    buf[start[~is_list] + 2] = cnt[~is_list]
    # Coupon j of group i goes to word start[i] + pre_ints[i] + j; coupon rows are numbered group after group.
    buf[np.arange(coupons.size) + np.repeat(start + pre_ints - (np.cumsum(cnt) - cnt), cnt)] = coupons
    blob = buf.tobytes()
    for gid, a, b in zip(gids.tolist(), at.tolist(), (at + 4 * n_words).tolist(), strict=True):
        out[gid] = blob[a:b]


def _hll_images(out: list[bytes], gids: I64, cnt: I64, coupons: U32, lg_k: int, tgt: HllType) -> None:
    """Dense HLL images of the groups `gids` (ascending, `cnt` distinct coupons each) into `out`; `coupons` holds
    their coupons group after group, each group's in arrival order. Works in chunks of groups to bound the
    register matrix."""
    ends = np.cumsum(cnt)
    starts = ends - cnt
    chunk = max(1, _REGISTER_BUDGET >> lg_k)
    for c0 in range(0, gids.size, chunk):
        c1 = min(gids.size, c0 + chunk)
        e0, e1 = int(starts[c0]), int(ends[c1 - 1])
        images = _hll_chunk(cnt[c0:c1], coupons[e0:e1], lg_k, tgt)
        for gid, image in zip(gids[c0:c1].tolist(), images, strict=True):
            out[gid] = image


def _value_histograms(registers: npt.NDArray[np.uint8], *, sparse: bool = False) -> I64:
    """(m, 64) counts of each register value per row of the (m, k) register matrix. `sparse`: bin only the
    nonzero registers (the zeros of a row are k minus the rest), about 3x faster when most registers are 0, as
    at promotion (at most T of k set)."""
    m, k = registers.shape
    if sparse:
        flat = registers.reshape(-1)
        nonzero = np.flatnonzero(flat)
        hist = np.bincount((nonzero // k) * 64 + flat[nonzero], minlength=m * 64).reshape(m, 64)
        hist[:, 0] = k - hist[:, 1:].sum(axis=1)
        return hist
    index = registers.astype(np.int64) + (np.arange(m, dtype=np.int64) * 64)[:, None]
    return np.bincount(index.ravel(), minlength=m * 64).reshape(m, 64)


def _hll_chunk(cnt: I64, coupons: U32, lg_k: int, tgt: HllType) -> list[bytes]:
    """Images of len(cnt) groups whose distinct coupons (cnt[i] for group i) come group after group, in arrival
    order within a group."""
    m, k = cnt.size, 1 << lg_k
    gl = np.repeat(np.arange(m, dtype=np.int64), cnt)
    rank = np.arange(coupons.size, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    flat = gl * k + (coupons & np.uint32(k - 1)).astype(np.int64)
    value = (coupons >> np.uint32(KEY_BITS)).astype(np.uint8)
    registers = np.zeros(m * k, dtype=np.uint8)
    pre = rank < promotion_count(lg_k)  # in the SET when it is promoted
    np.maximum.at(registers, flat[pre], value[pre])
    at_promotion = registers.reshape(m, k).copy()
    post = ~pre
    hip = _hip(at_promotion, gl[post], flat[post], value[post], lg_k)
    np.maximum.at(registers, flat[post], value[post])
    return _hll_serialize(registers.reshape(m, k), hip, lg_k, tgt)


def _hip(at_promotion: npt.NDArray[np.uint8], g: I64, flat: I64, value: npt.NDArray[np.uint8], lg_k: int) -> F64:
    """Each group's HIP estimate after its post-promotion coupons (g, register flat, value) in arrival order.

    The library adds k / (kxq0 + kxq1) (the values before the change) to the HIP accumulator whenever an update
    raises a register; kxq0/kxq1 are tracked here as exact integers, and the additions are made in the same
    order, so the result is bit-identical.
    """
    m = at_promotion.shape[0]
    hip0 = _HIP_AT_PROMOTION[lg_k]
    if g.size == 0:
        return np.full(m, hip0)
    # An arrival raises its register iff it beats the register's running maximum: sort by (register, arrival)
    # with the value packed in, take running maxima.
    bits_i = _bits(g.size)
    if _bits(m << lg_k) + bits_i + 6 > 64:
        raise ValueError("too many items in one chunk of HLL groups")  # > 2**36 items: not a batch
    key = flat.astype(np.uint64) << np.uint64(bits_i + 6)
    key |= np.arange(g.size, dtype=np.uint64) << np.uint64(6)
    key |= value.astype(np.uint64)
    key.sort()
    register = (key >> np.uint64(bits_i + 6)).view(np.int64)
    new = (key & np.uint64(63)).view(np.int64)
    base = register << 6
    running = np.maximum.accumulate(base | new)
    old = np.empty_like(running)
    old[0] = 0
    np.subtract(running[:-1], base[1:], out=old[1:])
    np.maximum(old, at_promotion.reshape(-1)[register], out=old)  # negative (another register) -> its R0
    raised = new > old
    # The raising arrivals, back in arrival order: (index, old, new) packed and sorted.
    changes = ((key[raised] >> np.uint64(6)) & np.uint64((1 << bits_i) - 1)) << np.uint64(12)
    changes |= old[raised].astype(np.uint64) << np.uint64(6)
    changes |= new[raised].astype(np.uint64)
    changes.sort()
    rg = g[(changes >> np.uint64(12)).view(np.int64)]
    r_old = ((changes >> np.uint64(6)) & np.uint64(63)).view(np.int64)
    r_new = (changes & np.uint64(63)).view(np.int64)
    hist = _value_histograms(at_promotion, sparse=True)
    d0 = _KXQ0_UNITS[r_new] - _KXQ0_UNITS[r_old]
    d1 = _KXQ1_UNITS[r_new] - _KXQ1_UNITS[r_old]
    n_changes = np.bincount(rg, minlength=m)
    first = (np.cumsum(n_changes) - n_changes)[rg]
    excl0 = np.cumsum(d0) - d0
    excl1 = np.cumsum(d1) - d1
    kxq0 = (hist @ _KXQ0_UNITS)[rg] + excl0 - excl0[first]
    kxq1 = (hist @ _KXQ1_UNITS)[rg] + excl1 - excl1[first]
    increments = float(1 << lg_k) / (kxq0.astype(np.float64) * 2.0**-31 + kxq1.astype(np.float64) * 2.0**-63)
    return _sequential_sums(hip0, increments, n_changes)


def _sequential_sums(start: float, values: F64, lengths: I64) -> F64:
    """Per segment (consecutive `lengths` values), ((start + v1) + v2) + ...: left to right, as a C loop adds.

    np.cumsum (add.accumulate) adds strictly left to right, unlike np.sum's pairwise summation; segments are
    padded with +0.0 into rows of similar lengths (within 2x), so each row's running sum is the segment's.
    """
    out = np.full(lengths.size, start)
    starts = np.cumsum(lengths) - lengths
    size_class = np.frexp(lengths.astype(np.float64))[1]
    for cls in np.unique(size_class[lengths > 0]).tolist():
        segs = np.flatnonzero(size_class == cls)
        seg_len = lengths[segs]
        width = int(seg_len.max()) + 1
        rows = np.zeros((segs.size, width))
        rows[:, 0] = start
        row_of = np.repeat(np.arange(segs.size), seg_len)
        col_of = np.arange(row_of.size) - np.repeat(np.cumsum(seg_len) - seg_len, seg_len) + 1
        rows[row_of, col_of] = values[np.repeat(starts[segs], seg_len) + col_of - 1]
        np.cumsum(rows, axis=1, out=rows)
        out[segs] = rows[np.arange(segs.size), seg_len]
    return out


def _hll_serialize(registers: npt.NDArray[np.uint8], hip: F64, lg_k: int, tgt: HllType) -> list[bytes]:
    """Compact images of the (m, k) register rows with their HIP estimates."""
    m, k = registers.shape
    hist = _value_histograms(registers)
    header = np.zeros(m, dtype=_HLL_HEADER)
    header["pre_ints"] = HLL_PRE_INTS
    header["ser_ver"] = SERIAL_VERSION
    header["family"] = FAMILY_HLL
    header["lg_k"] = lg_k
    header["flags"] = FLAG_COMPACT
    header["mode"] = MODE_HLL | (int(tgt) << 2)
    header["hip"] = hip
    header["kxq0"] = (hist @ _KXQ0_UNITS).astype(np.float64) * 2.0**-31
    header["kxq1"] = (hist @ _KXQ1_UNITS).astype(np.float64) * 2.0**-63
    aux_rows: I64 = np.zeros(0, dtype=np.int64)
    aux_pairs: U32 = np.zeros(0, dtype=np.uint32)
    if tgt == HllType.HLL_4:
        cur_min = np.argmax(hist > 0, axis=1)
        header["cur_min"] = cur_min
        header["num_at_cur_min"] = hist[np.arange(m), cur_min]
        offset = registers - cur_min.astype(np.uint8)[:, None]
        aux_rows, aux_slots = np.nonzero(offset >= AUX_TOKEN)
        aux_pairs = (registers[aux_rows, aux_slots].astype(np.uint32) << np.uint32(KEY_BITS)) | aux_slots.astype(
            np.uint32
        )
        aux_count = np.bincount(aux_rows, minlength=m)
        header["aux_count"] = aux_count
        header["lg_arr"] = np.where(aux_count > 0, _lg_table_size(aux_count, _lg_aux_init(lg_k)), 0)
        nibbles = np.minimum(offset, AUX_TOKEN)
        body = nibbles[:, 0::2] | (nibbles[:, 1::2] << np.uint8(4))
    elif tgt == HllType.HLL_6:
        header["num_at_cur_min"] = hist[:, 0]
        quads = registers.reshape(m, k // 4, 4).astype(np.uint32)
        packed = quads[:, :, 0] | (quads[:, :, 1] << 6) | (quads[:, :, 2] << 12) | (quads[:, :, 3] << 18)
        triples = np.stack([packed & 0xFF, (packed >> 8) & 0xFF, packed >> 16], axis=2).astype(np.uint8)
        body = np.concatenate([triples.reshape(m, 3 * k // 4), np.zeros((m, 1), dtype=np.uint8)], axis=1)
    else:
        header["num_at_cur_min"] = hist[:, 0]
        body = registers
    rows = np.concatenate([header.view(np.uint8).reshape(m, _HLL_HEADER.itemsize), body], axis=1)
    images = [row.tobytes() for row in rows]
    if aux_rows.size:
        bounds = np.searchsorted(aux_rows, np.arange(m + 1))
        for gi in np.unique(aux_rows).tolist():
            images[gi] += aux_pairs[bounds[gi] : bounds[gi + 1]].astype("<u4").tobytes()
    return images


def _lg_aux_init(lg_k: int) -> int:
    """The library's initial HLL_4 aux table size (lg) for lg_k (measured: 2 up to lg_k 6, then 3, 3, 3, 4, 4,
    5, 5, then lg_k - 8 from lg_k 14)."""
    return (2, 2, 2, 3, 3, 3, 4, 4, 5, 5)[lg_k - 4] if lg_k < 14 else lg_k - 8
