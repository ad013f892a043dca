"""The dims storage encoding: lossless, injective, canonical, and identical to plain JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnomon.rollups.dims import EMPTY_DIMS, decode_dims, encode_dims
from gnomon.rollups.errors import RollupInvalid

# Any unicode except lone surrogates (they have no UTF-8 form; protobuf strings never carry them).
values = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
dims_tuples = st.lists(values, max_size=6).map(tuple)
tricky = st.lists(st.sampled_from(["", '"', "\\", ",", "[", "]", "\x00", "\x1f", "é", "🙂", '","']), max_size=5)


@given(dims_tuples)
def test_round_trip(dims: tuple[str, ...]) -> None:
    encoded = encode_dims(dims)
    assert decode_dims(encoded) == dims
    encoded.encode("utf-8")  # valid UTF-8 text
    assert "\x00" not in encoded


@given(tricky.map(tuple))
def test_round_trip_of_separator_and_quote_soup(dims: tuple[str, ...]) -> None:
    assert decode_dims(encode_dims(dims)) == dims


@given(dims_tuples, dims_tuples)
def test_injective(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert (encode_dims(a) == encode_dims(b)) == (a == b)


@given(dims_tuples)
def test_fast_path_equals_the_json_encoding(dims: tuple[str, ...]) -> None:
    assert encode_dims(dims) == json.dumps(list(dims), ensure_ascii=False, separators=(",", ":"))


def test_empty_and_empty_strings_are_distinct() -> None:
    assert encode_dims(()) == EMPTY_DIMS == "[]"
    assert encode_dims(("",)) == '[""]'
    assert encode_dims(("", "")) == '["",""]'
    assert decode_dims("[]") == ()
    assert decode_dims('[""]') == ("",)
    assert encode_dims(["a", "b"]) == encode_dims(("a", "b"))


def test_rejects_what_cannot_be_stored() -> None:
    with pytest.raises(RollupInvalid, match="surrogate"):
        encode_dims(("\ud800",))
    with pytest.raises(RollupInvalid, match="strings"):
        encode_dims((1,))  # type: ignore[arg-type]
    for junk in ("", "[", '{"a": 1}', "[1]", '"x"'):
        with pytest.raises(RollupInvalid):
            decode_dims(junk)
