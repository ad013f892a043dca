"""The fast path on hostile input: random and mutated bytes never crash it, it never accepts what upb refuses,
and the handler answers them exactly like the pure-Python path (INVALID_ARGUMENT BATCH_UNPARSEABLE etc.)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.decode import encode_varint
from collector_svc.screen import FastScreen, ScannedBatch
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2
from tests.unit.test_fastpath_differential import WINDOW, assert_same, batch_bytes, field

pytest.importorskip("gnomon_fastpath")

if TYPE_CHECKING:
    import gnomon_fastpath

    def _stub_fits_the_protocol(scanned: gnomon_fastpath.Scanned) -> ScannedBatch:
        """mypy: the extension's stub offers what collector_svc.screen relies on."""
        return scanned


def _fast() -> FastScreen:
    fast = FastScreen.load()
    assert fast is not None
    return fast


def _scan_is_sound(raw: bytes) -> None:
    """The scan never raises; when it decides a batch, upb parses it too, with the same events and batch id."""
    scanned = _fast().scan(raw, WINDOW)
    if scanned is None:
        return
    batch = cpb.EventBatch.FromString(raw)  # must not raise
    assert scanned.batch_id == batch.batch_id
    assert scanned.event_ids == [e.event_id for e in batch.events]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(raw: bytes) -> None:
    _scan_is_sound(raw)
    assert_same(raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(batch_bytes(max_events=3)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and raw:
            raw[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x0B, 0x0C, 0x0E, 0x0F, 0x3A, 0x72]))
        elif kind == "cut":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del raw[at : at + draw(st.integers(1, 4))]
    return bytes(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_batches(raw: bytes) -> None:
    _scan_is_sound(raw)
    assert_same(raw)


def _event(ip: str = "") -> bytes:
    ev = event_pb2.Event(event_id="e1", name="page_view", client_id="c1", ip=ip)
    ev.event_time.seconds = WINDOW.oldest_s + 10
    return ev.SerializeToString()


@pytest.mark.parametrize(
    "raw",
    [
        field(1, 2, _event() + b"\x0b\x0c"),  # a group inside an event
        field(1, 2, _event() + b"\x0c"),  # an end-group without its start
        field(1, 2, _event() + b"\x0f"),  # wire type 7
        field(1, 2, _event() + b"\x10\x01"),  # name (string) sent as a varint
        field(1, 2, _event() + field(14, 2, b"\x0a\x01k\x12\x01v\x18\x01")),  # map entry with a third field
        field(1, 2, _event() + field(3, 2, b"\x08" + b"\xff" * 9 + b"\x02")),  # 10-byte varint over 64 bits
        field(1, 2, _event() + b"\x12\x02\xc3\x28"),  # invalid UTF-8 in name
        field(1, 2, _event()) + b"\x12\x01\xff",  # invalid UTF-8 in batch_id
        b"\x8a\x00" + encode_varint(len(_event())) + _event(),  # non-minimal tag
        b"\x0a\x80\x00",  # non-minimal length (upb reads an empty event)
        b"\x00\x01",  # field number 0
        field(1, 2, _event())[:-1],  # cut
    ],
)
def test_undecided_wire_goes_the_python_way(raw: bytes) -> None:
    assert _fast().scan(raw, WINDOW) is None
    assert not assert_same(raw)


def test_unknown_fields_are_dropped_like_upb_does() -> None:
    noisy = _event() + field(99, 0, encode_varint(7)) + field(100, 5, b"1234") + field(101, 1, b"12345678")
    noisy += field(7, 2, field(9, 2, b"\xff\xfe")) + field(3, 2, field(3, 0, b"\x01"))  # inside page and time
    raw = field(1, 2, noisy) + field(50, 2, b"top-level unknown")
    assert assert_same(raw)


def test_overlong_but_valid_varints() -> None:
    ev = event_pb2.Event(event_id="e1", name="page_view", client_id="c1")
    ev.event_time.seconds = WINDOW.oldest_s + 10
    ev.event_time.nanos = -1  # int32 written as a 10-byte varint; invalid, but parsed
    raw = field(1, 2, ev.SerializeToString())
    assert assert_same(raw)
    long_seconds = field(3, 2, b"\x08" + b"\xff" * 9 + b"\x01")  # seconds = -1 as 10 bytes
    assert assert_same(field(1, 2, _event() + long_seconds))


def test_logged_batch_misuse_is_an_error_not_a_crash() -> None:
    raw = field(1, 2, _event(ip="not an ip")) + field(1, 2, _event(ip="10.1.2.3"))
    scanned = _fast().scan(raw, WINDOW)
    assert scanned is not None
    assert scanned.flagged == [0]
    with pytest.raises(ValueError, match="flagged"):
        scanned.logged_batch(b"", [], {}, "")
    with pytest.raises(IndexError):
        scanned.logged_batch(b"", [7], {}, "")
    with pytest.raises(IndexError):
        scanned.event_bytes(2)
    out = scanned.logged_batch(b"H", [], {0: "192.0.2.0"}, "")
    logged = event_pb2.LoggedBatch.FromString(out[1:])
    assert [e.ip for e in logged.events] == ["192.0.2.0", "10.1.2.0"]
    assert event_pb2.LoggedBatch.FromString(scanned.logged_batch(b"", [0], {}, "")).events[0].ip == "10.1.2.0"
