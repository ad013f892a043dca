"""LoggedBatch bytes made by re-tagging equal what the protobuf API builds; BadEvent payloads."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from collector_svc.stamping import logged_batch_bytes, retag_events, scrubbed_prefix, stamp_header
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@st.composite
def event_lists(draw: st.DrawFn) -> list[event_pb2.Event]:
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        ev = event_pb2.Event(event_id=draw(_text), name=draw(_text), ip=draw(_text))
        ev.page.url = draw(st.text(max_size=20000))  # multi-byte length varints
        for k, v in draw(st.dictionaries(_text, _text, max_size=3)).items():
            ev.params[k] = v
        out.append(ev)
    return out


@settings(max_examples=150, deadline=None)
@given(event_lists(), _text, _text)
def test_logged_batch_bytes_equal_protobuf_built(events: list[event_pb2.Event], mid: str, tp: str) -> None:
    received = Timestamp(seconds=1_790_000_000, nanos=123)
    batch = cpb.EventBatch(events=events, batch_id="client token")
    built = event_pb2.LoggedBatch(merchant_id=mid, traceparent=tp, collector_id="c-1", events=events)
    built.received_time.CopyFrom(received)
    raw = logged_batch_bytes(stamp_header(mid, received, tp, "c-1"), batch)
    assert event_pb2.LoggedBatch.FromString(raw) == built
    assert batch.batch_id == ""


def test_retag_refuses_other_fields() -> None:
    with pytest.raises(ValueError, match="tag"):
        retag_events(cpb.EventBatch(batch_id="x").SerializeToString())


def test_scrubbed_prefix_has_no_full_ip_and_is_bounded() -> None:
    batch = cpb.EventBatch(
        events=[event_pb2.Event(event_id=str(i), ip="203.0.113.77", name="x" * 1000) for i in range(200)]
    )
    batch.events[5].ip = "garbage 203.0.113.78"
    prefix = scrubbed_prefix(batch, limit=4096)
    assert len(prefix) <= 4096
    assert b"203.0.113.77" not in prefix
    assert b"203.0.113.78" not in prefix
    assert b"203.0.113.0" in prefix


@pytest.mark.parametrize("cut", [b"\x0a\x05ab", b"\x0a", b"\x0a\x80"])
def test_retag_refuses_truncated_bytes(cut: bytes) -> None:
    with pytest.raises(ValueError, match="truncated"):
        retag_events(cut)
