"""MurmurHash3 x64 128-bit, vectorized with NumPy over many byte strings at once.

Written from the published algorithm (Austin Appleby's MurmurHash3, the x64 128-bit variant with a 64-bit seed as
Apache DataSketches uses it). All arithmetic is on uint64 arrays, which wrap modulo 2**64 like the C code.

Contracts:
- `murmur3_x64_128(offsets, data, seed)` hashes the byte strings `data[offsets[i]:offsets[i + 1]]` and returns the
  two 64-bit halves `(h1, h2)` of each 128-bit hash, bit-identical to the reference C implementation. It never reads
  outside `data`; it allocates O(len(data) + n) temporaries and loops in Python once per 16-byte block of the longest
  string (one block of work per string per iteration, over only the strings that still have blocks).
- `murmur3_x64_128_int64(values, seed)` is the same hash of each value's 8 little-endian bytes, without any
  byte-string materialization.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]

_C1: Final = np.uint64(0x87C37B91114253D5)
_C2: Final = np.uint64(0x4CF5AD432745937F)
_F1: Final = np.uint64(0xFF51AFD7ED558CCD)
_F2: Final = np.uint64(0xC4CEB9FE1A85EC53)
_N1: Final = np.uint64(0x52DCE729)
_N2: Final = np.uint64(0x38495AB5)
_FIVE: Final = np.uint64(5)
_SHIFT_33: Final = np.uint64(33)


def _rotl(x: U64, r: int) -> U64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _fmix(k: U64) -> U64:
    k = k ^ (k >> _SHIFT_33)
    k = k * _F1
    k = k ^ (k >> _SHIFT_33)
    k = k * _F2
    return k ^ (k >> _SHIFT_33)


def _mix_k1(k1: U64) -> U64:
    return _rotl(k1 * _C1, 31) * _C2


def _mix_k2(k2: U64) -> U64:
    return _rotl(k2 * _C2, 33) * _C1


def _block(h1: U64, h2: U64, k1: U64, k2: U64) -> tuple[U64, U64]:
    """One 16-byte body block (k1 = bytes 0..7, k2 = bytes 8..15, little-endian)."""
    h1 = h1 ^ _mix_k1(k1)
    h1 = (_rotl(h1, 27) + h2) * _FIVE + _N1
    h2 = h2 ^ _mix_k2(k2)
    h2 = (_rotl(h2, 31) + h1) * _FIVE + _N2
    return h1, h2


def _finish(h1: U64, h2: U64, k1: U64, k2: U64, lengths: U64) -> tuple[U64, U64]:
    """Tail words (zero-filled past the string's end, so a missing half is a no-op) and finalization."""
    h2 = h2 ^ _mix_k2(k2)
    h1 = h1 ^ _mix_k1(k1)
    h1 = h1 ^ lengths
    h2 = h2 ^ lengths
    h1 = h1 + h2
    h2 = h2 + h1
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = h1 + h2
    h2 = h2 + h1
    return h1, h2


# _BYTE_MASKS[t] keeps the low t bytes of a little-endian uint64 word (t = 0..8).
_BYTE_MASKS: Final = np.array([(1 << (8 * t)) - 1 for t in range(9)], dtype=np.uint64)


def murmur3_x64_128(offsets: npt.NDArray[np.integer], data: npt.NDArray[np.uint8], seed: int) -> tuple[U64, U64]:
    """The 128-bit MurmurHash3 (x64) of each byte string `data[offsets[i]:offsets[i+1]]`, as (h1, h2) arrays.

    `offsets` is non-decreasing with len(offsets) - 1 strings (Arrow's string layout); `data` is read-only input.
    Raises ValueError when the offsets do not fit in `data`.
    """
    offs = np.asarray(offsets, dtype=np.int64)
    n = offs.size - 1
    if n <= 0:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty.copy()
    if offs[0] < 0 or offs[-1] > data.size or bool(np.any(offs[1:] < offs[:-1])):
        raise ValueError("offsets must be non-decreasing and within the data buffer")
    # 16 zero bytes of padding make every 8-byte read at or after a string's last block stay inside the buffer.
    padded = np.zeros(data.size + 16, dtype=np.uint8)
    padded[: data.size] = data
    # words[i] = the little-endian uint64 starting at byte i (an overlapping, unaligned, read-only view).
    words: U64 = np.ndarray(shape=(padded.size - 7,), dtype="<u8", buffer=padded, strides=(1,))
    words.flags.writeable = False
    starts = offs[:-1]
    lengths = offs[1:] - starts
    n_blocks = lengths >> 4
    # Strings with the most blocks first, so the strings still hashing block j are a prefix of the order.
    order = np.argsort(-n_blocks)
    s_starts = starts[order]
    s_blocks = n_blocks[order]
    seed64 = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    h1 = np.full(n, seed64, dtype=np.uint64)
    h2 = np.full(n, seed64, dtype=np.uint64)
    max_blocks = int(s_blocks[0])
    if max_blocks:
        # active[j] = how many strings have more than j blocks (s_blocks is non-increasing).
        active = n - np.searchsorted(s_blocks[::-1], np.arange(max_blocks), side="right")
        for j in range(max_blocks):
            m = int(active[j])
            at = s_starts[:m] + 16 * j
            h1[:m], h2[:m] = _block(h1[:m], h2[:m], words[at], words[at + 8])
    tail_at = s_starts + 16 * s_blocks
    tail_len = lengths[order] - 16 * s_blocks
    k1 = words[tail_at] & _BYTE_MASKS[np.minimum(tail_len, 8)]
    k2 = words[tail_at + 8] & _BYTE_MASKS[np.maximum(tail_len - 8, 0)]
    h1, h2 = _finish(h1, h2, k1, k2, lengths[order].astype(np.uint64))
    out1 = np.empty(n, dtype=np.uint64)
    out2 = np.empty(n, dtype=np.uint64)
    out1[order] = h1
    out2[order] = h2
    return out1, out2


def murmur3_x64_128_int64(values: npt.NDArray[np.int64], seed: int) -> tuple[U64, U64]:
    """The 128-bit MurmurHash3 (x64) of each int64's 8 little-endian bytes, as (h1, h2) arrays."""
    k1 = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    seed64 = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    h = np.full(k1.size, seed64, dtype=np.uint64)
    return _finish(h, h.copy(), k1, np.zeros_like(k1), np.full(k1.size, np.uint64(8), dtype=np.uint64))
