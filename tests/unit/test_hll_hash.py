"""aggregator.hll hashing: MurmurHash3 x64 128 (seed 9001) and DataSketches coupons, checked against a scalar
reference implementation and against what `datasketches.hll_sketch.update()` itself stores."""

from __future__ import annotations

import struct

import datasketches
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator._murmur3 import murmur3_x64_128, murmur3_x64_128_int64
from aggregator.hll import Coupons, coupons_of_hashes, hash_factorized, hash_items

_M64 = (1 << 64) - 1


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def reference_murmur(data: bytes, seed: int = 9001) -> tuple[int, int]:
    """Scalar MurmurHash3_x64_128, written straight from the algorithm (test oracle for the vectorized one)."""
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = seed
    n_blocks = len(data) // 16
    for i in range(n_blocks):
        k1 = int.from_bytes(data[16 * i : 16 * i + 8], "little")
        k2 = int.from_bytes(data[16 * i + 8 : 16 * i + 16], "little")
        h1 ^= (_rotl((k1 * c1) & _M64, 31) * c2) & _M64
        h1 = (((_rotl(h1, 27) + h2) & _M64) * 5 + 0x52DCE729) & _M64
        h2 ^= (_rotl((k2 * c2) & _M64, 33) * c1) & _M64
        h2 = (((_rotl(h2, 31) + h1) & _M64) * 5 + 0x38495AB5) & _M64
    tail = data[16 * n_blocks :]
    if len(tail) > 8:
        h2 ^= (_rotl((int.from_bytes(tail[8:], "little") * c2) & _M64, 33) * c1) & _M64
    if tail:
        h1 ^= (_rotl((int.from_bytes(tail[:8], "little") * c1) & _M64, 31) * c2) & _M64
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _M64
    return h1, (h2 + h1) & _M64


def reference_coupon(h1: int, h2: int) -> int:
    leading_zeros = 64 - h2.bit_length()
    return ((min(leading_zeros, 62) + 1) << 26) | (h1 & ((1 << 26) - 1))


def library_coupon(item: str | int) -> int:
    """The coupon a one-item library sketch stores (its LIST image: 8-byte header, then the coupon)."""
    sketch = datasketches.hll_sketch(12)
    sketch.update(item)
    image = bytes(sketch.serialize_compact())
    assert len(image) == 12, "one item must give a one-coupon LIST image"
    return int(struct.unpack_from("<I", image, 8)[0])


def _buffers(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0, *(len(s) for s in strings)]).astype(np.int64)
    return offsets, np.frombuffer(b"".join(strings), dtype=np.uint8)


def test_murmur_matches_the_scalar_reference_for_every_length_up_to_80() -> None:
    rng = np.random.default_rng(3)
    strings = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in range(81) for _ in range(3)]
    strings.append(b"\xff" * 300)  # many blocks, all bits set
    h1, h2 = murmur3_x64_128(*_buffers(strings), seed=9001)
    assert [(int(a), int(b)) for a, b in zip(h1, h2, strict=True)] == [reference_murmur(s) for s in strings]


def test_murmur_of_nothing_and_of_empty_strings() -> None:
    h1, h2 = murmur3_x64_128(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8), seed=9001)
    assert h1.size == h2.size == 0
    h1, h2 = murmur3_x64_128(np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.uint8), seed=9001)
    assert [(int(a), int(b)) for a, b in zip(h1, h2, strict=True)] == [reference_murmur(b"")] * 2


def test_murmur_rejects_offsets_outside_the_data() -> None:
    with pytest.raises(ValueError, match="offsets"):
        murmur3_x64_128(np.array([0, 5]), np.zeros(4, dtype=np.uint8), seed=9001)
    with pytest.raises(ValueError, match="offsets"):
        murmur3_x64_128(np.array([0, 3, 2]), np.zeros(4, dtype=np.uint8), seed=9001)


def test_murmur_reads_only_its_strings_within_a_shared_buffer() -> None:
    data = b"xxabcdefghijklmnopqrstuvwxyzyy"
    h1, h2 = murmur3_x64_128(np.array([2, 28]), np.frombuffer(data, dtype=np.uint8), seed=9001)
    assert (int(h1[0]), int(h2[0])) == reference_murmur(data[2:28])


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_int64_murmur_is_the_hash_of_the_8_little_endian_bytes(values: list[int]) -> None:
    h1, h2 = murmur3_x64_128_int64(np.array(values, dtype=np.int64), seed=9001)
    expected = [reference_murmur(struct.pack("<q", v)) for v in values]
    assert [(int(a), int(b)) for a, b in zip(h1, h2, strict=True)] == expected


def test_coupon_value_is_leading_zeros_plus_one_capped_at_63() -> None:
    special = [0, 1, 2, 3, 4, 7, 8, 2**11 - 1, 2**11, 2**52, 2**53 - 1, 2**53, 2**53 + 1, 2**63, 2**64 - 1]
    rng = np.random.default_rng(1)
    shifted = zip(rng.integers(0, 2**63, 500).tolist(), rng.integers(0, 64, 500).tolist(), strict=True)
    h2 = special + [x >> s for x, s in shifted]
    h1 = [int(x) for x in rng.integers(0, 2**63, len(h2))]
    got = coupons_of_hashes(np.array(h1, dtype=np.uint64), np.array(h2, dtype=np.uint64))
    assert got.tolist() == [reference_coupon(a, b) for a, b in zip(h1, h2, strict=True)]
    assert got[0] >> 26 == 63 and got[3] >> 26 == 63 and got[4] >> 26 == 62 and got[13] >> 26 == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=70), min_size=1, max_size=30))
def test_str_coupons_equal_what_the_library_stores(items: list[str]) -> None:
    coupons = hash_items(np.array(items, dtype=object)).per_item()
    assert coupons.tolist() == [library_coupon(item) for item in items]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=30))
def test_int_coupons_equal_what_the_library_stores(items: list[int]) -> None:
    coupons = hash_items(np.array(items, dtype=np.int64)).per_item()
    assert coupons.tolist() == [library_coupon(item) for item in items]


def test_library_ignores_the_empty_string_and_so_do_we() -> None:
    sketch = datasketches.hll_sketch(12)
    sketch.update("")
    assert sketch.is_empty()
    coupons = hash_items(np.array(["", "a", ""], dtype=object))
    assert coupons.codes.tolist()[0] == coupons.codes.tolist()[2] == -1
    assert coupons.per_item().tolist() == [0, library_coupon("a"), 0]


def test_missing_values_are_ignored_in_every_input_form() -> None:
    expected = [library_coupon("a"), 0, library_coupon("b"), 0, library_coupon("a")]
    forms: list[object] = [
        pd.Series(["a", None, "b", "", "a"], dtype="str"),  # pandas' arrow-backed default string dtype
        pd.Series(["a", None, "b", "", "a"], dtype="string[python]"),
        pd.Series(["a", np.nan, "b", "", "a"], dtype=object),
        np.array(["a", None, "b", "", "a"], dtype=object),
        pd.Categorical(["a", None, "b", "", "a"]),
        pd.Index(["a", None, "b", "", "a"]),
    ]
    for form in forms:
        assert hash_items(form).per_item().tolist() == expected, type(form)  # type: ignore[arg-type]
    assert hash_items(np.array(["a", "b"])).per_item().tolist() == expected[:3:2]  # numpy unicode dtype
    ints = pd.Series([5, None, 7], dtype="Int64")
    assert hash_items(ints).per_item().tolist() == [library_coupon(5), 0, library_coupon(7)]


def test_each_distinct_item_is_one_code_and_equal_coupons_share_a_code() -> None:
    items = np.array(["x", "y", "x", "z", "y"], dtype=object)
    coupons = hash_items(items)
    assert coupons.codes[0] == coupons.codes[2] and coupons.codes[1] == coupons.codes[4]
    assert np.all(np.diff(coupons.values.astype(np.int64)) > 0) and coupons.values.dtype == np.uint32
    # Two items with one coupon (a hash collision) count once, as in the library: simulate with from_per_item.
    merged = Coupons.from_per_item(np.array([7 << 26 | 5, 0, 7 << 26 | 5, 3 << 26 | 1], dtype=np.uint32))
    assert merged.values.tolist() == [3 << 26 | 1, 7 << 26 | 5]
    assert merged.codes.tolist() == [1, -1, 1, 0]


def test_hash_factorized_equals_hash_items() -> None:
    items = pd.Series(["u1", "u2", None, "u1", ""], dtype="str")
    codes, uniques = pd.factorize(items)
    assert hash_factorized(codes, uniques).per_item().tolist() == hash_items(items).per_item().tolist()


def test_bytes_items_hash_their_bytes() -> None:
    coupons = hash_items(np.array([b"abc", b"\x00\xff"], dtype=object)).per_item()
    assert coupons.tolist() == [
        reference_coupon(*reference_murmur(b"abc")),
        reference_coupon(*reference_murmur(b"\x00\xff")),
    ]
    assert coupons[0] == library_coupon("abc")


def test_unsupported_items_raise() -> None:
    with pytest.raises(TypeError):
        hash_items(np.array([1.5, 2.5]))
    with pytest.raises(TypeError):
        hash_items(np.array([True, False]))
    with pytest.raises(TypeError):
        hash_items(np.array(["a", 1], dtype=object))
    with pytest.raises(ValueError, match="int64"):
        hash_items(np.array([2**64 - 1], dtype=np.uint64))
    with pytest.raises(ValueError):
        Coupons.from_per_item(np.array([-1]))


def test_empty_inputs() -> None:
    for empty in (np.array([], dtype=object), pd.Series([], dtype="str"), np.array([], dtype=np.int64)):
        coupons = hash_items(empty)
        assert coupons.codes.size == 0 and coupons.values.size == 0
    all_missing = hash_items(np.array([None, ""], dtype=object))
    assert all_missing.codes.tolist() == [-1, -1] and all_missing.values.size == 0
