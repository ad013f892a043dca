"""The storage encoding of a rollup's dimension values: one text column holding a compact JSON array.

Contract (both adapters store exactly this string, so it is part of the schema):
- `decode_dims(encode_dims(d)) == d` for every tuple of strings without lone surrogates (empty strings,
  unicode, control characters, quotes, backslashes and separators included).
- `encode_dims` is injective and deterministic: equal tuples give equal strings, different tuples different
  strings; `()` encodes as `[]` and `("",)` as `[""]`.
- The output is valid UTF-8 text without NUL (control characters are escaped as `\\u00XX`), so it is a valid
  CQL `text` clustering value and a SQLite TEXT key.
- Ordering: adapters return rows of one window in the order of the encoded string, which is the same in
  SQLite (memcmp of UTF-8), Cassandra/Scylla (UTF-8 bytes) and Python (code points).

Raises RollupInvalid for non-string values or lone surrogates (they cannot be stored as UTF-8; protobuf string
fields never hold them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from gnomon.rollups.errors import RollupInvalid

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()

EMPTY_DIMS = "[]"
# What json escapes with ensure_ascii=False (quote, backslash, C0 controls), plus surrogates (rejected below).
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\ud800-\udfff]')


def folded_dims(dims: Sequence[str]) -> tuple[str, ...]:
    """`dims` with every string value lower-cased (`str.lower`), the key a case-insensitive read compares;
    other values are kept for `encode_dims` to refuse."""
    return tuple(v.lower() if type(v) is str else v for v in dims)


def encode_dims(dims: Sequence[str]) -> str:
    """The stored form of `dims`: a compact JSON array of strings, non-ASCII kept as UTF-8."""
    if not dims:
        return EMPTY_DIMS
    for value in dims:
        if type(value) is not str:
            raise RollupInvalid(f"dimension values must be strings, got {type(value).__name__}: {value!r}")
    if _NEEDS_ESCAPE.search("".join(dims)) is None:  # fast path, same output as the JSON encoder
        return '["' + '","'.join(dims) + '"]'
    text = _ENCODER.encode(list(dims))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RollupInvalid(f"dimension values must be valid unicode (no lone surrogates): {dims!r}") from None
    return text


def decode_dims(text: str) -> tuple[str, ...]:
    """The dimension tuple stored as `text` (the inverse of `encode_dims`).

    Raises RollupInvalid when `text` is not an encoded array of strings (a corrupt or foreign row).
    """
    if text == EMPTY_DIMS:
        return ()
    try:
        value = _DECODER.decode(text)
    except ValueError:
        raise RollupInvalid(f"stored dims {text!r} are not a JSON array") from None
    if not isinstance(value, list) or not all(type(v) is str for v in value):
        raise RollupInvalid(f"stored dims {text!r} are not an array of strings")
    return tuple(value)


class CodedDims(Sequence[tuple[str, ...]]):
    """The dims of many rows as one code per row into distinct tuples: row i has `values[codes[i]]`.

    A Sequence of tuples (what column blocks carry), built without a tuple object per row; consumers that
    encode or group dims work per distinct value (`values`) and per code instead of hashing every row's tuple.
    `codes` must lie in [0, len(values)) (not checked here: the store checks what it writes); `values` may repeat
    a tuple.
    """

    __slots__ = ("codes", "values")

    def __init__(self, codes: npt.NDArray[np.intp], values: Sequence[tuple[str, ...]]) -> None:
        self.codes = codes
        self.values = values

    def __len__(self) -> int:
        return int(self.codes.size)

    @overload
    def __getitem__(self, index: int) -> tuple[str, ...]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, ...]]: ...

    def __getitem__(self, index: int | slice) -> tuple[str, ...] | list[tuple[str, ...]]:
        if isinstance(index, slice):
            return [self.values[c] for c in self.codes[index].tolist()]
        return self.values[int(self.codes[index])]

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self.tolist())

    def tolist(self) -> list[tuple[str, ...]]:
        """Every row's tuple (one list, the tuples shared between rows of equal dims)."""
        values = self.values
        return [values[c] for c in self.codes.tolist()]
