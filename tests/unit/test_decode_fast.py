"""The Rust decode of LoggedBatch payloads (gnomon_fastpath.decode_logged) against upb: the same frame.

`decode_batches` (Rust when it decides every payload, else upb) must equal `decode_batches_upb` on every
input: every raw column with its dtype, and EVENT_BYTES parsing to the same Event. Payloads are built at the
wire level: events merged from two serializations (repeated fields, merged sub-messages), unknown fields at
every level, full-range times; then mutated bytes, on which both must fail alike or agree.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import decode_fast
from aggregator.decode import DecodeFailed, decode_batches, decode_batches_upb, encode_varint
from aggregator.frame import EVENT_BYTES
from gnomon.v1 import event_pb2

pytest.importorskip("gnomon_fastpath")


def native() -> Any:
    """The extension's decoder; fails (not skips) when an older build without it is installed."""
    decoder = decode_fast.native_decoder()
    assert decoder is not None, "gnomon_fastpath has no decode_logged: rebuild it (make venv)"
    return decoder


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
_urls = st.one_of(
    _text,
    st.sampled_from(["https://shop.example/a/b?q=1", "http://x.test", "//cdn.example/p", "/relative", "::bad"]),
)
_int64 = st.integers(-(1 << 63), (1 << 63) - 1)
_int32 = st.integers(-(1 << 31), (1 << 31) - 1)


def _field(number: int, wire: int, body: bytes) -> bytes:
    return encode_varint(number << 3 | wire) + (encode_varint(len(body)) + body if wire == 2 else body)


@st.composite
def unknown_fields(draw: st.DrawFn) -> bytes:
    """Zero to two fields with numbers no message here uses (varint, fixed64, length-delimited, fixed32)."""
    out = b""
    for _ in range(draw(st.integers(0, 2))):
        number = draw(st.sampled_from([15, 16, 99, 19000, (1 << 29) - 1]))
        wire = draw(st.sampled_from([0, 1, 2, 5]))
        body = {
            0: encode_varint(draw(st.integers(0, (1 << 64) - 1))),
            1: draw(st.binary(min_size=8, max_size=8)),
            2: draw(st.binary(max_size=12)),
            5: draw(st.binary(min_size=4, max_size=4)),
        }[wire]
        out += _field(number, wire, body)
    return out


@st.composite
def events(draw: st.DrawFn) -> bytes:
    """One serialized Event, sometimes two serializations back to back (upb merges them)."""
    parts = []
    for _ in range(draw(st.integers(1, 2))):
        e = event_pb2.Event(
            event_id=draw(_text),
            name=draw(st.sampled_from(["page_view", "purchase", ""])),
            client_id=draw(_text),
            user_id=draw(_text),
            session_id=draw(_text),
            user_agent=draw(_text),
            ip=draw(st.sampled_from(["203.0.113.0", "2001:db8::", ""])),
            locale=draw(_text),
        )
        if draw(st.booleans()):
            e.event_time.seconds, e.event_time.nanos = draw(_int64), draw(_int32)
        if draw(st.booleans()):
            e.page.url, e.page.path, e.page.title, e.page.referrer = draw(_urls), draw(_text), draw(_text), draw(_urls)
        if draw(st.booleans()):
            e.utm.source, e.utm.medium, e.utm.campaign, e.utm.term = draw(_text), draw(_text), draw(_text), draw(_text)
        if draw(st.booleans()):
            e.revenue.micros, e.revenue.currency = draw(_int64), draw(st.sampled_from(["USD", "EUR", ""]))
        if draw(st.booleans()):
            e.screen.width, e.screen.height = draw(st.integers(0, 5000)), draw(st.integers(0, 5000))
        for key in draw(st.lists(_text, max_size=3)):
            e.params[key] = draw(_text)
        parts.append(e.SerializeToString() + draw(unknown_fields()))
    return b"".join(parts)


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """One serialized LoggedBatch: header fields in any order (some twice), events, unknown fields."""
    fields = [_field(3, 2, event) for event in draw(st.lists(events(), max_size=4))]
    for _ in range(draw(st.integers(0, 2))):
        fields.append(_field(1, 2, draw(_text).encode()))
    if draw(st.booleans()):
        seconds = draw(st.one_of(st.integers(0, 4_000_000_000), _int64))
        received = event_pb2.LoggedBatch()
        received.received_time.seconds, received.received_time.nanos = seconds, draw(st.integers(0, 999_999_999))
        fields.append(received.SerializeToString())
    fields.append(_field(4, 2, draw(_text).encode()))
    fields.append(_field(5, 2, draw(_text).encode()))
    fields.append(draw(unknown_fields()))
    return b"".join(draw(st.permutations(fields)))


def _outcome(decode: Any, batch: list[bytes]) -> tuple[str, Any]:
    try:
        return "ok", decode(batch, with_event_bytes=True)
    except (DecodeFailed, OverflowError) as exc:
        return "failed", type(exc)


def assert_same(fast: pd.DataFrame, upb: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast.drop(columns=EVENT_BYTES), upb.drop(columns=EVENT_BYTES))
    for mine, theirs in zip(fast[EVENT_BYTES], upb[EVENT_BYTES], strict=True):
        assert event_pb2.Event.FromString(mine) == event_pb2.Event.FromString(theirs)


DIFF = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@DIFF
@given(st.lists(payloads(), min_size=1, max_size=3))
def test_rust_decode_equals_upb(batch: list[bytes]) -> None:
    upb = _outcome(decode_batches_upb, batch)
    if upb[0] == "ok":
        # the wire-built payloads are all within the strict reader's subset, except received times
        # that overflow int64 microseconds (upb's path raises OverflowError on those)
        assert native()(batch, False) is not None
    fast = _outcome(decode_batches, batch)
    assert fast[0] == upb[0]
    if fast[0] == "ok":
        assert_same(fast[1], upb[1])
    else:
        assert fast[1] is upb[1]


@DIFF
@given(payloads(), st.data())
def test_mutated_payloads_fail_alike_or_agree(payload: bytes, data: st.DataObject) -> None:
    mutated = bytearray(payload or b"\x00")
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    batch = [bytes(mutated[:cut]) if data.draw(st.booleans()) else bytes(mutated)]
    fast, upb = _outcome(decode_batches, batch), _outcome(decode_batches_upb, batch)
    assert fast[0] == upb[0]
    if fast[0] == "ok":
        assert_same(fast[1], upb[1])


def test_collector_batches_decode_to_the_same_bytes() -> None:
    """Batches as the collector logs them: Rust decodes them, and each event's bytes are upb's own."""
    from datetime import UTC, datetime

    from google.protobuf.timestamp_pb2 import Timestamp

    from bench.batches import BatchFactory
    from collector_svc.stamping import retag_events, stamp_header

    received = Timestamp()
    received.FromDatetime(datetime(2026, 11, 26, 12, tzinfo=UTC))
    header = stamp_header("m-fast", received, "", "collector-1")
    factory = BatchFactory(500, "fast")
    batch = [header + retag_events(factory.next()) for _ in range(4)]
    assert native()(batch, True) is not None
    fast, upb = decode_batches(batch, with_event_bytes=True), decode_batches_upb(batch, with_event_bytes=True)
    assert len(fast) == 2000
    assert_same(fast, upb)
    assert list(fast[EVENT_BYTES]) == list(upb[EVENT_BYTES])


def test_without_the_extension_decode_uses_upb(monkeypatch: pytest.MonkeyPatch) -> None:
    e = event_pb2.Event(event_id="e1", name="page_view")
    e.page.url = "https://shop.example/cart?x=1"
    payload = event_pb2.LoggedBatch(merchant_id="m1", events=[e]).SerializeToString()
    monkeypatch.setattr(decode_fast, "native_decoder", lambda: None)
    frame = decode_batches([payload])
    assert frame["page_path"].tolist() == ["/cart"]
    assert_same(decode_batches([payload], with_event_bytes=True), decode_batches_upb([payload], with_event_bytes=True))
